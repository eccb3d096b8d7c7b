"""A memory study as one self-contained HTML file (plotly.js inline, so it opens offline), plus its CSV.

`study_html(result)` returns the page: verdict, data, method, per-model numbers and costs, charts (Plotly,
interactive), every run and the environment. `write_study(result, out_dir)` writes study.csv (one row per
model) and report.html.
"""
from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lib import charts
from lib.stats import fmt_metric
from lib.study import StudyResult

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.verdict { background: #f4f7fb; border-left: 4px solid #1f77b4; padding: 0.8em 1em; }
.verdict p { margin: 0.4em 0; } .headline { font-weight: bold; font-size: 1.1em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: 0.9em; } dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; } dd { margin: 0; }
"""

HEADLINES = {"needed": "Memory helps on this data.", "inconclusive": "Whether memory helps is inconclusive.",
             "not needed": "Memory beyond the last {window} step(s) does not pay on this data.",
             "no signal": "No learnable signal at this size."}


def model_frame(result: StudyResult) -> pd.DataFrame:
    """The per-model table as shown: metric as mean ± 95% CI, costs rounded, issue or "converged"."""
    metric, t = result.dataset.metric, result.table
    return pd.DataFrame({
        "model": t["label"],
        f"test {metric} (mean ± 95% CI)": [f"{fmt_metric(metric, m)} ± {fmt_metric(metric, h)}"
                                           for m, h in zip(t["metric_mean"], t["metric_ci95"], strict=True)],
        "seeds": t["seeds"],
        "parameters": [f"{n:,}" for n in t["n_params"]],
        "forward FLOPs / sequence": [f"{n:,}" for n in t["forward_flops"]],
        "s / epoch": t["epoch_seconds"].round(4),
        "CPU ms / update (median)": [f"{m:.3g} (spread {sp:.2g})" if pd.notna(m) else "—" for m, sp in
                                     zip(t["update_cpu_ms"], t["update_cpu_spread_ms"], strict=True)],
        "load average while training": t["load_1min"].round(2),
        "ms / prediction": t["latency_ms"].round(4),
        "updates run (median)": t["updates"],
        "converged": [i if isinstance(i, str) else "yes" for i in t["issue"]],
        **_against_trivial(result),
    })


def _against_trivial(result: StudyResult) -> dict[str, list[str]]:
    """The column that says whether each model beats the best trivial predictor by the margin (lib.stats.gap)."""
    s = result.standings
    gaps = {} if s is None else s.against_trivial()
    if not gaps:
        return {}
    words = {"beats": "beats it by more than the margin", "trails": "worse by more than the margin",
             "matches": "no better (within the margin)", "inconclusive": "not shown to beat it"}
    return {f"against {s.trivial_said()}": [words[gaps[lab].outcome] if lab in gaps
                                            else "" for lab in result.table["label"]]}


def cost_figure(result: StudyResult) -> go.Figure:
    """Test metric (mean with 95% CI) against inference latency per model; a good model sits at the top left
    (bottom left for MSE)."""
    t, metric = result.table, result.dataset.metric
    cmap = charts.colors(t["label"])
    fig = go.Figure()
    top = 1.0 if metric == "accuracy" else np.inf  # a t interval over 3 seeds can pass what the metric can reach
    for _, row in t.iterrows():
        mean, half = row["metric_mean"], 0.0 if pd.isna(row["metric_ci95"]) else row["metric_ci95"]
        fig.add_trace(go.Scatter(
            x=[row["latency_ms"]], y=[mean], mode="markers", name=row["label"],
            text=[row["label"]], marker={"size": 11, "color": cmap[row["label"]]},
            error_y={"type": "data", "array": [min(half, top - mean)], "arrayminus": [min(half, max(mean, 0.0))]},
            customdata=[[row["n_params"]]],
            hovertemplate="%{text}<br>%{x:.3g} ms per prediction<br>%{y:.4g}<br>%{customdata[0]:,} parameters"))
    fig.update_layout(title=f"Test {metric} against the cost of one prediction", legend_title="model",
                      xaxis_title="inference latency, one sequence (ms, log scale)", xaxis_type="log",
                      yaxis_title=f"test {metric} (mean ± 95% CI over seeds)")
    return fig


def figures(result: StudyResult) -> list[tuple[str, go.Figure]]:
    """The report's charts, (title, figure): metric per model beside the trivial predictors, the window tradeoff,
    quality against cost and the training curves."""
    ds, summary = result.dataset, result.summary()
    trivial = result.trivial()  # lines on the metric's own axis only, named in words
    bars = charts.metric_bars(summary, ds.metric, None, trivial)
    bars.update_annotations(bgcolor="rgba(255, 255, 255, 0.85)")  # a line's name stays legible over the bars
    figs = [("Test metric per model, every seed a dot, the trivial predictors as dashed lines", bars)]
    if summary["window"].notna().any():
        figs.append(("The window tradeoff, the memory models as reference lines",
                     charts.window_tradeoff(summary, ds.metric, chance=ds.chance)))
    figs.append(("Quality against cost", cost_figure(result)))
    history = result.history()
    if not history.empty:
        figs.append(("Training curves", charts.loss_curves(history)))
    return figs


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="", escape=True)


def _dl(items: dict) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
                            for k, v in items.items()) + "</dl>"


def study_html(result: StudyResult, source: str | None = None) -> str:
    """The study as one HTML page; plotly.js is embedded once, inline. source: what the data came from."""
    ds, v, b, cfg = result.dataset, result.verdict, result.budget, result.train_config
    headline = HEADLINES[v.memory].format(window=v.window)
    seeds = sorted({r.train_config.seed for r in result.runs})
    task = getattr(result.task, "name", type(result.task).__name__)
    data = {"source": source or task, "task": task, "what": ds.description, "kind": ds.kind,
            "metric": f"test {ds.metric} ({'higher' if ds.higher_is_better else 'lower'} is better)",
            "sequences (train / val / test)": f"{len(ds.train)} / {len(ds.val)} / {len(ds.test)}",
            "steps per sequence": ds.seq_len, "features per step": ds.n_features}
    for name, value in result.trivial().items():
        data[f"trivial predictor: {name}"] = f"test {ds.metric} {fmt_metric(ds.metric, value)}"
    facts = result.standings.fact if result.standings is not None else None
    if facts is not None and facts.forecast is not None:
        data["forecast"] = f"{facts.forecast[1]} row(s) ahead; the memory models see {facts.seq_len} rows"
        data["detected season"] = f"{facts.season} rows" if facts.season else "none"
    if hasattr(result.task, "sha256"):
        data["prepared data SHA-256"] = result.task.sha256
    method = {
        "models": ", ".join(result.table["label"]),
        "seeds": ", ".join(map(str, seeds)),
        "training budget": f"{b.updates:,} optimizer updates per run, the same for every model: {b.epochs} epochs "
                           f"of {b.steps_per_epoch} batches of {b.batch_size}",
        "early stopping": (f"after {b.patience} epochs without a better validation {ds.metric}" if b.patience else
                           f"none: {len(ds.val)} validation sequences cannot tell epochs apart, so every run takes its "
                           f"whole budget") + "; the best validation epoch's weights are tested",
        "optimizer": f"{cfg.optimizer}, learning rate {cfg.lr:g}, gradient clip {cfg.clip:g}",
        "verdict rules": f"differences within ±{v.margin or 'the margin'} count as a match. A model beats or "
                         f"matches another only when the 90% interval of the difference (two one-sided tests at 5%) "
                         f"lies beyond or inside the margin; otherwise the comparison is inconclusive. The interval "
                         f"adds seed noise (the variance of each model's per-seed test metric over its seeds) and "
                         f"test-set noise (the variance of the paired per-row difference over the test rows, every "
                         f"model being scored on the same rows), with Welch–Satterthwaite degrees of freedom. Against "
                         f"the trivial predictor each model is tested at 5% divided by the number of models.",
        "not converged": "the run did not complete; or a memory model's training loss never fell below a "
                         "constant prediction's; or its best validation epoch came in the last 20% of a budget it "
                         "used up. Such models are reported as inconclusive, not as worse, and never credited.",
        "learned nothing": "a model whose mean test metric is within the margin of the best trivial predictor's, or "
                           "worse. When no model beats the trivial predictor by more than the margin (each model "
                           "tested at 5% divided by the number of models), the verdict is \"no learnable signal at "
                           "this size\", never a budget problem.",
        "time": f"{result.seconds.get('train', np.nan):.1f} s training, {result.seconds.get('costs', np.nan):.2f} s "
                f"timing predictions",
    }
    env = {k: result.env.get(k) for k in ("lookback", "code", "torch", "python", "device", "device_name", "threads",
                                          "mkldnn_enabled", "load_1min")}
    runs = result.summary()
    run_cols = [c for c in ("label", "seed", "status", "metric", "n_params", "epochs", "best_epoch", "epoch_seconds",
                            "total_seconds", "issue", "message") if c in runs]
    runs = runs[run_cols].assign(run_id=[r.run_id or "" for r in result.runs])
    parts = [f"<h1>Does this data need memory?</h1><p class='note'>{html.escape(data['source'])} · generated "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by Lookback {html.escape(str(env['lookback']))}</p>",
             "<div class='verdict'>", f"<p class='headline'>{html.escape(headline)}</p>",
             *(f"<p>{html.escape(s)}</p>" for s in v.sentences), "</div>",
             "<h2>Models: quality and cost</h2>", _table(model_frame(result)),
             "<p class='note'>Latency: median of 20 forward passes over one test sequence, after 3 warm-up passes, "
             "on the first seed's model. Seconds per epoch: median over the runs' epochs.</p>"]
    for i, (title, fig) in enumerate(figures(result)):
        fig.update_layout(height=460)
        parts += [f"<h2>{html.escape(title)}</h2>",
                  fig.to_html(full_html=False, include_plotlyjs=i == 0, div_id=f"chart-{i}",
                              default_width="100%", default_height="460px")]
    parts += ["<h2>Data</h2>", _dl(data), "<h2>Method</h2>", _dl(method),
              "<h2>Every run</h2>", _table(runs), "<h2>Environment</h2>", _dl(env)]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>Does this data need memory?</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_study(result: StudyResult, out_dir: str | Path, source: str | None = None) -> dict[str, Path]:
    """study.csv (result.table) and report.html (study_html) in out_dir, created if needed; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "study.csv", "html": out / "report.html"}
    result.table.to_csv(paths["csv"], index=False)
    paths["html"].write_text(study_html(result, source), encoding="utf-8")
    return paths


__all__ = ["cost_figure", "figures", "model_frame", "study_html", "write_study"]
