"""lib.charts: the figures say what they show."""
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
