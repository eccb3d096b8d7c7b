"""Costs: parameter counts equal the closed forms, FLOPs follow the stated convention, measurements carry
their environment, and the FLOPs-versus-time note fires only when the numbers disagree."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from lib.costs import (
    ENV_COLUMNS,
    attention_note,
    closed_form_for,
    closed_form_params,
    cost_report,
    depth_note,
    flops,
    flops_vs_time_note,
    param_groups,
    param_table,
    peak_memory,
    scaling,
    time_inference,
)
from lib.errors import ConfigError
from lib.models import MODEL_KINDS, VARIANTS, ModelConfig, ModelIO, count_params
from lib.tasks.text import TextRecallConfig, make_text_recall
from lib.train import TrainConfig, seeded_model

ENV_KEYS = {"torch", "threads", "device", "mkldnn_enabled"}
FAST = TrainConfig(batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def ds():
    return make_text_recall(TextRecallConfig(distance=3, n_train=64, n_val=16, n_test=16))


def build(cfg: ModelConfig, io: ModelIO) -> nn.Module:
    return seeded_model(cfg, io, 0)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("tokens", [True, False])
@pytest.mark.parametrize("per_step", [False, True])
def test_param_groups_equal_closed_forms(kind, layers, tokens, per_step):
    io = ModelIO(seq_len=12, n_features=30 if tokens else 7, n_outputs=5, tokens=tokens, per_step=per_step)
    cfg = ModelConfig(kind=kind, hidden=9, layers=layers, window=4, embed_dim=6, heads=3, levels=layers + 1)
    model = build(cfg, io)
    assert param_groups(model) == closed_form_for(cfg, io)
    assert param_groups(model)["total"] == count_params(model)
    rows = param_table(model)
    assert sum(r["count"] for r in rows) == count_params(model)
    assert all(r["count"] == torch.Size(r["shape"]).numel() for r in rows)


def test_closed_forms_match_science_examples_and_pytorch_modules():
    # PyTorch's G·(H·I + H·H + 2H) per recurrent layer: I = 1, H = 128
    expected = {"rnn": 16_768, "gru": 50_304, "lstm": 67_072}
    modules = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
    for kind, n in expected.items():
        assert closed_form_params(kind, 1, 128)["recurrent layer 0"] == n
        assert sum(p.numel() for p in modules[kind](1, 128).parameters()) == n
    ffnn = closed_form_params("ffnn", input_size=16, hidden=32, layers=2, n_outputs=6, window=5,
                              vocab_size=40)
    assert ffnn == {"embedding": 640, "hidden layer 0": 5 * 16 * 32 + 32, "hidden layer 1": 32 * 32 + 32,
                    "head": 32 * 6 + 6, "total": 640 + 2592 + 1056 + 198}


def test_param_table_groups_in_module_order():
    io = ModelIO(seq_len=10, n_features=20, n_outputs=3, tokens=True)
    groups = [r["group"] for r in param_table(build(ModelConfig(kind="gru", hidden=4, layers=2), io))]
    assert list(dict.fromkeys(groups)) == ["embedding", "recurrent layer 0", "recurrent layer 1", "head"]


def test_closed_form_rejects_unknown_kind():
    message = r"^unknown model 'mamba'; choose one of: ffnn, rnn, gru, lstm, linear, tcn, transformer, mingru\.$"
    with pytest.raises(ConfigError, match=message):
        closed_form_params("mamba", 1, 8)


@pytest.mark.parametrize("cfg", [*(ModelConfig(kind="linear", window=5, variant=v) for v in VARIANTS),
                                 *(ModelConfig(kind="tcn", hidden=3, kernel=k, levels=n) for k, n in ((2, 1), (5, 3)))])
def test_closed_forms_of_linear_variants_and_tcn_without_residual_convolution(cfg):
    io = ModelIO(seq_len=12, n_features=3, n_outputs=3)  # as many outputs as features (NLinear); TCN width 3 = I
    model = build(cfg, io)
    assert param_groups(model) == closed_form_for(cfg, io)
    assert not any("residual" in name for name, _ in model.named_parameters())


def test_closed_forms_of_the_new_kinds_by_hand():
    # TCN I=3, C=4, k=2, 2 levels: level 0 = 4·3·2 + 4·4·2 + 4·4 (gains, biases) + 4·3 + 4 (1×1 residual)
    assert closed_form_params("tcn", 3, 4, kernel=2, levels=2) == {"level 0": 88, "level 1": 80, "head": 5,
                                                                   "total": 173}
    # Transformer d=4, T=10: projection 3·4 + 4, positions 10·4, block 12·16 + 13·4, final norm 8, head 4·2 + 2
    assert closed_form_params("transformer", 3, 4, n_outputs=2, seq_len=10) == {
        "input projection": 16, "positions": 40, "block 0": 244, "final norm": 8, "head": 10, "total": 318}
    # minGRU H=4, 2 layers: 2·4·3 + 8, 2·4·4 + 8; DLinear window 4, I=3, O=2: two maps of 4·3·2 + 2
    assert closed_form_params("mingru", 3, 4, layers=2)["total"] == 32 + 40 + 5
    assert closed_form_params("linear", 3, 1, n_outputs=2, window=4, variant="dlinear") == {
        "head": 26, "trend": 26, "total": 52}


def test_flops_hand_computed_cases():
    io = ModelIO(seq_len=10, n_features=40, n_outputs=6, tokens=True)
    # LSTM, I = 16, H = 64: 4·64·(16+64)·10 + 64·6 = 204,800 + 384 MACs
    f = flops(ModelConfig(kind="lstm", hidden=64, embed_dim=16), io)
    assert f["forward_macs"] == 205_184
    assert f["forward_flops"] == 410_368
    assert f["train_flops"] == 3 * 410_368
    assert f["groups"] == {"recurrent layer 0": 409_600, "head": 768}
    # 2-layer GRU, per step: 3·8·(16+8)·10 + 3·8·(8+8)·10 + 8·6·10
    f = flops(ModelConfig(kind="gru", hidden=8, layers=2, embed_dim=16), ModelIO(10, 40, 6, True, True))
    assert f["forward_macs"] == 5760 + 3840 + 480
    # FFNN window 5, features 16, hidden 32, 2 layers: 5·16·32 + 32·32 + 32·6
    f = flops(ModelConfig(kind="ffnn", hidden=32, layers=2, window=5), ModelIO(10, 16, 6))
    assert f["forward_macs"] == 2560 + 1024 + 192


def test_flops_of_the_new_kinds_by_hand():
    seq, per_step = ModelIO(10, 3, 2), ModelIO(10, 3, 2, per_step=True)
    dlinear = ModelConfig(kind="linear", window=4, variant="dlinear")
    assert flops(dlinear, seq)["forward_macs"] == 2 * 4 * 3 * 2  # two maps of w·I·O
    assert flops(dlinear, per_step)["forward_macs"] == 10 * 2 * 4 * 3 * 2  # at every step
    # TCN C=4, k=2: level 0 (4·3·2 + 4·4·2 + 4·3)·10, level 1 (4·4·2 + 4·4·2)·10, head 4·2
    f = flops(ModelConfig(kind="tcn", hidden=4, kernel=2, levels=2), seq)
    assert f["groups"] == {"level 0": 2 * 680, "level 1": 2 * 640, "head": 2 * 8}
    # Transformer d=4, T=10: projection 3·4·10, block 12·16·10 + 4·10·11 (causal scores and values), head 4·2
    f = flops(ModelConfig(kind="transformer", hidden=4), seq)
    assert f["forward_macs"] == 120 + 1920 + 440 + 8
    assert f["groups"]["positions"] == f["groups"]["final norm"] == 0
    # minGRU H=4, 2 layers: 2·4·3·10 + 2·4·4·10 + 4·2
    assert flops(ModelConfig(kind="mingru", hidden=4, layers=2), seq)["forward_macs"] == 240 + 320 + 8


@pytest.mark.parametrize("cfg", [ModelConfig(kind="ffnn", hidden=4, layers=2),
                                 ModelConfig(kind="linear", window=4, variant="dlinear"),
                                 ModelConfig(kind="tcn", hidden=4, kernel=3, levels=3),
                                 ModelConfig(kind="mingru", hidden=5, layers=2),
                                 ModelConfig(kind="transformer", hidden=4, layers=2)])
@pytest.mark.parametrize("per_step", [False, True])
def test_flops_equal_torch_flop_counter(cfg, per_step):
    from torch.utils.flop_counter import FlopCounterMode

    io = ModelIO(10, 3, 2, per_step=per_step)
    with FlopCounterMode(display=False) as counter:
        build(cfg, io)(torch.randn(1, 10, 3))
    f = flops(cfg, io)
    attention = 2 * cfg.layers * 4 * 10 * 11 if cfg.kind == "transformer" else 0  # SDPA: unseen on CPU
    assert counter.get_total_flops() == f["forward_flops"] - attention


def test_flops_grow_with_length_for_recurrent_models_only():
    cfg = ModelConfig(kind="rnn", hidden=8, window=5)
    short, long = ModelIO(10, 3, 2), ModelIO(40, 3, 2)
    rec = [flops(cfg, io)["groups"]["recurrent layer 0"] for io in (short, long)]
    assert rec[1] == 4 * rec[0]
    ff = [flops(ModelConfig(kind="ffnn", hidden=8, window=5), io)["forward_flops"] for io in (short, long)]
    assert ff[0] == ff[1]


def test_time_inference_restores_mode_and_reports_per_sample(ds):
    model = build(ModelConfig(kind="gru", hidden=8), ModelIO.from_dataset(ds)).train()
    result = time_inference(model, ds.test.x[:4], repeats=3, warmup=1)
    assert result["batch_seconds"] > 0
    assert result["seconds_per_sample"] == pytest.approx(result["batch_seconds"] / 4)
    assert result["batch_size"] == 4 and ENV_KEYS <= result["env"].keys()
    assert model.training


def test_peak_memory_covers_weights_gradients_and_adam_state(ds):
    small = peak_memory(ds, ModelConfig(kind="lstm", hidden=8), FAST)
    big = peak_memory(ds, ModelConfig(kind="lstm", hidden=128), FAST)
    n_big = count_params(build(ModelConfig(kind="lstm", hidden=128), ModelIO.from_dataset(ds)))
    # float32 weights + gradients + Adam's two moments are all alive after a step
    assert big["peak_bytes"] >= 4 * 4 * n_big
    assert big["peak_bytes"] > small["peak_bytes"] > 0
    assert big["peak_mb"] == pytest.approx(big["peak_bytes"] / 1e6)
    assert ENV_KEYS <= big["env"].keys() and big["method"]


def test_cost_report_has_one_row_per_model_with_environment(ds):
    cfgs = [ModelConfig(kind="ffnn", hidden=8, window=3), ModelConfig(kind="lstm", hidden=8),
            ModelConfig(kind="lstm", hidden=8, init="pytorch")]
    seen = []
    df = cost_report(ds, cfgs, FAST, warmup=1, repeats=2, on_row=seen.append)
    assert list(df["label"]) == ["FFNN w3", "LSTM", "LSTM #2"] and len(seen) == 3
    assert list(df["init"]) == ["pytorch", "chrono", "pytorch"]
    io = ModelIO.from_dataset(ds)
    assert list(df["n_params"]) == [closed_form_for(c, io)["total"] for c in cfgs]
    assert list(df["train_flops"]) == [flops(c, io)["train_flops"] for c in cfgs]
    for col in ("epoch_seconds", "latency_ms", "peak_memory_mb"):
        assert (df[col] > 0).all(), col
    assert list(df["step_seconds"]) == list(df["epoch_seconds"] / 2)  # 64 samples in batches of 32
    assert set(ENV_COLUMNS) <= set(df.columns)
    assert set(df["device"]) == {"cpu"} and set(df["threads"]) == {torch.get_num_threads()}
    assert set(df["torch"]) == {torch.__version__}
    assert set(df["mkldnn"]) == {torch.backends.mkldnn.enabled}
    message = r"^epochs must be at least 1 and warmup at least 0, got 0 and 1\.$"
    with pytest.raises(ConfigError, match=message):
        cost_report(ds, cfgs[:1], FAST, epochs=0, warmup=1)


def test_scaling_over_hidden_and_length():
    df = scaling("gru", "hidden", (4, 8), seq_len=6, batch_size=8, repeats=2, warmup=1, device="cpu")
    assert list(df["hidden"]) == [4, 8] and list(df["label"]) == ["GRU H=4", "GRU H=8"]
    assert list(df["n_params"]) == [closed_form_params("gru", 16, h, n_outputs=1)["total"] for h in (4, 8)]
    assert (df["step_seconds"] > 0).all() and set(df["device"]) == {"cpu"}
    df = scaling("lstm", "seq_len", (5, 10), base=ModelConfig(hidden=4), batch_size=8, repeats=2, warmup=1,
                 device="cpu")
    assert list(df["seq_len"]) == [5, 10] and list(df["sequential_depth"]) == [5, 10]  # one step at a time
    assert (df["peak_memory_mb"] > 0).all()
    assert df["forward_flops"].iloc[1] - 2 * 4 * 1 == 2 * (df["forward_flops"].iloc[0] - 2 * 4 * 1)
    with pytest.raises(ConfigError, match=r"^scaling runs over 'hidden' or 'seq_len', got 'layers'\.$"):
        scaling("lstm", "layers", (1, 2))


def test_a_stopped_measurement_returns_the_rows_measured_so_far(ds):
    cfgs = [ModelConfig(kind="ffnn", hidden=8, window=3), ModelConfig(kind="rnn", hidden=8),
            ModelConfig(kind="lstm", hidden=8)]
    seen = []
    df = cost_report(ds, cfgs, FAST, warmup=1, repeats=2, on_row=seen.append, should_stop=lambda: len(seen) == 2)
    assert list(df["label"]) == ["FFNN w3", "RNN"] == [row["label"] for row in seen]
    seen = []
    df = scaling("gru", "hidden", (4, 8, 16), seq_len=6, batch_size=8, repeats=2, warmup=1, device="cpu",
                 on_row=seen.append, should_stop=lambda: len(seen) == 1)
    assert list(df["label"]) == ["GRU H=4"] == [row["label"] for row in seen]


def _table(times: dict[str, float], device: str = "cpu") -> pd.DataFrame:
    flop = {"FFNN w5": 1e4, "RNN": 1e5, "GRU": 3e5, "LSTM": 4e5}
    return pd.DataFrame([{"label": k, "kind": k.split()[0].lower(), "train_flops": flop[k],
                          "epoch_seconds": s, "device": device, "mkldnn": True} for k, s in times.items()])


def test_flops_vs_time_note_explains_fused_lstm_on_cpu():
    note = flops_vs_time_note(_table({"RNN": 1.0, "LSTM": 0.6}))
    assert note.startswith("LSTM needs 4.0× the FLOPs of RNN yet took 0.6 s per epoch against 1 s.")
    assert "fused oneDNN kernel" in note


def test_flops_vs_time_note_generic_reason_off_cpu():
    note = flops_vs_time_note(_table({"RNN": 1.0, "LSTM": 0.6}, device="cuda:0"))
    assert "oneDNN" not in note and "per-operation overhead" in note


def test_flops_vs_time_note_none_when_rankings_agree_or_within_noise():
    assert flops_vs_time_note(_table({"FFNN w5": 0.1, "RNN": 0.5, "GRU": 0.9, "LSTM": 1.0})) is None
    assert flops_vs_time_note(_table({"GRU": 1.0, "LSTM": 0.95})) is None  # 5 % faster: noise
    with pytest.raises(ConfigError, match=r"^the note needs a FLOPs column"):
        flops_vs_time_note(pd.DataFrame({"label": ["a"], "epoch_seconds": [1.0]}))


# ---------------------------------------------------------------- cost sentences: numbers in, no training

def _run(*epoch_cpu: float, wall: float | None = None):
    """A finished run as lib.costs.update_cpu_ms reads it: its history of timed epochs."""
    from types import SimpleNamespace
    return SimpleNamespace(history=[{"epoch_cpu_seconds": c, "epoch_seconds": wall or c} for c in epoch_cpu])


def test_rank_orders_two_costs_only_beyond_the_larger_spread():
    from lib.costs import rank
    assert rank(1.0, 0.1, 2.0, 0.2) == -1 and rank(2.0, 0.2, 1.0, 0.1) == 1
    assert rank(1.0, 0.3, 1.2, 0.05) == 0  # 0.2 apart, spread 0.3: not ranked
    assert rank(10, float("nan"), 11, float("nan")) == -1  # exact counts (parameters) have no spread
    assert rank(float("nan"), 0, 1.0, 0) == 0


def test_update_cpu_ms_is_the_median_of_timed_epochs_so_one_slow_epoch_does_not_decide():
    """Issue 22: one slow wall-clock epoch made FFNN w2 read 25x slower than FFNN w1."""
    from lib.costs import update_cpu_ms
    median, spread = update_cpu_ms([_run(0.10, 0.11, 2.5, 0.10, 0.12)], steps_per_epoch=10)
    assert median == pytest.approx(11.0) and spread == pytest.approx(2.0)  # CPU ms per update; IQR 10 .. 12
    # the spread counts seeds too: the range of the per-seed medians when it is wider
    median, spread = update_cpu_ms([_run(0.10, 0.10), _run(0.20, 0.20)], steps_per_epoch=10)
    assert (median, spread) == (pytest.approx(15.0), pytest.approx(10.0))
    # runs stored before CPU time was recorded fall back on wall seconds
    from types import SimpleNamespace
    old = SimpleNamespace(history=[{"epoch_seconds": 0.3}])
    assert update_cpu_ms([old], steps_per_epoch=3)[0] == pytest.approx(100.0)


def _row(n, cpu, cpu_spread, ms, ms_spread):
    return pd.Series({"n_params": n, "update_cpu_ms": cpu, "update_cpu_spread_ms": cpu_spread, "latency_ms": ms,
                      "latency_spread_ms": ms_spread})


def test_cost_sentence_ranks_every_cost_that_differs_beyond_its_spread():
    from lib.costs import cost_sentence
    text = cost_sentence("FFNN w4", _row(450, 0.5, 0.05, 0.02, 0.001), "GRU", _row(13000, 3.0, 0.2, 0.14, 0.01))
    assert text == ("Costs (parameters, training time, prediction time): FFNN w4 450, 0.5 (spread 0.05) CPU ms per "
                    "update, 0.02 (spread 0.001) ms per sequence; GRU 13,000, 3 (spread 0.2) CPU ms per update, 0.14 "
                    "(spread 0.01) ms per sequence, so FFNN w4 costs less on every count.")


def test_cost_sentence_never_ranks_two_times_closer_than_their_spread():
    from lib.costs import cost_sentence
    # FFNN w2 against FFNN w1: more parameters, a training time 0.1 ms apart with a spread of 0.3 ms
    text = cost_sentence("FFNN w2", _row(200, 0.6, 0.3, 0.020, 0.004), "FFNN w1", _row(100, 0.5, 0.1, 0.021, 0.002))
    assert "costs more in parameters" in text and "training time" not in text.split(", so ")[1].split(";")[0]
    assert text.endswith("; their training time and prediction time differ by less than the spread of repeated "
                         "timed steps, so they are not ranked.")
    assert "costs more on every count" not in text and "costs less" not in text
    # the same numbers with a tight spread are ranked
    tight = cost_sentence("FFNN w2", _row(200, 0.6, 0.01, 0.03, 0.001), "FFNN w1", _row(100, 0.5, 0.01, 0.02, 0.001))
    assert tight.endswith(", so FFNN w2 costs more on every count.")


def test_cost_sentence_says_equal_parameters_and_is_empty_without_costs():
    from lib.costs import cost_sentence
    text = cost_sentence("a", _row(100, 1.0, 0.01, 0.1, 0.01), "b", _row(100, 2.0, 0.01, 0.1, 0.01))
    assert text.endswith(", so a costs less in training time; they have the same parameters; their prediction time "
                         "differs by less than the spread of repeated timed steps, so it is not ranked.")
    nan = float("nan")
    assert cost_sentence("a", _row(nan, nan, nan, nan, nan), "b", _row(1, 1, 0, 1, 0)) == ""


def test_flops_vs_time_note_reads_the_median_cpu_step_and_ignores_gaps_within_its_spread():
    table = pd.DataFrame([{"label": "RNN", "kind": "rnn", "train_flops": 1e5, "step_cpu_ms": 1.0,
                           "step_cpu_spread_ms": 0.5, "device": "cpu", "mkldnn": True},
                          {"label": "LSTM", "kind": "lstm", "train_flops": 4e5, "step_cpu_ms": 0.6,
                           "step_cpu_spread_ms": 0.1, "device": "cpu", "mkldnn": True}])
    assert flops_vs_time_note(table) is None  # 0.4 ms faster, within RNN's spread of 0.5 ms
    note = flops_vs_time_note(table.assign(step_cpu_spread_ms=0.05))
    assert note.startswith("LSTM needs 4.0× the FLOPs of RNN yet took 0.6 CPU ms per training step (median) "
                           "against 1 ms.")


def test_the_depth_note_says_what_runs_one_after_another_at_the_longest_length():
    kinds = ("lstm", "tcn", "transformer")
    df = pd.concat([scaling(k, "seq_len", (4, 8), base=ModelConfig(hidden=4, heads=1, levels=2), batch_size=4,
                            repeats=1, warmup=0, device="cpu") for k in kinds], ignore_index=True)
    assert depth_note(df) == (
        "At T = 8, one training forward runs this many layer steps one after another (no number of cores shortens "
        "them; the output layer not counted): 1 for Transformer; 4 for TCN k3 n2; 8 for LSTM. A recurrence needs one "
        "per step; a TCN two "
        "convolutions per level, however long the sequence; attention and minGRU's parallel scan one per layer, "
        "at a cost in memory and arithmetic instead.")
    assert depth_note(scaling("gru", "hidden", (4,), seq_len=4, batch_size=4, repeats=1, warmup=0,
                              device="cpu")) is None


def test_the_attention_note_gives_the_share_of_the_transformers_flops_its_scores_take():
    df = scaling("transformer", "seq_len", (96, 192), base=ModelConfig(hidden=8, heads=1), batch_size=2, repeats=1,
                 warmup=0, device="cpu")
    # by hand, d = 8, 16 inputs: scores 8·96·97 = 74,496 MACs against 12·64·96 = 73,728 for the rest of the block,
    # 16·8·96 = 12,288 for the input projection and 8 for the head: 46%; at T = 192: 296,448 of 468,488: 63%
    assert attention_note(df) == (
        "The Transformer's attention scores grow with T² (d·T² per layer, against 12·d²·T for its projections and "
        "feed-forward layer): they are 46% of its FLOPs at T = 96 and 63% at T = 192, and outgrow the rest of a "
        "block once T exceeds 12 × its width (96 steps here). Below that, attention grows about as fast as the "
        "other kinds.")
    assert attention_note(df.assign(kind="lstm")) is None
