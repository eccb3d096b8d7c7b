"""Your data: load a file or an example, choose how it becomes sequences, and ask whether it needs memory."""
from functools import partial

import pandas as pd
import streamlit as st

from lib import charts, eta, hosting, report
from lib.configs import knobs
from lib.errors import LookbackError
from lib.experiments import summary_frame
from lib.paths import EXAMPLES
from lib.stats import Margins
from lib.study import (
    KINDS,
    MEMORY_KINDS,
    MIN_UPDATES,
    QUICK_SEEDS,
    WINDOW_KINDS,
    WINDOWED_KINDS,
    default_windows,
    geometric_windows,
    memory_study,
    quick_caveat,
    quick_windows,
    study_plan,
)
from lib.tasks import CLASSIFICATION
from lib.tasks.user.arrays import MAX_STEPS
from lib.tasks.user.build import build_dataset
from lib.tasks.user.prepared import NAME, keep
from lib.tasks.user.read import MAX_UPLOAD_BYTES, CorpusText, content_sha256, load_table
from lib.tasks.user.spec import MAX_WINDOW, MISSING, UploadSpec, guess_spec, layout_defaults
from lib.trivial import baseline_lines, facts, trivial_rows
from pages import _form, _run, _shown
from pages._jobs import engine
from pages._state import Prepared, Shown, keep_prepared, prepared_data, show_on, shown_on

TYPES = ["csv", "tsv", "parquet", "pq", "npz", "txt"]
LAYOUTS = {"series": "series: forecast a column from its past rows",
           "wide": "wide: one sequence per row, steps as columns, a label column",
           "long": "long: one row per step, a sequence id column, a label column",
           "corpus": "corpus: predict the next word of a text",
           "arrays": "arrays: X (sequences) and y (labels) from a .npz"}
MISSING_LABELS = {"error": "refuse them", "drop": "drop the row or sequence", "ffill": "repeat the previous value",
                  "interpolate": "interpolate linearly"}
SPEC = "yd_spec_"  # key prefix of the spec widgets; their keys name the file, so another file starts afresh
NONE = "(none)"
# a shared host takes uploads up to its bundle size; locally the library's limit applies
MAX_MB = hosting.limits().upload_mb if hosting.hosted() else MAX_UPLOAD_BYTES // 1024 ** 2

st.title("Your data")
st.caption("Upload sequences of your own, see how Lookback reads them, and ask whether a model needs memory to "
           "predict them: fixed-window models against memory models, trained with the same budget.")
errors = st.session_state.setdefault("yd_errors", {})  # slot -> (file id, message) of a file that was refused


def read(slot: str, data: bytes, name: str, origin: str) -> None:
    """Parse a file into st.session_state["yd_" + slot] ("main" or "test"); a file that cannot be used
    leaves the slot as it was and its message in `errors`."""
    try:
        source = load_table(data, name, max_bytes=MAX_MB * 1024 ** 2)
        guess = guess_spec(source) if slot == "main" else None
    except LookbackError as err:
        errors[slot] = (origin, f"Cannot use this file: {err}")
        return
    errors.pop(slot, None)
    before = st.session_state.get(f"yd_{slot}")
    sha = content_sha256(data)
    st.session_state[f"yd_{slot}"] = {"name": name, "sha": sha, "source": source, "guess": guess}
    if slot == "main" and before is not None and before["sha"] != sha:
        for key in [k for k in st.session_state if k.startswith(SPEC)]:  # the old file's widgets are gone
            del st.session_state[key]


def uploader(where, slot: str, label: str, help: str) -> None:
    """A file uploader that reads each newly uploaded file once and shows why one was refused."""
    f = where.file_uploader(label, type=TYPES, key=f"yd_upload_{slot}", help=help,
                            max_upload_size=MAX_MB)
    if f is None:
        return
    seen = st.session_state.setdefault("yd_seen", {})
    if seen.get(slot) != f.file_id:
        seen[slot] = f.file_id
        read(slot, f.getvalue(), f.name, f.file_id)
    if slot in errors and errors[slot][0] == f.file_id:
        where.error(errors[slot][1])


st.header("1. Load data")
c1, c2 = st.columns(2)
uploader(c1, "main", "Data file", "CSV or TSV (a header row, then one row per time step or per sequence), "
         "Parquet, a NumPy .npz with arrays X and y, or a .txt corpus.")
uploader(c2, "test", "Test file (optional)", "The same columns as the data file; it becomes the test split.")
st.caption(f"Up to {MAX_MB} MB per file. Nothing is dropped, filled, padded or cut unless "
           "you choose so below; the dataset description says what was.")
row = st.container(horizontal=True, vertical_alignment="center")
row.markdown("Or load an example:")
for path in sorted(EXAMPLES.glob("*.csv")):
    if row.button(path.name, key=f"yd_example_{path.stem}", icon=":material/dataset:"):
        read("main", path.read_bytes(), path.name, f"example {path.name}")
        st.session_state["yd_test"] = None  # an example comes without a test file
        if "main" in errors:
            st.error(errors["main"][1])
main, test = st.session_state.get("yd_main"), st.session_state.get("yd_test")
if test is not None and st.button(f"Remove the test file {test['name']}", key="yd_remove_test"):
    st.session_state["yd_test"] = test = None
if main is None:
    st.info("Upload a file or load an example to start. The examples are described in data/examples/README.md.")
    st.stop()

source, guess = main["source"], main["guess"]
st.markdown(f"**Loaded:** {main['name']}" + (f" with the test file {test['name']}" if test else "")
            + f" — Lookback guesses the **{guess.layout}** layout.")
if isinstance(source, pd.DataFrame):
    st.dataframe(source.head(10), key="yd_preview")
    st.caption(f"The first {min(10, len(source))} of {len(source):,} rows and {source.shape[1]} column(s).")
elif isinstance(source, CorpusText):
    st.text(source.text[:600] + ("…" if len(source.text) > 600 else ""))
    st.caption(f"The first characters of {len(source.text):,}.")
else:
    split = "" if source.split is None else f", split {source.split.shape}"
    st.markdown(f"Arrays: X {source.x.shape} {source.x.dtype}, y {source.y.shape} {source.y.dtype}{split}.")


def kept(name: str) -> dict:
    """Widget arguments of a setting for this file: kept across page switches; another file gets new widgets
    (a key that names the file), so its guess shows instead of the last file's choices."""
    return {"key": f"{SPEC}{main['sha'][:8]}_{name}", "persist_state": "session"}


def column(where, label: str, name: str, options: list, default, optional: str | None = None):
    """A selectbox of columns; with `optional`, NONE (meaning None, described by `optional`) comes first."""
    options = [NONE, *options] if optional else list(options)
    value = NONE if default is None else default
    chosen = where.selectbox(label, options, index=options.index(value) if value in options else 0,
                             format_func=lambda c: optional if c == NONE else c, **kept(name))
    return None if chosen == NONE else chosen


MANY_STEPS = 12  # more step columns than this, all in one run, are picked as a range


def step_range(names: list[str], default: list[str], others: set) -> list[str]:
    """The step columns of a wide file as a range, first to last in the file's order (the label and split columns
    inside it left out), with a caption that names its ends and count."""
    r1, r2 = st.columns(2)
    first = r1.selectbox("First step column", names, index=names.index(default[0]), **kept("wide_first"))
    last = r2.selectbox("Last step column", names, index=names.index(default[-1]), **kept("wide_last"))
    a, b = sorted((names.index(first), names.index(last)))
    picked = [c for c in names[a:b + 1] if c not in others]
    st.caption(f"Step columns: {names[a]} to {names[b]}, {len(picked)} column{'s' * (len(picked) != 1)} in the "
               f"file's order" + (" (the label and split columns left out)" if len(picked) < b - a + 1 else "") + ".")
    return picked


def spec_form() -> UploadSpec:
    """Every field of the spec as a widget, the proposal for the chosen layout (layout_defaults) as its default."""
    tabular = isinstance(source, pd.DataFrame)
    layouts = ["series", "wide", "long"] if tabular else [guess.layout]
    top = st.columns([2, 1])
    layout = top[0].selectbox("Layout", layouts, index=layouts.index(guess.layout), format_func=LAYOUTS.get,
                              disabled=not tabular, **kept("layout"))
    d = layout_defaults(source, layout, guess)
    names = list(source.columns) if tabular else []
    f = {}  # the spec's fields
    c1, c2, c3 = st.columns(3)
    if layout == "series":
        f["target"] = column(c1, "Column to forecast", "series_target", names, d.target)
        f["time"] = column(c2, "Time column", "series_time", names, d.time, "none: the row order")
        f["split"] = column(c3, "Split column", "series_split", names, d.split, "none: split in time")
    elif layout in ("wide", "long"):
        f["target"] = column(c1, "Label column", f"{layout}_target", names, d.target)
        f["split"] = column(c2, "Split column", f"{layout}_split", names, d.split, "none: a seeded shuffle")
        if layout == "long":
            f["sequence"] = column(c3, "Sequence id column", "long_sequence", names, d.sequence)
            f["time"] = column(c1, "Step column", "long_time", names, d.time, "none: the row order")
    if tabular:
        what = {"series": "Input columns (the column to forecast among them)", "wide": "Step columns",
                "long": "Feature columns"}[layout]
        default = [c for c in d.inputs if c in names]
        others = {f.get("target"), f.get("split")}
        span = names[names.index(default[0]):names.index(default[-1]) + 1] if default else []
        if layout == "wide" and len(default) > MANY_STEPS and [c for c in span if c not in others] == default:
            picked = step_range(names, default, others)  # a run of columns: its ends, not a chip per column
        else:
            picked = st.multiselect(what, names, default=default, **kept(f"{layout}_inputs"))
        f["inputs"] = tuple(c for c in names if c in picked)  # in the file's order: wide steps keep their order
    if layout in ("wide", "long", "arrays"):
        f["label_kind"] = c2.radio("Label kind", ["classification", "regression"], horizontal=True,
                                   index=["classification", "regression"].index(d.label_kind),
                                   **kept(f"{layout}_label_kind"))
    if layout in ("series", "corpus"):
        unit = "rows" if layout == "series" else "words"
        f["window"] = c3.number_input(f"Window ({unit} per input sequence)", 1, MAX_WINDOW, d.window,
                                      **kept(f"{layout}_window"))
    if layout == "series":
        f["horizon"] = c1.number_input("Horizon (rows ahead to forecast)", 1, MAX_WINDOW, d.horizon,
                                       **kept("series_horizon"))
    if layout == "long":
        length = c3.number_input("Steps per sequence (0: the longest)", 0, MAX_STEPS, d.length or 0,
                                 **kept("long_length"), help="Shorter sequences are left-padded with zeros, "
                                 "longer ones keep their last steps.")
        f["length"] = int(length) or None
    if layout == "corpus":
        f["vocab_size"] = top[1].number_input("Vocabulary cap (most frequent training words)", 2, 100_000,
                                              d.vocab_size, **kept("corpus_vocab"), help="Other words read as <unk>.")
    else:
        f["missing"] = top[1].selectbox("Empty, NaN or infinite cells", MISSING, index=MISSING.index(d.missing),
                                        format_func=MISSING_LABELS.get, **kept(f"{layout}_missing"))
    with st.expander("Split and scaling"):
        e1, e2, e3 = st.columns(3)
        f["val_fraction"] = e1.slider("Validation fraction", 0.05, 0.4, d.val_fraction, 0.05, **kept("val"))
        f["test_fraction"] = e2.slider("Test fraction", 0.05, 0.4, d.test_fraction, 0.05, **kept("test"))
        f["seed"] = e3.number_input("Split seed", 0, 2 ** 31, d.seed, **kept("seed"),
                                    help="Seeds the shuffled split of labelled sequences.")
        if layout != "corpus":
            f["standardize"] = e1.checkbox("Standardise with the training part's mean and std", d.standardize,
                                           **kept("standardize"))
    return UploadSpec(layout=layout, **f)


def prepare(spec: UploadSpec) -> None:
    """Build and keep the dataset `spec` describes; a spec that fails shows why and keeps the last dataset."""
    key = (main["sha"], test and test["sha"], spec)
    done, failed = prepared_data(), st.session_state.get("yd_failed")
    if done is not None and done.key == key:
        return
    if failed is None or failed[0] != key:
        try:
            with st.spinner("Preparing the dataset…"):
                ds = build_dataset(source, spec, test and test["source"], name=NAME)
                cfg = keep(ds, spec, (main["sha"],) + ((test["sha"],) if test else ()))
        except LookbackError as err:
            failed = st.session_state["yd_failed"] = (key, f"Cannot prepare the dataset: {err}")
        else:
            keep_prepared(Prepared(key, cfg, main["name"], test and test["name"]))
            return
    st.error(failed[1])
    if done is not None:
        st.info(f"Below: the last dataset that was prepared, from {done.file}.")


st.header("2. How the file becomes sequences")
prepare(spec_form())
prepared = prepared_data()
if prepared is None:
    st.stop()
cfg = prepared.cfg
ds = _form.checked_dataset(cfg)
if ds is None:
    st.stop()

st.header("3. The dataset")
m = st.columns(5)
for where, label, value in zip(m, ("Training sequences", "Validation sequences", "Test sequences",
                                   "Steps per sequence", "Vocabulary" if ds.vocab else "Features per step"),
                               (len(ds.train), len(ds.val), len(ds.test), ds.seq_len, ds.n_features), strict=True):
    where.metric(label, f"{value:,}")
st.markdown(f"**Dataset:** {ds.description}")
if ds.kind == CLASSIFICATION and not ds.per_step:
    counts = pd.DataFrame({part: pd.Series(getattr(ds, part).y.numpy()).value_counts()
                           for part in ("train", "val", "test")}).fillna(0).astype(int)
    counts.index = [ds.class_names[i] if ds.class_names else str(i) for i in counts.index]
    st.dataframe(counts.rename_axis("class").reset_index(), hide_index=True, key="yd_classes")
    majority = trivial_rows(ds, facts(ds))["majority"].mean()  # the study's trivial predictor, as its verdict says
    st.caption(f"Sequences per class and split; always guessing the majority training class scores {majority:.1%} "
               f"on the test split.")
elif ds.kind == CLASSIFICATION:
    st.caption(f"Always guessing the most frequent word scores {ds.chance:.1%} on the test split.")
else:
    stats = pd.DataFrame({part: pd.Series(getattr(ds, part).y.numpy().ravel()).describe()
                          for part in ("train", "val", "test")}).T
    st.dataframe(stats[["mean", "std", "min", "max"]].rename_axis("split").reset_index(), hide_index=True,
                 key="yd_targets")
    baselines = ", ".join(f"{name} {v:.3g}" for name, v in baseline_lines(ds.baselines).items())
    st.caption("The target per split" + (" (standardised)" if cfg.spec.standardize else "")
               + (f". Naive baselines' test MSE: {baselines}." if baselines else "."))
st.caption(f"Prepared data {cfg.sha256[:12]}, kept beside the run store: the same data and settings reuse stored "
           "runs. This dataset is now also a task on the Compare, Context tradeoff, Memory, Costs and Probe pages.")

st.header("4. Does my data need memory?")
st.markdown("Fixed-window models (an FFNN, a linear map) see only the last *window* steps; memory models (GRU, LSTM, "
            "RNN; on request a TCN, a Transformer, a minGRU) see every step of the input. A model *matches* another "
            "only when the difference, counting seed and test-set noise, is shown to lie within the practical margin; "
            "if some window matches the best memory model, memory beyond it does not pay, and the verdict names the "
            "cheapest model within the margin of the best: which kind of memory the data call for.")
quick = st.toggle("Quick study: one seed and a coarse window grid", key="yd_quick",
                  help="Faster, and it says what it gives up: wider intervals, no seed noise, coarser windows.")
c1, c2 = st.columns(2)
suggested = default_windows(ds)  # for a series, below its window (the recurrent models' history), with its season
grid = sorted(set(geometric_windows(ds.seq_len)) | set(suggested))
windows = c1.multiselect("Windows (steps)", grid, default=list(suggested), disabled=quick, **kept("study_windows"))
window_kinds = _form.kind_picker(c1, "Fixed-window models, at every window", "yd_study_window_kinds",
                                 list(WINDOW_KINDS), options=WINDOWED_KINDS)
kinds = _form.kind_picker(c2, "Memory models", "yd_study_kinds", list(KINDS), options=MEMORY_KINDS)
if not set(MEMORY_KINDS) - set(KINDS) <= set(kinds):  # the slower mechanisms are not all chosen
    c2.caption("The TCN, Transformer and minGRU are left out by default to keep the study fast: on long histories "
               "each trains slower than the GRU on a CPU. Add them to weigh a receptive field, attention and a "
               "parallel scan too; the verdict names what was left out.")
c1, c2, c3, c4 = st.columns(4)
n_seeds = c1.number_input("Seeds", *_form.LIMITS["seeds"], 3, disabled=quick, **kept("study_seeds"))
if quick:
    windows = list(quick_windows(ds))
updates = c2.number_input("Updates per run (at least)", 1, 100_000, MIN_UPDATES, 100, **kept("study_updates"),
                          help="Every model gets the same number of optimizer updates.")
hidden = c3.number_input("Hidden units", *_form.LIMITS["hidden"], 64, 4, **kept("study_hidden"))
metric_field = "accuracy" if ds.metric == "accuracy" else "mse"
margin_knob = knobs(Margins)[metric_field]  # the form offers the margin in points or percent
margin_unit = "accuracy points" if metric_field == "accuracy" else "% of the MSE"
percent = [round(v * 100, 6) for v in (*margin_knob.form, getattr(Margins(), metric_field), margin_knob.step)]
margin = c4.number_input(f"Practical margin ({margin_unit})", *percent, help=margin_knob.help, **kept("study_margin"))
margins = Margins(**{metric_field: margin / 100})
seeds = list(QUICK_SEEDS) if quick else list(range(int(n_seeds)))
if quick:
    st.info(quick_caveat(windows))
try:
    models, train_cfg, budget = study_plan(cfg, windows, kinds, int(hidden), int(updates), window_kinds=window_kinds)
except LookbackError as err:
    st.error(f"Study settings: {err}")
    models = None
else:
    st.caption(f"{len(models)} models × {len(seeds)} seed(s) = {len(models) * len(seeds)} runs, each of up to "
               f"{budget.updates:,} updates ({budget.epochs} epochs of {budget.steps_per_epoch} batches of "
               f"{budget.batch_size}), " + (f"stopping early after {budget.patience} epochs without a better "
                                             f"validation {ds.metric}." if budget.patience else
                                             "without early stopping: the validation split is too small to tell "
                                             "epochs apart."))


def plan():
    return models, 1, partial(memory_study, cfg, seeds, windows=windows, kinds=kinds, window_kinds=window_kinds,
                              hidden=int(hidden),
                              min_updates=int(updates), margins=margins)


if st.button("Does my data need memory?", type="primary", key="yd_study", disabled=models is None):
    _run.launch("your_data", "Memory study", cfg, train_cfg, seeds, plan, "Cannot run the study",
                meta={"eta": (models, seeds, budget.updates, budget.steps_per_epoch, train_cfg)})


def live(job) -> None:
    """While the study trains: the time it still needs (lib.eta) and the runs finished so far."""
    if "eta" not in job.meta:
        return
    models_, seeds_, updates_, steps, plan_cfg = job.meta["eta"]
    jds = _form.checked_dataset(job.meta["task"])
    if "prior" not in job.meta:  # a few timed steps per model; not on a shared server, whose cores are the jobs'
        job.meta["prior"] = {} if hosting.hosted() or jds is None else eta.probe(jds, models_, plan_cfg)
    workers = hosting.run_workers(engine().plan.threads, len(models_) * len(seeds_))[0]
    planned = eta.plan_of(models_, seeds_, updates_, workers)  # in the order the workers start the runs
    seen = eta.from_runs(planned, job.finished, job.curves, steps)
    st.caption(eta.eta_text(eta.eta(planned, seen, workers, job.meta["prior"]), len(job.finished), len(planned),
                            job.seconds()))
    if job.finished and jds is not None:
        table = summary_frame(list(job.finished), jds)[["label", "seed", "status", "metric", "epochs"]]
        st.dataframe(table, hide_index=True, key="yd_partial")
        st.caption("The runs finished so far, as they finish; the verdict waits for all of them.")


def finish(job) -> None:
    if job.result is not None:
        show_on("your_data", Shown.of(job.result.task, job.result, cancelled=job.result.cancelled,
                                      extra={"file": prepared.file if job.result.task == cfg else None}))


_run.job_panel("your_data", finish, live)
done = shown_on("your_data")
if done is None:
    st.stop()
study, sds = done.result, done.result.dataset
st.subheader("Verdict")
if study.task != cfg:
    st.info(f"This study is of an earlier dataset: {sds.description}")
if study.cancelled:
    st.warning("The study was cancelled; the verdict reads only the runs that finished.")
box = st.warning if study.verdict.memory in ("inconclusive", "no signal") else st.success
box("\n\n".join([f"**{report.HEADLINES[study.verdict.memory].format(window=study.verdict.window)}**",
                  *study.verdict.sentences]))
_shown.chart(charts.window_tradeoff(study.summary(), sds.metric, None, sds.chance), "yd_chart",
             "Left: each fixed-window model's test metric against the steps it sees (band across seeds); dotted lines "
             "are the memory models, which see every step. Middle: parameters. Right: seconds per training epoch.")
st.table(report.model_frame(study), hide_index=True)
st.caption(f"Every run had the same budget of {study.budget.updates:,} optimizer updates. FLOPs count one forward "
           f"pass; latency is one test sequence on {study.env.get('device', 'this machine')}, first seed's model.")
d1, d2, _ = st.columns([1, 1, 3])
d1.download_button("Download CSV", lambda: study.table.to_csv(index=False), "lookback-study.csv", "text/csv",
                   key="yd_dl_csv", help="One row per model: test metric, seeds, parameters, FLOPs, times.")
d2.download_button("Download HTML report", lambda: report.study_html(study, done.extra["file"]), "lookback-study.html",
                   "text/html", key="yd_dl_html", help="One self-contained page: verdict, charts, every run.")
