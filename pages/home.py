from functools import partial

import streamlit as st

from lib.experiments import compare
from lib.reference import STORY_MODELS, STORY_TASK
from lib.settings import Settings
from lib.train import TrainConfig
from pages import _run

st.title("Lookback")
st.markdown(
    "A feed-forward net sees only a fixed window of recent inputs; a recurrent net carries a state "
    "forward, and an LSTM or GRU gates that state so old information can survive. Lookback trains them "
    "side by side on tasks where the decisive input lies a chosen distance back, and measures who "
    "remembers, how far, and at what cost in parameters, FLOPs and seconds. Every number comes from a model "
    "that was really trained: yours, on this machine, or the labelled reference runs shipped with Lookback."
)
st.info(
    "**The example behind it:** *“Starving, Alice drives to the nearest store to buy …”* — the last word "
    "(food) depends on the first. A net that sees only the last five words cannot know it; a vanilla RNN "
    "tends to lose it as the sentence grows; an LSTM is built to keep it."
)

if st.button("Run the default comparison", type="primary", key="home_run",
             help="Text recall at distance 20: FFNN with a 5-word window, FFNN whose window reaches the cue, "
                  "RNN and LSTM, one seed. It trains on this machine, so how long it takes depends on the machine "
                  "and on what else runs there; Compare shows the time left while it trains."):
    _run.launch("compare", "Default comparison", STORY_TASK, TrainConfig(), [0],
                lambda: (STORY_MODELS, 1, partial(compare, STORY_TASK, STORY_MODELS, TrainConfig(), (0,))),
                switch_to="pages/compare.py",
                meta={"settings": Settings(STORY_TASK, STORY_MODELS, TrainConfig(), (0,))})

st.subheader("Where to look")
GUIDE = [
    ("pages/compare.py", "Compare", "train FFNN, RNN, GRU and LSTM (or linear, TCN, Transformer, minGRU) on one task"),
    ("pages/window.py", "Context tradeoff", "how far back must a window or a TCN see, and what does that cost"),
    ("pages/memory.py", "Memory", "accuracy against distance, gradients through time, gates and attention"),
    ("pages/costs.py", "Costs", "parameters, FLOPs, measured time and memory; why FLOPs and seconds disagree"),
    ("pages/probe.py", "Probe", "type a sentence, forecast a wave, show a clip: what each model answers"),
    ("pages/literature.py", "Literature", "the essay's claims and classic memory results beside Lookback's runs"),
    ("pages/your_data.py", "Your data", "upload sequences of your own (or an example): do they need memory?"),
    ("pages/runs.py", "Runs", "every run saved on this install: browse, compare, export, delete"),
]
for path, title, what in GUIDE:  # the link and its words side by side, the words wrapping on a narrow screen
    link, words = st.columns([1, 2], vertical_alignment="center")  # "Context tradeoff" whole at 800 px
    link.page_link(path, label=f"**{title}**", width="stretch")
    words.markdown(what)
