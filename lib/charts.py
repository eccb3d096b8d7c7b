"""Pure Plotly figure builders: tidy DataFrames in, figures out. Every figure has a title and axis units."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.D3
KIND_ORDER = ("ffnn", "rnn", "gru", "lstm")


def colors(labels) -> dict[str, str]:
    """A stable colour per model label, in order of appearance."""
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(dict.fromkeys(labels))}


def _band(fig, x, lo, hi, color, name, row=None, col=None):
    kw = {"row": row, "col": col} if row else {}
    fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]),
                             fill="toself", fillcolor=color, opacity=0.15, line={"width": 0},
                             hoverinfo="skip", showlegend=False, name=f"{name} band", legendgroup=name), **kw)


def _metric_label(metric: str) -> str:
    return {"accuracy": "test accuracy (fraction correct)", "mse": "test MSE (squared units)"}.get(
        metric, metric)


def loss_curves(history: pd.DataFrame, x: str = "epoch", log_y: bool = False) -> go.Figure:
    """Train (dashed) and validation (solid) loss per model: mean over seeds with a min-max band."""
    fig = go.Figure()
    cmap = colors(history["label"])
    for label, g in history.groupby("label", sort=False):
        for col, dash in (("train_loss", "dash"), ("val_loss", "solid")):
            agg = g.groupby("epoch").agg(y=(col, "mean"), lo=(col, "min"), hi=(col, "max"),
                                         t=("elapsed_seconds", "mean")).reset_index()
            xs = agg["epoch"].to_numpy() if x == "epoch" else agg["t"].to_numpy()
            if g["seed"].nunique() > 1:
                _band(fig, xs, agg["lo"].to_numpy(), agg["hi"].to_numpy(), cmap[label], label)
            fig.add_trace(go.Scatter(x=xs, y=agg["y"], mode="lines", name=f"{label} {col.split('_')[0]}",
                                     line={"color": cmap[label], "dash": dash}, legendgroup=label))
    fig.update_layout(title="Loss curves (train dashed, validation solid)",
                      xaxis_title="epoch" if x == "epoch" else "wall-clock time (s)",
                      yaxis_title="loss (cross-entropy or MSE)", yaxis_type="log" if log_y else "linear",
                      legend_title="model")
    return fig


def window_tradeoff(sweep: pd.DataFrame, metric: str, cue_lag: int | None = None,
                    chance: float | None = None) -> go.Figure:
    """FFNN metric, parameters and time per epoch against its window; recurrent models as reference lines."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=(metric, "parameters", "time per epoch (s)"))
    ff = sweep[sweep["kind"] == "ffnn"]
    refs = sweep[sweep["kind"] != "ffnn"]
    cmap = colors(["FFNN", *refs["label"]])
    for i, col in enumerate(("metric", "n_params", "epoch_seconds"), start=1):
        agg = ff.groupby("window")[col].agg(["mean", "min", "max"]).reset_index()
        if ff["seed"].nunique() > 1:
            _band(fig, agg["window"].to_numpy(), agg["min"].to_numpy(), agg["max"].to_numpy(),
                  cmap["FFNN"], "FFNN", 1, i)
        fig.add_trace(go.Scatter(x=agg["window"], y=agg["mean"], mode="lines+markers", name="FFNN",
                                 line={"color": cmap["FFNN"]}, legendgroup="FFNN", showlegend=i == 1), 1, i)
        for label, g in refs.groupby("label", sort=False):
            fig.add_hline(y=g[col].mean(), line={"color": cmap[label], "dash": "dot"}, row=1, col=i)
            if i == 1:  # legend entry for the reference line
                fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{label} (reference)",
                                         line={"color": cmap[label], "dash": "dot"}), 1, 1)
        if cue_lag is not None:
            fig.add_vline(x=cue_lag, line={"color": "grey", "dash": "dash"}, row=1, col=i)
        fig.update_xaxes(title_text="FFNN window (steps)", row=1, col=i)
    if chance is not None:
        fig.add_hline(y=chance, line={"color": "grey", "width": 1}, annotation_text="chance", row=1, col=1)
    fig.update_yaxes(title_text=_metric_label(metric), row=1, col=1)
    fig.update_yaxes(title_text="parameters (count)", type="log", row=1, col=2)
    fig.update_yaxes(title_text="seconds per epoch", row=1, col=3)
    title = "FFNN window tradeoff"
    if cue_lag is not None:
        title += f" (dashed line: window {cue_lag} first reaches the decisive input)"
    fig.update_layout(title=title, legend_title="model")
    return fig


def metric_vs_distance(sweep: pd.DataFrame, metric: str, distance_name: str = "distance",
                       chance: float | None = None) -> go.Figure:
    """Test metric against dependency distance per model, mean over seeds with min-max error bars."""
    fig = go.Figure()
    cmap = colors(sweep["label"])
    for label, g in sweep.groupby("label", sort=False):
        agg = g.groupby("distance")["metric"].agg(["mean", "min", "max"]).reset_index()
        fig.add_trace(go.Scatter(
            x=agg["distance"], y=agg["mean"], mode="lines+markers", name=label, line={"color": cmap[label]},
            error_y={"type": "data", "symmetric": False, "array": agg["max"] - agg["mean"],
                     "arrayminus": agg["mean"] - agg["min"]}))
    if chance is not None:
        fig.add_hline(y=chance, line={"color": "grey", "dash": "dot"}, annotation_text="chance")
    fig.update_layout(title=f"{metric.capitalize()} against dependency distance",
                      xaxis_title=f"{distance_name} (steps)", yaxis_title=_metric_label(metric),
                      legend_title="model")
    return fig


def metric_bars(summary: pd.DataFrame, metric: str, chance: float | None = None,
                baselines: dict | None = None) -> go.Figure:
    """Test metric per model: mean over seeds with the individual seeds as dots."""
    cmap = colors(summary["label"])
    agg = summary.groupby("label", sort=False)["metric"].mean()
    fig = go.Figure(go.Bar(x=agg.index, y=agg.values, marker_color=[cmap[x] for x in agg.index],
                           name="mean over seeds"))
    fig.add_trace(go.Scatter(x=summary["label"], y=summary["metric"], mode="markers", name="one seed",
                             marker={"color": "black", "size": 6}))
    if chance is not None:
        fig.add_hline(y=chance, line={"color": "grey", "dash": "dot"}, annotation_text="chance")
    for name, value in (baselines or {}).items():
        fig.add_hline(y=value, line={"color": "grey", "dash": "dash"}, annotation_text=name)
    fig.update_layout(title=f"Test {metric} per model", xaxis_title="model", yaxis_title=_metric_label(metric))
    return fig
