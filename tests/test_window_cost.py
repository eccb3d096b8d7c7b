"""lib.window_cost: the cost of a wider window in words, counted from the models."""
from dataclasses import replace

from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.runs import dataset
from lib.tasks.text import TextRecallConfig
from lib.tasks.video import VideoConfig
from lib.window_cost import step_noun, window_cost

VIDEO_MODELS = (ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=21), ModelConfig(kind="rnn"),
                ModelConfig(kind="lstm"))


def test_each_frame_of_the_video_window_adds_its_144_pixels_and_the_ffnn_outgrows_the_lstm():
    task = VideoConfig()
    io = ModelIO.from_dataset(dataset(task))
    text = window_cost(VIDEO_MODELS, io, task)
    assert text.startswith("Each frame in FFNN w21's window adds 144 inputs (one frame's features), so 9,216 "
                           "parameters: FFNN w21 has 194,250 parameters, 14× the RNN's 14,090, 3.6× the LSTM's "
                           "54,410."), text
    wide, wider = (count_params(build_model(replace(VIDEO_MODELS[1], window=w), io)) for w in (21, 22))
    assert wide == 194_250 and wider - wide == 9_216  # the numbers are the models' own


def test_a_word_adds_its_embedding_and_a_comparison_without_both_kinds_has_no_sentence():
    task = TextRecallConfig(distance=20)
    io = ModelIO.from_dataset(dataset(task))
    text = window_cost((ModelConfig(kind="ffnn", window=25), ModelConfig(kind="lstm")), io, task)
    assert text.startswith("Each word in FFNN w25's window adds 16 inputs (one word's embedding), so 1,024 parameters")
    both = window_cost((ModelConfig(kind="linear", window=25), ModelConfig(kind="ffnn", window=25),
                        ModelConfig(kind="lstm")), io, task)
    assert both == text  # at equal windows the sentence is about the essay's FFNN, not the linear map
    linear = window_cost((ModelConfig(kind="linear", window=25), ModelConfig(kind="lstm")), io, task)
    assert linear.startswith("Each word in Linear w25's window adds 16 inputs (one word's embedding), so 96 parameters")
    assert window_cost((ModelConfig(kind="lstm"),), io, task) is None
    assert window_cost((ModelConfig(kind="ffnn"),), io, task) is None
    assert (step_noun(task), step_noun(VideoConfig())) == ("word", "frame")
