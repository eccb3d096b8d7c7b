import streamlit as st

from lib import charts, probes
from lib.errors import LookbackError
from lib.tasks import REGRESSION
from pages import _form, _shown

st.title("Probe")
st.caption("Ask the models trained on the Compare page what they predict.")

comp, whose = _shown.probe_models()
if comp is None:
    st.info("Train a comparison on the Compare page first; its models answer here.")
    st.stop()
models = {}
for r in comp.runs:  # the first seed of each model
    if r.model is not None:
        models.setdefault(r.label, r.model)
ds = comp.dataset
st.markdown(whose)

if ds.vocab is not None:
    sentence = " ".join(ds.vocab[int(i)] for i in ds.test.x[0] if int(i))
    key = f"probe_prompt_{ds.seq_len}"
    align, example = getattr(comp.task, "align", None), getattr(comp.task, "example", None)  # text recall's
    if callable(example):
        st.button("Try the essay's sentence", key="probe_essay", on_click=st.session_state.__setitem__,
                  args=(key, example()), help="“Starving, Alice drives to the nearest store to buy …”, its filler "
                                              "stretched or cut to the distance these models were trained at: "
                                              "food.")
    st.session_state.setdefault(key, sentence)
    prompt = st.text_input("Prompt", key=key,
                           help="Prefilled with the first test sentence; edit it and see what each model expects.")
    words = probes.tokenize(prompt)
    if callable(align) and words:
        aligned = align(words, st.toggle("Keep the cue where the models were trained to find it", True,
                                         key="probe_align", help="Add or leave out filler words after the cue's "
                                         "subject and verb, so the cue sits as far back as in training."))
        words = aligned.words
        if (note := aligned.note()) is not None:
            (st.warning if aligned.moved else st.info)(note + (f" The models read: “{' '.join(words)}”."
                                                               if aligned.added else ""))
    try:
        guesses = {label: probes.top_k_next_words(m, ds, " ".join(words), k=5) for label, m in models.items()}
    except LookbackError as err:
        st.error(f"Cannot read this prompt: {err}")
    else:
        _shown.chart(charts.word_bars(guesses), "probe_words",
                     "Each panel is one model's five most probable next words. A prompt shorter than the training "
                     f"sentences ({ds.seq_len} words) is left-padded, a longer one cut to its last {ds.seq_len} words.")
elif ds.kind == REGRESSION:
    c1, c2 = st.columns(2)
    start = c1.number_input("Start at test step", 0, len(ds.test) - 2, 0, **_form.setting("w_probe_start"))
    steps = c2.slider("Steps to forecast", 10, 300, 100, **_form.setting("w_probe_steps"))
    try:
        frames = {label: probes.forecast(m, ds, int(start), int(steps)) for label, m in models.items()}
    except LookbackError as err:
        st.error(f"Cannot forecast: {err}")
        st.stop()
    _shown.chart(charts.forecast_lines(frames), "probe_forecast",
                 "Black: the noisy series. Solid: each model's one-step forecast from the true history. Dotted: "
                 "free-running, each prediction fed back as input (only for horizon 1), so errors compound.")
    st.dataframe({label: probes.forecast_mse(f) for label, f in frames.items()}, key="probe_forecast_table")
    st.caption("Mean squared error against the series over the steps shown, per model.")
else:
    index = int(st.number_input("Test sample", 0, len(ds.test) - 1, 0, **_form.setting("w_probe_clip")))
    if callable(pictures := getattr(comp.task, "frames", None)):
        _shown.chart(charts.frame_strip(pictures("test", index)), "probe_clip",
                     "The test sample as the task drew it, frame by frame; the models answer after the last frame.")
    y = int(ds.test.y[index])
    st.markdown(f"**True answer:** {ds.class_names[y] if ds.class_names else y}")
    rows = []
    for label, m in models.items():
        (answer, p), *others = probes.top_k_classes(m, ds, ds.test.x[index], k=3)
        rows.append({"model": label, "answer": answer, "probability": p,
                     "next guesses": ", ".join(f"{name} ({q:.0%})" for name, q in others)})
    st.dataframe(rows, hide_index=True, key="probe_answers")
