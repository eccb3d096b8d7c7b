"""Pure Plotly figure builders: tidy DataFrames in, figures out. Every figure has a title and axis units."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from lib.stats import loglog_slope

PALETTE = qualitative.D3


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


def _noise_floor(fig: go.Figure, noise_floor: float | None) -> None:
    """The lowest MSE any forecast can reach (the target's noise variance), as a line, where the task knows it."""
    if noise_floor is not None:
        fig.add_hline(y=noise_floor, line={"color": "grey", "dash": "dashdot", "width": 1},
                      annotation_text="noise floor", annotation_position="bottom right")


def loss_curves(history: pd.DataFrame, x: str = "epoch", log_y: bool = False,
                noise_floor: float | None = None) -> go.Figure:
    """Train (dashed) and validation (solid) loss per model: mean over seeds with a min-max band; with a
    noise_floor (an MSE task's noise variance, lib.tasks.base.SequenceDataset), a line at it."""
    fig = go.Figure()
    cmap = colors(history["label"])
    for label, g in history.groupby("label", sort=False):
        for col, dash in (("train_loss", "dash"), ("val_loss", "solid")):
            agg = g.groupby("epoch").agg(y=(col, "mean"), lo=(col, "min"), hi=(col, "max"),
                                         t=("elapsed_seconds", "mean")).reset_index()
            xs = agg["epoch"].to_numpy() if x == "epoch" else agg["t"].to_numpy()
            if g["seed"].nunique() > 1:
                _band(fig, xs, agg["lo"].to_numpy(), agg["hi"].to_numpy(), cmap[label], label)
            train = col == "train_loss"  # one legend entry per model, its validation line; train is on hover
            fig.add_trace(go.Scatter(x=xs, y=agg["y"], mode="lines" if len(xs) > 1 else "markers",  # 1 epoch: a dot
                                     name=f"{label} train" if train else label,
                                     line={"color": cmap[label], "dash": dash}, legendgroup=label,
                                     marker={"color": cmap[label], "symbol": "circle-open" if train else "circle"},
                                     showlegend=not train))
    fig.update_layout(title="Loss curves (train dashed, validation solid)",
                      xaxis_title="epoch" if x == "epoch" else "wall-clock time (s)",
                      yaxis_title="loss (cross-entropy or MSE)", yaxis_type="log" if log_y else "-",
                      legend_title="model")  # "-": plotly picks a linear axis for numbers
    _noise_floor(fig, noise_floor)
    return fig


def run_curves(history: pd.DataFrame, color_by: str, x: str = "epoch") -> go.Figure:
    """Each run's own train (dashed) and validation (solid) loss, coloured by one config column.

    history: one row per run and epoch with columns run (an id), label (how a run is named on hover), epoch,
    train_loss, val_loss, elapsed_seconds and `color_by`; runs that share its value share a colour and one
    legend entry."""
    fig = go.Figure()
    values = history[color_by].astype(str)
    cmap = colors(values)
    shown = set()
    for run, g in history.groupby("run", sort=False):
        value = str(g[color_by].iloc[0])
        for col, dash in (("train_loss", "dash"), ("val_loss", "solid")):
            fig.add_trace(go.Scatter(
                x=g[x], y=g[col], mode="lines", name=f"{color_by} = {value}", legendgroup=value,
                showlegend=value not in shown, line={"color": cmap[value], "dash": dash},
                hovertemplate=f"{g['label'].iloc[0]} ({run}) {col.split('_')[0]}: %{{y:.4g}}<extra></extra>"))
            shown.add(value)
    fig.update_layout(title=f"Loss curves of the selected runs by {color_by}<br><sup>train dashed, validation solid"
                            "</sup>",
                      xaxis_title="epoch" if x == "epoch" else "wall-clock time (s)",
                      yaxis_title="loss (cross-entropy or MSE)", legend_title=color_by)
    return fig


def window_tradeoff(sweep: pd.DataFrame, metric: str, cue_lag: int | None = None,
                    chance: float | None = None) -> go.Figure:
    """Metric, parameters and time per epoch against the steps each swept model sees (column steps_seen, else
    window: an FFNN or linear window, a TCN's receptive field), one line per kind; the rows without one (recurrent
    models, a Transformer) as reference lines. With the FFNN alone: the FFNN window tradeoff."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=(metric, "parameters", "time per epoch (s)"),
                        horizontal_spacing=0.14)  # room for each panel's axis title, also on a narrow screen
    x = "steps_seen" if "steps_seen" in sweep and sweep["steps_seen"].notna().any() else "window"
    windowed = sweep[x].notna()
    ff, refs = sweep[windowed], sweep[~windowed]
    names = ff["label"].str.split().str[0]  # one line per kind: "FFNN", "Linear", "TCN"
    context = names.nunique() > 1 or (names != "FFNN").any()
    cmap = colors([*names, *refs["label"]])
    span = [ff[x].min(), ff[x].max()]
    for i, col in enumerate(("metric", "n_params", "epoch_seconds"), start=1):
        for name, g in ff.groupby(names, sort=False):
            agg = g.groupby(x).agg(mean=(col, "mean"), min=(col, "min"), max=(col, "max"),
                                   label=("label", "first")).reset_index()
            if g["seed"].nunique() > 1:
                _band(fig, agg[x].to_numpy(), agg["min"].to_numpy(), agg["max"].to_numpy(), cmap[name], name, 1, i)
            fig.add_trace(go.Scatter(x=agg[x], y=agg["mean"], mode="lines+markers", name=name, text=agg["label"],
                                     hovertemplate="%{text}: %{y:.4g}<extra></extra>", line={"color": cmap[name]},
                                     legendgroup=name, showlegend=i == 1), 1, i)
        for label, g in refs.groupby("label", sort=False):  # a trace, not an hline, so the axis covers it
            fig.add_trace(go.Scatter(x=span, y=[g[col].mean()] * 2, mode="lines", name=f"{label} (reference)",
                                     line={"color": cmap[label], "dash": "dot"}, legendgroup=label,
                                     showlegend=i == 1), 1, i)
        if cue_lag is not None:
            fig.add_vline(x=cue_lag, line={"color": "grey", "dash": "dash"}, row=1, col=i)
        fig.update_xaxes(title_text="steps seen (window or receptive field)" if context else "FFNN window (steps)",
                         row=1, col=i)
    if chance is not None:
        fig.add_hline(y=chance, line={"color": "grey", "width": 1}, annotation_text="chance",
                      annotation_position="bottom left", row=1, col=1)
    fig.update_yaxes(title_text=_metric_label(metric), row=1, col=1)
    fig.update_yaxes(title_text="parameters (count)", rangemode="tozero", row=1, col=2)  # linear: each step of
    # window adds the same inputs, so an FFNN's or linear map's count draws as the straight line it is
    fig.update_yaxes(title_text="seconds per epoch", row=1, col=3)
    title = "Context tradeoff: steps seen against metric and cost" if context else "FFNN window tradeoff"
    if cue_lag is not None:
        title += (f"<br><sup>dashed line: {cue_lag} steps seen first reach the decisive input</sup>" if context
                  else f"<br><sup>dashed line: window {cue_lag} first reaches the decisive input</sup>")
    fig.update_layout(title=title, legend={"title": "model", "orientation": "h", "y": -0.25})
    return fig


def metric_vs_distance(sweep: pd.DataFrame, metric: str, distance_name: str = "distance",
                       chance: float | None = None) -> go.Figure:
    """Test metric against dependency distance per model: the mean over seeds, with a band from the lowest to
    the highest seed where there are several."""
    fig = go.Figure()
    cmap = colors(sweep["label"])
    for label, g in sweep.groupby("label", sort=False):
        agg = g.groupby("distance")["metric"].agg(["mean", "min", "max"]).reset_index()
        if g["seed"].nunique() > 1:
            _band(fig, agg["distance"].to_numpy(), agg["min"].to_numpy(), agg["max"].to_numpy(), cmap[label], label)
        fig.add_trace(go.Scatter(x=agg["distance"], y=agg["mean"], mode="lines+markers", name=label,
                                 line={"color": cmap[label]}, legendgroup=label))
    if chance is not None:
        fig.add_hline(y=chance, line={"color": "grey", "dash": "dot"}, annotation_text="chance")
    fig.update_layout(title=f"{metric.capitalize()} against dependency distance",
                      xaxis_title=f"{distance_name} (steps)", yaxis_title=_metric_label(metric),
                      legend_title="model")
    return fig


def metric_bars(summary: pd.DataFrame, metric: str, chance: float | None = None,
                baselines: dict | None = None, noise_floor: float | None = None) -> go.Figure:
    """Test metric per model: mean over seeds with the individual seeds as dots; lines at chance, at each
    baseline ({name a reader knows: value}, lib.trivial.baseline_lines) and at the noise floor."""
    cmap = colors(summary["label"])
    agg = summary.groupby("label", sort=False)["metric"].mean()
    fig = go.Figure(go.Bar(x=agg.index, y=agg.values, marker_color=[cmap[x] for x in agg.index],
                           name="mean over seeds", showlegend=False))
    fig.add_trace(go.Scatter(x=summary["label"], y=summary["metric"], mode="markers", name="one seed",
                             marker={"color": "grey", "size": 6, "line": {"width": 1, "color": "white"}}))
    if chance is not None:
        fig.add_hline(y=chance, line={"color": "grey", "dash": "dot"}, annotation_text="chance",
                      annotation_position="top left")
    for name, value in (baselines or {}).items():
        fig.add_hline(y=value, line={"color": "grey", "dash": "dash"}, annotation_text=name,
                      annotation_position="top left")
    _noise_floor(fig, noise_floor)
    fig.update_layout(title=f"Test {metric} per model", xaxis_title="model", yaxis_title=_metric_label(metric))
    return fig


GRADIENT_AXES = {"hidden": "‖∂loss/∂h(t−k)‖", "input": "‖∂loss/∂x(t−k)‖"}  # hidden state / input k steps back


def gradient_through_time(grads: pd.DataFrame) -> go.Figure:
    """Gradient norm against steps back, log scale: the at-initialisation curves first and solid (they say why a
    model can or cannot learn what lies far back), after training dotted. With a `relative` column (each curve
    over its value one step back, k = 1: lib.probes.gradients_before_after) the curves compare by how fast they
    decay.

    grads: columns label, stage ("at initialisation" / "after training"), steps_back, grad_norm, and wrt
    ("hidden" or "input": what each model's gradient is taken with respect to; it names the y-axis).
    """
    fig = go.Figure()
    wrts = set(grads["wrt"]) if "wrt" in grads else {"hidden"}
    axis = GRADIENT_AXES["hidden" if "hidden" in wrts else "input"]  # a model without a state reports its input
    y = "relative" if "relative" in grads else "grad_norm"
    cmap = colors(grads["label"])
    at_init = grads["stage"].str.startswith("at")
    for (label, stage), g in pd.concat([grads[at_init], grads[~at_init]]).groupby(["label", "stage"], sort=False):
        first = stage.startswith("at")
        # exact zeros (an FFNN's inputs beyond its window) have no place on a log axis: leave gaps
        fig.add_trace(go.Scatter(x=g["steps_back"], y=g[y].where(g[y] > 0), mode="lines",
                                 name=f"{label}, {stage}", legendgroup=label,
                                 line={"color": cmap[label], "dash": "solid" if first else "dot",
                                       "width": 2.5 if first else 1.5}))
    title = "Gradient through time: how much the loss still feels step t−k"
    shown = grads[y].where(grads[y] > 0)
    lo, hi = shown[at_init].min(), shown[at_init].max()
    if pd.notna(lo) and (shown.min() < lo / 1e3 or shown.max() > hi * 1e3):  # a trained curve far outside
        # the at-initialisation curves lead; a trained model's near-zero gradients, divided by a near-zero value
        # at k = 1, can span 10^12 and flatten them: such a curve is cut at the edge
        fig.update_yaxes(range=[np.log10(lo) - 3, np.log10(hi) + 3])
        title += "<br><sup>a trained curve beyond 1,000× the initial ones is cut at the edge; Autoscale shows it</sup>"
    fig.update_layout(title=title,
                      xaxis_title="steps back from the prediction point (k)",
                      yaxis_title=(f"{axis} relative to k = 1 (log scale)" if y == "relative"
                                   else f"{axis} (log scale)"), yaxis_type="log",
                      legend={"title": "model, stage", "orientation": "h", "y": -0.25})  # the plot keeps the width
    return fig


def gate_heatmaps(gates: dict, steps: list[str], names: tuple[str, ...],
                  title: str = "Gate activations along the probe input") -> go.Figure:
    """One heat-map per named gate (a kind's gate_names): hidden units (rows) against the input's steps
    (columns), values in [0, 1]."""
    names = [n for n in names if n in gates]
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=[f"{n} gate" for n in names],
                        vertical_spacing=0.06)
    x = [f"{i}:{s}" for i, s in enumerate(steps)]  # unique ticks even when words repeat
    for i, n in enumerate(names, start=1):
        fig.add_trace(go.Heatmap(z=gates[n].T, x=x, zmin=0, zmax=1, colorscale="Viridis", showscale=i == 1,
                                 colorbar={"title": "activation"}, name=n), i, 1)
        fig.update_yaxes(title_text="unit", row=i, col=1)
    fig.update_xaxes(title_text="input step (position:token)", row=len(names), col=1, tickangle=-60)
    fig.update_layout(title=title, height=250 * len(names) + 120)
    return fig


def attention_maps(weights: np.ndarray, steps: list[str], cue: int | None = None,
                   title: str = "Attention along the probe input") -> go.Figure:
    """One heat-map per layer and head: how each step (rows, queries) attends over the steps up to it (columns,
    keys), weights in [0, 1] (lib.probes.attention_weights: (layers, heads, T, T)). cue: the decisive input's
    step, marked by a dashed line on every map; the last row is what the prediction point reads."""
    n_layers, n_heads = weights.shape[:2]
    fig = make_subplots(rows=n_layers, cols=n_heads, shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[f"layer {i + 1}, head {h + 1}" for i in range(n_layers)
                                        for h in range(n_heads)], horizontal_spacing=0.04, vertical_spacing=0.08)
    x = [f"{i}:{s}" for i, s in enumerate(steps)]  # unique ticks even when words repeat
    for i in range(n_layers):
        for h in range(n_heads):
            fig.add_trace(go.Heatmap(z=weights[i, h], x=x, y=x, zmin=0, zmax=1, colorscale="Viridis",
                                     showscale=i == h == 0, colorbar={"title": "weight"}, name=f"L{i + 1} H{h + 1}",
                                     hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"),
                          i + 1, h + 1)
            if cue is not None:
                fig.add_vline(x=cue, line_dash="dash", line_color="white", row=i + 1, col=h + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_xaxes(title_text="attended step (key)", row=n_layers)
    fig.update_yaxes(title_text="attending step (query)", col=1)
    note = "" if cue is None else f"; dashed: the decisive input (step {x[cue]})"
    fig.update_layout(title=f"{title}{note}", height=320 * n_layers + 120)
    return fig


def param_bars(groups: dict[str, dict[str, int]]) -> go.Figure:
    """Parameters per model, stacked by layer group. groups: {label: {group: count}}."""
    fig = go.Figure()
    kinds = list(dict.fromkeys(g for d in groups.values() for g in d if g != "total"))
    for g in kinds:
        fig.add_trace(go.Bar(x=list(groups), y=[d.get(g, 0) for d in groups.values()], name=g))
    fig.update_layout(barmode="stack", title="Parameters by layer", xaxis_title="model",
                      yaxis_title="parameters (count)", legend_title="layer")
    return fig


def flops_and_time(report: pd.DataFrame) -> go.Figure:
    """Analytic training FLOPs per sample beside measured seconds per epoch and latency, per model."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("training FLOPs / sample<br>(analytic)",
                                                        "training s / epoch<br>(measured)",
                                                        "latency / sequence<br>(measured)"),
                        horizontal_spacing=0.14)
    fig.update_annotations(font_size=13)  # two short lines each: the titles do not collide on a narrow screen
    cmap = colors(report["label"])
    for i, (col, unit) in enumerate((("train_flops", "FLOPs"), ("epoch_seconds", "seconds"),
                                     ("latency_ms", "milliseconds")), start=1):
        fig.add_trace(go.Bar(x=report["label"], y=report[col], marker_color=[cmap[x] for x in report["label"]],
                             showlegend=False, name=col), 1, i)
        fig.update_yaxes(title_text=unit, row=1, col=i)
        fig.update_xaxes(title_text="model", row=1, col=i)
    fig.update_layout(title="What the model should cost, and what it does cost")
    return fig


def scaling_lines(df: pd.DataFrame) -> go.Figure:
    """Measured seconds per training step, peak memory (where measured) and analytic FLOPs against hidden size or
    sequence length: one line per model, its fitted log-log slopes in the legend (1: grows in proportion, 2: with
    the square).

    df: lib.costs.scaling rows (label "<model> H=<value>" or "<model> T=<value>", what, value, step_seconds,
    train_flops, and peak_memory_mb where measured)."""
    what = df["what"].iloc[0]
    panels = [("step_seconds", "time", "time per training step<br>(measured)", "seconds per step"),
              ("peak_memory_mb", "memory", "peak memory of a step<br>(measured)", "MB"),
              ("train_flops", "FLOPs", "training FLOPs / sample<br>(analytic)", "FLOPs")]
    panels = [p for p in panels if p[0] in df and df[p[0]].notna().any()]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[2] for p in panels], horizontal_spacing=0.14)
    fig.update_annotations(font_size=13)  # as in flops_and_time
    model = df["label"].str.rsplit(" ", n=1).str[0]  # the label without its "H=64" / "T=50" suffix
    cmap = colors(model)
    for name, g in df.groupby(model, sort=False):
        g = g.sort_values("value")
        slopes = [loglog_slope(g["value"], g[col]) for col, *_ in panels]
        legend = ", ".join(f"{slope if abs(slope) >= 0.005 else 0.0:.2f} in {short}"  # no "-0.00" for a flat line
                           for slope, (_, short, *_) in zip(slopes, panels, strict=True))
        for i, ((col, *_), slope) in enumerate(zip(panels, slopes, strict=True), start=1):
            fig.add_trace(go.Scatter(x=g["value"], y=g[col], mode="lines+markers", legendgroup=name,
                                     name=f"{name}: slope {legend}", line={"color": cmap[name]}, showlegend=i == 1,
                                     hovertemplate=f"{name}<br>%{{x}}: %{{y:.3g}} (log-log slope {slope:.2f})"
                                                   "<extra></extra>"), 1, i)
    x_title = "hidden units" if what == "hidden" else "sequence length (steps)"
    for i, (*_, unit) in enumerate(panels, start=1):
        fig.update_xaxes(title_text=x_title, type="log", row=1, col=i)
        fig.update_yaxes(title_text=unit, type="log", row=1, col=i)
    fig.update_layout(title=f"Scaling with {x_title}", legend={"title": "model: fitted log-log slope",
                                                               "orientation": "h", "y": -0.25})
    return fig


def forecast_lines(frames: dict[str, pd.DataFrame]) -> go.Figure:
    """Truth against each model's one-step (solid) and free-running (dotted) forecast."""
    fig = go.Figure()
    first = next(iter(frames.values()))
    fig.add_trace(go.Scatter(x=first["step"], y=first["truth"], mode="lines", name="truth",
                             line={"color": "grey", "width": 3}))
    cmap = colors(frames)
    for label, f in frames.items():
        fig.add_trace(go.Scatter(x=f["step"], y=f["one_step"], mode="lines", name=f"{label} one-step",
                                 line={"color": cmap[label]}, legendgroup=label))
        if f["free_running"].notna().any():
            fig.add_trace(go.Scatter(x=f["step"], y=f["free_running"], mode="lines", name=f"{label} free-running",
                                     line={"color": cmap[label], "dash": "dot"}, legendgroup=label))
    fig.update_layout(title="Forecasts against the truth on the test segment", xaxis_title="test step",
                      yaxis_title="series value (units of the data)", legend_title="series")
    return fig


def word_bars(guesses: dict[str, list[tuple[str, float]]]) -> go.Figure:
    """Each model's top next words with their probabilities, side by side: each word written on its bar, so no
    panel's labels reach into the next one."""
    fig = make_subplots(rows=1, cols=max(len(guesses), 1), subplot_titles=list(guesses), horizontal_spacing=0.05)
    cmap = colors(guesses)
    for i, (label, pairs) in enumerate(guesses.items(), start=1):
        words, probs = zip(*pairs, strict=True) if pairs else ((), ())
        fig.add_trace(go.Bar(x=list(probs)[::-1], y=list(words)[::-1], orientation="h", name=label,
                             text=[f"{w} {p:.0%}" for w, p in zip(words, probs, strict=True)][::-1],
                             textposition=["inside" if p >= 0.4 else "outside" for p in probs][::-1],
                             constraintext="none", cliponaxis=False, marker_color=cmap[label], showlegend=False,
                             hovertemplate="%{y}: %{x:.1%}<extra>" + label + "</extra>"), 1, i)
        fig.update_xaxes(title_text="probability", range=[0, 1], tickvals=[0, 0.5, 1], row=1, col=i)
        fig.update_yaxes(showticklabels=False, row=1, col=i)
    fig.update_layout(title="Top next words per model", height=320, margin={"r": 20},
                      uniformtext={"minsize": 10, "mode": "show"})
    return fig


def frame_strip(frames: np.ndarray, title: str = "The clip, frame by frame") -> go.Figure:
    """A video clip (T, H, W) in [0, 1] as one strip of grey frames."""
    t, h, w = frames.shape
    strip = np.concatenate([np.pad(f, ((0, 0), (0, 1)), constant_values=0.5) for f in frames], axis=1)
    fig = go.Figure(go.Heatmap(z=strip[::-1], colorscale="Greys", reversescale=True, showscale=False, zmin=0,
                               zmax=1, name="pixels"))
    fig.update_layout(title=title, height=220, xaxis={"tickvals": [i * (w + 1) + w / 2 for i in range(t)],
                                                      "ticktext": [str(i) for i in range(t)],
                                                      "title": "frame"},
                      yaxis={"visible": False, "scaleanchor": "x"})
    return fig
