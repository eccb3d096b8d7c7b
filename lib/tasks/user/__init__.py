"""Data a user brings, one stage per module, each feeding the next:

read.py      an uploaded file's bytes -> a table, a corpus or arrays (load_table)
spec.py      how it becomes sequences: UploadSpec, and guessing or choosing one (guess_spec, choose_spec)
checks.py    the row, column, label and split checks the builders share
build.py     file + spec -> SequenceDataset, one builder per layout (build_dataset)
arrays.py    NumPy/pandas arrays -> SequenceDataset (from_arrays, from_series): the library's own way in
prepared.py  the prepared dataset kept on disk and UserDataConfig, the task that names it (prepare)
"""
