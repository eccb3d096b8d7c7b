import numpy as np
import streamlit as st

from lib import charts, probes
from lib.errors import ConfigError
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig, example_prompt
from lib.tasks.video import VideoConfig, clip_frames
from lib.train import predict
from pages import _ui as ui

ui.use_app_navigation()
st.title("Probe")
st.caption("Ask the models trained on the Compare page what they predict.")

comp = ui.results().get("compare")
trained = [] if comp is None else [r for r in comp.runs if r.model is not None]
if not trained:
    st.info("Train a comparison on the Compare page first; its models answer here.")
    st.stop()
models = {}
for r in trained:  # the first seed of each model
    models.setdefault(r.label, r.model)
ds = comp.dataset
st.markdown(f"Models from the latest comparison: **{ds.description}**")

if isinstance(comp.task, TextRecallConfig):
    prompt = st.text_input("Prompt", example_prompt(comp.task.distance), key=f"probe_prompt_{comp.task.distance}",
                           help="Prefilled with the essay's example, its filler stretched to the length the "
                                "models were trained on.")
    try:
        guesses = {label: probes.top_k_next_words(m, ds, prompt, k=5) for label, m in models.items()}
    except ConfigError as err:
        st.error(f"Cannot read this prompt: {err}")
    else:
        ui.chart(charts.word_bars(guesses), "probe_words",
              "Each panel is one model's five most probable next words. Prompts are left-padded to the "
              f"training length ({ds.seq_len} words) or cut to their last {ds.seq_len}; a prompt of another "
              "length than the training sentences puts the cue where no model has seen it.")
elif isinstance(comp.task, SineConfig):
    c1, c2 = st.columns(2)
    start = c1.number_input("Start at test step", 0, len(ds.test) - 2, 0, **ui.setting("w_probe_start"))
    steps = c2.slider("Steps to forecast", 10, 300, 100, **ui.setting("w_probe_steps"))
    frames = {label: probes.forecast(m, ds, int(start), int(steps)) for label, m in models.items()}
    ui.chart(charts.forecast_lines(frames), "probe_forecast",
          "Black: the noisy series. Solid: each model's one-step forecast from the true history. Dotted: "
          "free-running, each prediction fed back as input (only for horizon 1), so errors compound.")
    st.dataframe({label: {"one-step MSE": float(((f["one_step"] - f["truth"]) ** 2).mean()),
                          "free-running MSE": float(((f["free_running"] - f["truth"]) ** 2).mean())}
                  for label, f in frames.items()}, key="probe_forecast_table")
elif isinstance(comp.task, VideoConfig):
    index = st.number_input("Test clip", 0, len(ds.test) - 1, 0, **ui.setting("w_probe_clip"))
    ui.chart(charts.frame_strip(clip_frames(comp.task, "test", int(index))), "probe_clip",
          f"The digit shows for the first {comp.task.visible} frames; then {comp.task.gap} {comp.task.gap_mode} "
          "frames follow before the models must name it.")
    st.markdown(f"**True digit:** {int(ds.test.y[int(index)])}")
    x = ds.test.x[int(index):int(index) + 1]
    rows = []
    for label, m in models.items():
        p = predict(m, x)[0].softmax(-1).numpy()
        rows.append({"model": label, "answer": int(np.argmax(p)), "probability": float(p.max())})
    st.dataframe(rows, hide_index=True, key="probe_answers")
else:
    st.info("This task has no probe view yet.")
