"""`python -m lib ...`: headless comparisons and sweeps that print a table and write CSV/JSON."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

from lib import experiments
from lib.errors import ConfigError
from lib.models import ModelConfig
from lib.store import RunStore
from lib.tasks import TASKS, task_config
from lib.train import TrainConfig


def _value(text: str):
    """'20' -> 20, '0.5' -> 0.5, 'none' -> None, anything else stays a string."""
    if text.lower() == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _pairs(items: list[str], what: str) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} settings look like name=value, got {item!r}.")
        out[key.strip()] = _value(value.strip())
    return out


def parse_model(spec: str) -> ModelConfig:
    """'lstm' or 'ffnn:window=5,hidden=128' -> ModelConfig."""
    kind, _, rest = spec.partition(":")
    params = _pairs([p for p in rest.split(",") if p], "model")
    valid = {f.name for f in fields(ModelConfig)} - {"kind"}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError(f"unknown model setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}.")
    return ModelConfig(kind=kind.lower(), **params)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lib", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", default="text_recall", choices=list(TASKS))
    common.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="task settings")
    common.add_argument("--seeds", nargs="+", type=int, default=[0])
    common.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    common.add_argument("--lr", type=float, default=TrainConfig.lr)
    common.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    common.add_argument("--patience", type=int, default=TrainConfig.patience)
    common.add_argument("--device", default="auto")
    common.add_argument("--out", type=Path, help="write results here (.csv or .json)")
    common.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    common.add_argument("--jobs", type=int, default=1, help="worker processes (-1: one per core)")
    common.add_argument("--no-store", action="store_true", help="do not read or write the run store")
    common.add_argument("--force", action="store_true", help="retrain runs already in the store")

    c = sub.add_parser("compare", parents=[common], help="models x seeds on one task")
    c.add_argument("--models", nargs="+", default=["ffnn:window=5", "rnn", "gru", "lstm"],
                   help="kinds with optional settings, e.g. ffnn:window=25,hidden=128")
    w = sub.add_parser("window-sweep", parents=[common], help="FFNN windows with recurrent references")
    w.add_argument("--windows", nargs="+", type=int, required=True)
    w.add_argument("--references", nargs="*", default=["lstm"])
    d = sub.add_parser("distance-sweep", parents=[common], help="distances x models x seeds")
    d.add_argument("--distances", nargs="+", type=int, required=True)
    d.add_argument("--models", nargs="+", default=["ffnn:window=5", "rnn", "lstm"])
    s = sub.add_parser("sweep", parents=[common], help="FFNN windows x other models x distances x seeds, "
                                                      "in parallel, into the run store")
    s.add_argument("--windows", nargs="*", type=int, default=[], help="FFNN windows")
    s.add_argument("--models", nargs="*", default=["lstm"], help="other models")
    s.add_argument("--distances", nargs="*", type=int, default=[], help="distances (default: the task's)")
    s.set_defaults(jobs=-1)
    r = sub.add_parser("rerun", help="retrain a stored run from its config and seed; compare the numbers")
    r.add_argument("run_id")
    ref = sub.add_parser("reference", help="regenerate the committed reference results in data/reference/")
    ref.add_argument("--jobs", type=int, default=-1)
    return p


def _progress(label: str, seed: int, rec: dict) -> None:
    print(f"  {label:>10} seed {seed} epoch {rec['epoch']:>3}  train {rec['train_loss']:.4f}  "
          f"val {rec['val_loss']:.4f}  metric {rec['val_metric']:.4f}", file=sys.stderr)


def run(args: argparse.Namespace) -> pd.DataFrame:
    task = task_config(args.task, **_pairs(args.set, "task"))
    train_cfg = replace(TrainConfig(), epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                        patience=args.patience, device=args.device)
    cb = {"n_jobs": args.jobs, "force": args.force, "store": None if args.no_store else RunStore()}
    if not args.quiet and args.jobs == 1:
        cb["on_epoch"] = _progress
    if args.command == "sweep":
        models = [ModelConfig(kind="ffnn", window=w) for w in args.windows] + [parse_model(m) for m in args.models]
        if args.distances:
            return experiments.distance_sweep(task, args.distances, models, train_cfg, args.seeds, **cb)
        return experiments.compare(task, models, train_cfg, args.seeds, **cb).summary()
    if args.command == "compare":
        models = [parse_model(m) for m in args.models]
        table = experiments.compare(task, models, train_cfg, args.seeds, **cb).summary()
    elif args.command == "window-sweep":
        table = experiments.window_sweep(task, args.windows, train_cfg, args.seeds,
                                         references=[parse_model(m) for m in args.references], **cb)
    else:
        table = experiments.distance_sweep(task, args.distances, [parse_model(m) for m in args.models],
                                           train_cfg, args.seeds, **cb)
    return table


def write(table: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".json":
        out.write_text(json.dumps(table.to_dict(orient="records"), indent=1, default=str))
    else:
        table.to_csv(out, index=False)


def rerun(run_id: str) -> int:
    """Retrain a stored run; 0 when its history and test metrics come out identical, 1 otherwise."""
    store = RunStore()
    rec = store.get(run_id)
    cfg = rec["config"]
    task = task_config(cfg["task"]["name"], **{k: v for k, v in cfg["task"].items() if k != "name"})
    model_cfg, train_cfg = ModelConfig(**cfg["model"]), TrainConfig(**cfg["train"])
    print(f"rerunning {run_id}: {model_cfg.label} on {cfg['task']['name']}, seed {train_cfg.seed}")
    new = experiments.run_one(task, model_cfg, train_cfg, store, force=True)
    timeless = ("epoch", "train_loss", "val_loss", "val_metric")
    same_history = [{k: h[k] for k in timeless} for h in rec["history"]] == [
        {k: h[k] for k in timeless} for h in new.history]
    rows = [{"metric": k, "stored": v, "rerun": new.test.get(k), "equal": new.test.get(k) == v}
            for k, v in (rec["metrics"] or {}).items()]
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"history: {len(rec['history'])} stored epochs, {len(new.history)} rerun epochs, "
          f"{'identical' if same_history else 'different'}; new run {new.run_id}")
    same = same_history and all(r["equal"] for r in rows)
    print("the numbers match" if same else "the numbers differ (another machine, torch version or thread "
          f"count can change the low bits: stored env {rec['env']})")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "rerun":
            return rerun(args.run_id)
        if args.command == "reference":
            from lib.reference import regenerate

            meta = regenerate(n_jobs=args.jobs)
            print(json.dumps({k: v["seconds"] for k, v in meta["experiments"].items()}, indent=1))
            return 0
        table = run(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cols = [c for c in ("label", "seed", "distance", "status", "metric", "n_params", "epochs",
                        "epoch_seconds", "total_seconds") if c in table]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        write(table, args.out)
        print(f"wrote {args.out}")
    return 0
