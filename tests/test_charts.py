"""lib.charts: the figures say what they show."""
import numpy as np
import pandas as pd
import pytest

from lib import charts


def test_scaling_draws_one_line_per_model_with_its_fitted_slope():
    values = [16, 32, 64, 128]
    df = pd.DataFrame([{"label": f"{m} H={v}", "kind": m.lower(), "what": "hidden", "value": v,
                        "step_seconds": k * v ** p, "train_flops": 4 * v ** 2}
                       for m, k, p in (("RNN", 1e-5, 1.0), ("LSTM", 2e-5, 0.5)) for v in values])
    fig = charts.scaling_lines(df)
    time_lines = [t for t in fig.data if t.xaxis == "x"]
    assert [t.name for t in time_lines] == ["RNN: slope 1.00 in time, 2.00 in FLOPs",
                                            "LSTM: slope 0.50 in time, 2.00 in FLOPs"]
    assert [list(t.x) for t in time_lines] == [values, values]  # a line through every size, not a dot per size
    assert [t.showlegend for t in fig.data] == [True, False, True, False]
    with_memory = charts.scaling_lines(df.assign(peak_memory_mb=df["value"] ** 2 / 100))
    assert [a.text for a in with_memory.layout.annotations] == [
        "time per training step<br>(measured)", "peak memory of a step<br>(measured)",
        "training FLOPs / sample<br>(analytic)"]
    assert with_memory.data[0].name == "RNN: slope 1.00 in time, 2.00 in memory, 2.00 in FLOPs"


@pytest.mark.parametrize("wrt, axis", [("hidden", "‖∂loss/∂h(t−k)‖"), ("input", "‖∂loss/∂x(t−k)‖")])
def test_the_gradient_axis_names_what_the_gradient_is_taken_of(wrt, axis):
    grads = pd.DataFrame({"label": "LSTM", "stage": "after training", "steps_back": [0, 1], "grad_norm": [1.0, 0.5],
                          "wrt": wrt})
    assert charts.gradient_through_time(grads).layout.yaxis.title.text.startswith(axis)
    with_ffnn = pd.concat([grads, grads.assign(label="FFNN w5", wrt="input")])
    assert charts.gradient_through_time(with_ffnn).layout.yaxis.title.text.startswith(axis)


def test_run_curves_colour_runs_by_a_config_value():
    history = pd.DataFrame([{"run": r, "label": f"LSTM ({r})", "epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e,
                             "elapsed_seconds": e, "learning rate": lr}
                            for r, lr in (("a", 0.01), ("b", 0.01), ("c", 0.001)) for e in (1, 2)])
    fig = charts.run_curves(history, "learning rate")
    assert len(fig.data) == 6  # train and validation per run
    colour = {t.line.color for t in fig.data if t.legendgroup == "0.01"}
    assert len(colour) == 1 and colour != {t.line.color for t in fig.data if t.legendgroup == "0.001"}
    assert [t.name for t in fig.data if t.showlegend] == ["learning rate = 0.01", "learning rate = 0.001"]
    title, note = fig.layout.title.text.split("<br>")
    assert len(title) <= 60 and note == "<sup>train dashed, validation solid</sup>"  # whole on an 800 px screen


def test_word_bars_write_each_word_on_its_bar_so_no_panel_labels_reach_into_the_next():
    fig = charts.word_bars({"RNN": [("food", 0.9), ("water", 0.05)], "LSTM": [("book", 0.6), ("coat", 0.3)]})
    assert [list(t.text) for t in fig.data] == [["water 5%", "food 90%"], ["coat 30%", "book 60%"]]
    assert [list(t.textposition) for t in fig.data] == [["outside", "inside"], ["outside", "inside"]]
    assert fig.layout.yaxis.showticklabels is False and fig.layout.yaxis2.showticklabels is False


def test_the_noise_floor_is_a_line_on_the_loss_and_metric_charts_and_baselines_carry_their_names():
    history = pd.DataFrame([{"label": "LSTM", "seed": 0, "epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e,
                             "elapsed_seconds": e} for e in (1, 2)])
    assert not charts.loss_curves(history).layout.shapes  # no floor where the task knows none
    loss = charts.loss_curves(history, noise_floor=0.01)
    assert [(s.y0, s.y1) for s in loss.layout.shapes] == [(0.01, 0.01)]
    assert [a.text for a in loss.layout.annotations] == ["noise floor"]
    summary = pd.DataFrame({"label": ["LSTM"], "metric": [0.02]})
    bars = charts.metric_bars(summary, "mse", baselines={"repeating the last value": 0.1}, noise_floor=0.01)
    assert [a.text for a in bars.layout.annotations] == ["repeating the last value", "noise floor"]


def test_attention_maps_draw_one_map_per_layer_and_head_with_the_cue_marked():
    import numpy as np

    from lib.charts import attention_maps

    weights = np.tril(np.ones((5, 5)))
    weights = np.broadcast_to(weights / weights.sum(1, keepdims=True), (2, 3, 5, 5))  # (layers, heads, T, T)
    fig = attention_maps(weights, list("abcde"), cue=1, title="T")
    assert [t.type for t in fig.data] == ["heatmap"] * 6
    assert [a.text for a in fig.layout.annotations] == [f"layer {i}, head {h}" for i in (1, 2) for h in (1, 2, 3)]
    assert len([s for s in fig.layout.shapes if s.x0 == 1 and s.line.dash == "dash"]) == 6
    assert fig.layout.title.text == "T; dashed: the decisive input (step 1:b)"
    assert attention_maps(weights, list("abcde")).layout.shapes == ()


def test_gradients_through_time_draw_each_curve_relative_to_k1_with_the_initial_curves_first_and_solid():
    grads = pd.DataFrame([{"label": label, "stage": stage, "steps_back": k, "wrt": "hidden",
                           "grad_norm": scale * 0.5 ** k, "relative": 0.5 ** k}
                          for stage, scale in (("after training", 1e-6), ("at initialisation", 1.0))
                          for label in ("RNN", "LSTM") for k in range(3)])
    fig = charts.gradient_through_time(grads)
    assert [t.name for t in fig.data] == ["RNN, at initialisation", "LSTM, at initialisation",
                                          "RNN, after training", "LSTM, after training"]
    assert [t.line.dash for t in fig.data] == ["solid", "solid", "dot", "dot"]
    assert all(list(t.y) == [1.0, 0.5, 0.25] for t in fig.data)  # the trained models' tiny scale is divided out
    assert fig.layout.yaxis.title.text == "‖∂loss/∂h(t−k)‖ relative to k = 1 (log scale)"
    assert fig.layout.yaxis.range is None and "cut" not in fig.layout.title.text  # every curve in view

    wild = grads.copy()  # a trained model that ignores step 1: its curve over a near-zero value there
    wild.loc[(wild["stage"] == "after training") & (wild["steps_back"] == 2), "relative"] = 1e12
    fig = charts.gradient_through_time(wild)
    assert list(fig.layout.yaxis.range) == [np.log10(0.25) - 3, 3.0]  # the initial curves keep the scale
    assert "a trained curve beyond 1,000× the initial ones is cut at the edge" in fig.layout.title.text


def test_accuracy_against_distance_draws_a_band_over_the_seeds():
    sweep = pd.DataFrame([{"label": "RNN", "seed": s, "distance": d, "metric": m}
                          for s, ms in ((0, (1.0, 0.4)), (1, (1.0, 0.9))) for d, m in zip((0, 40), ms, strict=True)])
    fig = charts.metric_vs_distance(sweep, "accuracy")
    band, line = fig.data
    assert band.fill == "toself" and list(band.y) == [1.0, 0.9, 0.4, 1.0]  # highest seed out, lowest back
    assert list(line.y) == [1.0, 0.65] and line.error_y.array is None
    assert len(charts.metric_vs_distance(sweep[sweep["seed"] == 0], "accuracy").data) == 1  # one seed: no band


def _context_sweep() -> pd.DataFrame:
    rows = [("FFNN w1", "ffnn", 1, 1, 0.2, 900), ("FFNN w8", "ffnn", 8, 8, 0.9, 4000),
            ("Linear w1", "linear", 1, 1, 0.2, 100), ("Linear w8", "linear", 8, 8, 0.8, 700),
            ("TCN k3 n1", "tcn", None, 5, 0.3, 2000), ("TCN k3 n2", "tcn", None, 13, 0.95, 3000),
            ("LSTM", "lstm", None, None, 0.96, 3200), ("Transformer", "transformer", None, None, 0.9, 4700)]
    return pd.DataFrame([{"label": lab, "kind": k, "window": w, "steps_seen": s, "seed": 0, "metric": m,
                          "n_params": n, "epoch_seconds": 0.1, "status": "completed"}
                         for lab, k, w, s, m, n in rows])


def test_context_tradeoff_puts_windows_and_receptive_fields_on_one_axis_with_references_as_lines():
    fig = charts.window_tradeoff(_context_sweep(), "accuracy", cue_lag=8, chance=0.17)
    assert fig.layout.title.text.startswith("Context tradeoff")
    assert "8 steps seen first reach the decisive input" in fig.layout.title.text
    lines = {t.name: list(t.x) for t in fig.data if t.mode == "lines+markers" and t.xaxis == "x"}
    assert lines == {"FFNN": [1, 8], "Linear": [1, 8], "TCN": [5, 13]}
    refs = [t for t in fig.data if t.name.endswith("(reference)") and t.xaxis == "x"]
    assert [t.name for t in refs] == ["LSTM (reference)", "Transformer (reference)"]
    assert all(list(t.x) == [1, 13] for t in refs)  # across every swept model's steps
    assert fig.layout.xaxis.title.text == "steps seen (window or receptive field)"
    ffnn_only = _context_sweep().query("kind in ('ffnn', 'lstm')").drop(columns="steps_seen")  # an older frame
    fig = charts.window_tradeoff(ffnn_only, "accuracy", cue_lag=8)
    assert fig.layout.title.text.startswith("FFNN window tradeoff") and fig.layout.xaxis.title.text == (
        "FFNN window (steps)")
    assert [t.name for t in fig.data if t.xaxis == "x"] == ["FFNN", "LSTM (reference)"]
    assert fig.layout.yaxis2.type in (None, "linear", "-") and fig.layout.yaxis2.rangemode == "tozero"  # a window's
    # parameters grow linearly with it, and draw as a straight line
