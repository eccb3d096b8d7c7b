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
    prompt = st.text_input("Prompt", sentence, key=f"probe_prompt_{ds.seq_len}",
                           help="Prefilled with the first test sentence; edit it and see what each model expects.")
    try:
        guesses = {label: probes.top_k_next_words(m, ds, prompt, k=5) for label, m in models.items()}
    except LookbackError as err:
        st.error(f"Cannot read this prompt: {err}")
    else:
        _shown.chart(charts.word_bars(guesses), "probe_words",
                     "Each panel is one model's five most probable next words. Prompts are left-padded to the "
                     f"training length ({ds.seq_len} words) or cut to their last {ds.seq_len}; a prompt of another "
                     "length than the training sentences puts the cue where no model has seen it.")
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
