"""`python -m lib ...`: headless comparisons and sweeps that print a table and write CSV/JSON."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from lib import backends, experiments, runs, study
from lib.configs import from_dict
from lib.errors import ConfigError, LookbackError
from lib.mlflow_export import DEFAULT_EXPERIMENT
from lib.models import MODEL_KINDS, ModelConfig
from lib.runtime import Status
from lib.store import RunStore
from lib.tasks import TASKS, task_from_dict
from lib.train import TrainConfig


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} settings look like name=value, got {item!r}.")
        out[key.strip()] = value.strip()
    return out


def parse_model(spec: str) -> ModelConfig:
    """'lstm' or 'ffnn:window=5,hidden=128' -> ModelConfig, each value read by its field's type."""
    kind, _, rest = spec.partition(":")
    params = _pairs([p for p in rest.split(",") if p], "model")
    return from_dict(ModelConfig, {**params, "kind": kind.lower()}, text=True)


def _models(specs: list[str]) -> list[ModelConfig]:
    return [parse_model(m) for m in specs]


def _jobs(text: str) -> int:
    """--jobs: -1 (one worker per core) or a positive number of workers."""
    n = int(text) if text.lstrip("-").isdigit() else 0
    if n == 0 or n < -1:
        raise argparse.ArgumentTypeError(f"give -1 (one per core) or a positive number of processes, got {text!r}")
    return n


def _progress(label: str, seed: int, rec: dict) -> None:
    print(f"  {label:>10} seed {seed} epoch {rec['epoch']:>3}  train {rec['train_loss']:.4f}  "
          f"val {rec['val_loss']:.4f}  metric {rec['val_metric']:.4f}", file=sys.stderr)


def _training(experiment):
    """A training subcommand: `experiment(args, task, train_cfg, options)` returns the table to print."""

    def command(args: argparse.Namespace) -> int:
        if args.out is not None and args.out.is_dir():
            raise ConfigError(f"--out {args.out} is a folder; give a file name ending in .csv or .json.")
        task = task_from_dict({**_pairs(args.set, "task"), "name": args.task}, text=True)
        train_cfg = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                patience=args.patience, device=args.device)
        if args.address and args.backend != "ray":
            raise ConfigError("--address is the Ray cluster's; add --backend ray.")
        backend = backends.RayBackend(address=args.address) if args.backend == "ray" else args.backend
        options = {"n_jobs": args.jobs, "backend": backend, "force": args.force,
                   "store": None if args.no_store else RunStore()}
        if not args.quiet:
            options["on_epoch"] = _progress
        table = experiment(args, task, train_cfg, options)
        cols = [c for c in ("label", "steps_seen", "seed", "distance", "status", "metric", "n_params", "epochs",
                            "epoch_seconds", "total_seconds") if c in table]
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if args.out:
            write(table, args.out)
            print(f"wrote {args.out}")
        return 0

    return command


@_training
def _compare(args, task, train_cfg, options) -> pd.DataFrame:
    return experiments.compare(task, _models(args.models), train_cfg, args.seeds, **options).summary()


@_training
def _window_sweep(args, task, train_cfg, options) -> pd.DataFrame:
    swept = {m.kind: m for m in _models(args.swept)}
    if wrong := [k for k in swept if k not in MODEL_KINDS or MODEL_KINDS[k].memory not in experiments.BOUNDED]:
        raise ConfigError(f"--swept takes the models that see a fixed number of steps back (ffnn, linear, tcn), not "
                          f"{', '.join(wrong)}; give the others as --references.")
    levels = args.levels
    if "tcn" in swept and not levels:  # the fields within the windows' range, and the first that reaches the cue
        levels = experiments.field_levels(min(args.windows), max(args.windows), swept["tcn"].kernel,
                                          runs.dataset(task).cue_lag)
    return experiments.window_sweep(task, args.windows, train_cfg, args.seeds, ffnn=swept.get("ffnn"),
                                    references=_models(args.references), linear=swept.get("linear"),
                                    tcn=swept.get("tcn"), levels=levels or (), **options)


@_training
def _distance_sweep(args, task, train_cfg, options) -> pd.DataFrame:
    return experiments.distance_sweep(task, args.distances, _models(args.models), train_cfg, args.seeds,
                                      **options)


@_training
def _sweep(args, task, train_cfg, options) -> pd.DataFrame:
    models = [ModelConfig(kind="ffnn", window=w) for w in args.windows] + _models(args.models)
    if args.distances:
        return experiments.distance_sweep(task, args.distances, models, train_cfg, args.seeds, **options)
    return experiments.compare(task, models, train_cfg, args.seeds, **options).summary()


def write(table: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".json":
        out.write_text(json.dumps(table.to_dict(orient="records"), indent=1, default=str))
    else:
        table.to_csv(out, index=False)


def _rerun(args: argparse.Namespace) -> int:
    """Retrain a stored run with the torch thread count it recorded; 0 when its history and test metrics come
    out identical (for a run that stopped early: its epochs match the rerun's first ones), 1 otherwise."""
    store = RunStore()
    rec = store.get(args.run_id)
    threads = (rec["env"] or {}).get("threads")
    print(f"rerunning {args.run_id}: {rec['label']} on {rec['task']}, seed {rec['seed']}"
          + (f", {threads} torch thread(s) as recorded" if isinstance(threads, int) else ""))
    done = experiments.rerun(store, args.run_id)
    if done.metrics:
        rows = [{"metric": k, "stored": old, "rerun": new, "equal": experiments.same_number(old, new)}
                for k, old, new in done.metrics]
        print(pd.DataFrame(rows).to_string(index=False))
    n = done.stored_epochs
    print(f"history: {n} stored epochs, {len(done.new.history)} rerun epochs, "
          f"{'identical' if done.same_history else 'different'}"
          + (f" (the stored run was {done.status}: its {n} epoch(s) against the rerun's first {n})"
             if done.stopped else "") + f"; new run {done.new.run_id}")
    print(done.verdict())
    return 0 if done.same else 1


def _export_mlflow(args: argparse.Namespace) -> int:
    from lib.mlflow_export import export_runs

    store = RunStore()
    ids = args.run_ids or list(store.runs(status=Status.finished())["id"])
    if not ids:
        raise ConfigError(f"the run store {store.path} has no finished runs to export; train some first.")
    summary = export_runs(store, ids, args.tracking_uri, args.experiment)
    for row in summary["exported"]:
        print(f"exported {row['run_id']} -> MLflow run {row['mlflow_run_id']}")
    for row in summary["skipped"]:
        print(f"skipped {row['run_id']}: {row['reason']}")
    print(f"{len(summary['exported'])} exported, {len(summary['skipped'])} skipped; experiment "
          f"{summary['experiment']!r} (id {summary['experiment_id']}) at {summary['tracking_uri']}")
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}; check the path.") from None


def _writable_folder(folder: Path, option: str) -> None:
    """ConfigError unless `folder` can be created and a file written in it (tried, then undone), so that a
    command fails before its work, not after."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(f"{option} {folder} cannot be written ({err.strerror or err}); give a folder you can "
                          f"create and write to.") from None
    finally:
        for path in made:
            with contextlib.suppress(OSError):  # never made, or no longer empty
                path.rmdir()


def _study(args: argparse.Namespace) -> int:
    """Prepare a data file, run the memory study on it, print the verdict, write study.csv and report.html."""
    from lib import eta
    from lib.report import model_frame, write_study
    from lib.study import QUICK_SEEDS, memory_study, quick_caveat, quick_windows, study_plan
    from lib.tasks.user.prepared import prepare
    from lib.tasks.user.read import load_table
    from lib.tasks.user.spec import choose_spec

    if args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}.")
    out_dir = args.out_dir or Path(f"{args.file.stem}-study")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out-dir {out_dir} is a file; give a folder for study.csv and report.html.")
    data = _read(args.file)
    source = load_table(data, args.file.name)
    spec = choose_spec(source, target=args.target, label=args.label, sequence=args.sequence, time=args.time,
                       split=args.split, inputs=args.inputs, regression=args.regression, layout=args.layout,
                       window=args.window, horizon=args.horizon, length=args.length, missing=args.missing)
    test = None if args.test_file is None else (_read(args.test_file), args.test_file.name)
    task = prepare(data, args.file.name, spec, test, source=source)
    ds = runs.dataset(task)
    _writable_folder(out_dir, "--out-dir")  # before the training, which takes minutes
    print(f"data {task.sha256[:12]}: {ds.description}")

    seeds, windows = args.seeds, args.windows
    if args.quick:  # one seed, a coarse window grid: what it gives up is printed with the verdict
        seeds, windows = list(QUICK_SEEDS), windows or list(quick_windows(ds))
    models, plan_cfg, budget = study_plan(task, windows, args.models, args.hidden, args.updates,
                                          TrainConfig(lr=args.lr, device=args.device), args.window_models)
    workers = backends.worker_plan(args.jobs, len(models) * len(seeds))[0]
    tracker = eta.Tracker(eta.plan_of(models, seeds, budget.updates, workers), budget.steps_per_epoch, workers)

    def progress(run) -> None:
        tracker.on_run(run)
        print(f"  {run.label:>10} seed {run.train_config.seed}: {run.status}, test {ds.metric} "
              f"{run.test.get(ds.metric, float('nan')):.4g} after {len(run.history)} epochs; {tracker.text()}",
              file=sys.stderr)

    before = torch.get_num_threads()
    if args.jobs == 1:  # one run after another here; workers train with one thread each
        torch.set_num_threads(args.threads)  # recorded with every run; `rerun` uses the same count
    try:
        if not args.quiet:  # a few timed steps per model, so that the first estimate of the time left is one
            tracker.prior = eta.probe(ds, models, plan_cfg)
            print(f"  {len(tracker.planned)} runs; {tracker.text()}", file=sys.stderr)
        result = memory_study(task, seeds, windows=windows, kinds=args.models, window_kinds=args.window_models,
                              hidden=args.hidden,
                              min_updates=args.updates, train_cfg=TrainConfig(lr=args.lr, device=args.device),
                              on_run=None if args.quiet else progress, store=None if args.no_store else RunStore(),
                              force=args.force, n_jobs=args.jobs, on_epoch=None if args.quiet else tracker.on_epoch)
    finally:
        torch.set_num_threads(before)
    print(model_frame(result).to_string(index=False))
    print()
    print(result.verdict.text)
    if args.quick:
        print(quick_caveat(windows))
    paths = write_study(result, out_dir, source=args.file.name)
    print(f"wrote {paths['csv']} and {paths['html']}")
    return 0


def _reference(args: argparse.Namespace) -> int:
    from lib.reference import EXPERIMENTS, regenerate

    meta = regenerate(n_jobs=args.jobs, names=tuple(args.only or EXPERIMENTS))
    print(json.dumps({k: v["seconds"] for k, v in meta["experiments"].items()}, indent=1))
    return 0


def _literature(args: argparse.Namespace) -> int:
    from lib.literature import regenerate

    meta = regenerate(n_jobs=args.jobs)
    print(json.dumps({k: v["seconds"] for k, v in meta["experiments"].items()}, indent=1))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lib", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", default="text_recall", choices=list(TASKS))
    common.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="task settings; a list is comma-separated, e.g. periods=24,8")
    common.add_argument("--seeds", nargs="+", type=int, default=[0])
    common.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    common.add_argument("--lr", type=float, default=TrainConfig.lr)
    common.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    common.add_argument("--patience", type=int, default=TrainConfig.patience)
    common.add_argument("--device", default="auto")
    common.add_argument("--out", type=Path, help="write results here (.csv or .json)")
    common.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    common.add_argument("--jobs", type=_jobs, default=None,
                        help="worker processes, one torch thread each (default: one per core; 1: one run after "
                             "another in this process)")
    common.add_argument("--backend", choices=backends.BACKENDS,
                        help="where runs train: local (this machine, --jobs processes; the default) or ray "
                             "(a Ray cluster)")
    common.add_argument("--address", help="the Ray cluster for --backend ray, e.g. 10.0.0.5:6379 (default: "
                                          "RAY_ADDRESS, else a new Ray instance on this machine)")
    common.add_argument("--no-store", action="store_true", help="do not read or write the run store")
    common.add_argument("--force", action="store_true", help="retrain runs already in the store")

    c = sub.add_parser("compare", parents=[common], help="models x seeds on one task")
    c.add_argument("--models", nargs="+", default=["ffnn:window=5", "rnn", "gru", "lstm"],
                   help="kinds with optional settings, e.g. ffnn:window=25,hidden=128")
    c.set_defaults(func=_compare)
    w = sub.add_parser("window-sweep", parents=[common], help="the steps a model sees (FFNN and linear windows, TCN "
                                                             "receptive fields) against references")
    w.add_argument("--windows", nargs="+", type=int, required=True)
    w.add_argument("--swept", nargs="+", default=["ffnn"], help="the models swept, with optional settings: ffnn and "
                   "linear at every window, tcn at every level, e.g. ffnn linear:variant=dlinear tcn:kernel=2")
    w.add_argument("--levels", nargs="+", type=int, help="TCN levels (default: the receptive fields within the "
                   "windows' range, and the first that reaches the decisive input)")
    w.add_argument("--references", nargs="*", default=["lstm"], help="models that see the whole sequence, e.g. lstm "
                   "transformer")
    w.set_defaults(func=_window_sweep)
    d = sub.add_parser("distance-sweep", parents=[common], help="distances x models x seeds")
    d.add_argument("--distances", nargs="+", type=int, required=True)
    d.add_argument("--models", nargs="+", default=["ffnn:window=5", "rnn", "lstm"])
    d.set_defaults(func=_distance_sweep)
    s = sub.add_parser("sweep", parents=[common], help="FFNN windows x other models x distances x seeds "
                                                      "into the run store (--jobs -1: in parallel)")
    s.add_argument("--windows", nargs="*", type=int, default=[], help="FFNN windows")
    s.add_argument("--models", nargs="*", default=["lstm"], help="other models")
    s.add_argument("--distances", nargs="*", type=int, default=[], help="distances (default: the task's)")
    s.set_defaults(func=_sweep)
    r = sub.add_parser("rerun", help="retrain a stored run from its config and seed; compare the numbers")
    r.add_argument("run_id")
    r.set_defaults(func=_rerun)
    x = sub.add_parser("export-mlflow", help="copy stored runs into an MLflow tracking server")
    x.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to export (default: every finished run)")
    x.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                   help="the MLflow server, e.g. http://mlflow.example.org:5000 (default: MLFLOW_TRACKING_URI)")
    x.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment, made when missing")
    x.set_defaults(func=_export_mlflow)
    st = sub.add_parser("study", help="does my data need memory, and which kind? FFNN and linear windows against "
                                      "GRU, LSTM and RNN (and on request TCN, Transformer, minGRU) on a data file; "
                                      "prints the verdict, writes study.csv and report.html")
    st.add_argument("file", type=Path, help=".csv, .tsv, .parquet, .npz (arrays X and y) or .txt (a corpus)")
    st.add_argument("--target", help="forecast this column of a series")
    st.add_argument("--label", help="the label column of labelled sequences (one label per sequence)")
    st.add_argument("--sequence", help="the sequence id column (labelled sequences, one row per step)")
    st.add_argument("--time", help="the time or step-order column (default: the row order)")
    st.add_argument("--split", help="a column of train / val / test per row (default: split in time, or seeded)")
    st.add_argument("--inputs", nargs="+", default=[], metavar="COL", help="input columns (default: numeric ones)")
    st.add_argument("--regression", action="store_true", help="the label is a number to predict")
    st.add_argument("--layout", choices=["series", "wide", "long", "corpus", "arrays"], help="override the guess")
    st.add_argument("--window", type=int, help="steps per input window (a series or corpus)")
    st.add_argument("--horizon", type=int, help="rows ahead to forecast (a series)")
    st.add_argument("--length", type=int, help="steps kept per sequence (labelled sequences, one row per step)")
    st.add_argument("--missing", choices=["error", "drop", "ffill", "interpolate"], help="empty or NaN cells")
    st.add_argument("--test-file", type=Path, help="a second file of the same layout, kept as the test split")
    st.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    st.add_argument("--windows", nargs="+", type=int, help="windows (default: 1, 2, 4, ... up to the length)")
    st.add_argument("--models", nargs="+", default=list(study.KINDS),
                    help=f"memory models, of: {', '.join(study.MEMORY_KINDS)} (default: {' '.join(study.KINDS)})")
    st.add_argument("--window-models", nargs="+", default=list(study.WINDOW_KINDS),
                    help=f"fixed-window models trained at every window (default: {' '.join(study.WINDOW_KINDS)})")
    st.add_argument("--updates", type=int, default=1000, help="optimizer updates each run may take (default 1000)")
    st.add_argument("--hidden", type=int, default=64, help="hidden units of every model")
    st.add_argument("--lr", type=float, default=TrainConfig.lr)
    st.add_argument("--device", default="auto")
    st.add_argument("--out-dir", type=Path, help="folder for study.csv and report.html (default: FILE-study)")
    st.add_argument("--quiet", action="store_true", help="no per-run progress")
    st.add_argument("--quick", action="store_true", help="a quick study: one seed and a coarse window grid (wider "
                    "intervals, no seed noise, coarser windows; says so with the verdict)")
    st.add_argument("--jobs", type=_jobs, default=None,
                    help="worker processes, one torch thread each (default: one per core; 1: one run after another)")
    st.add_argument("--threads", type=int, default=1,
                    help="torch threads with --jobs 1 (default 1: fastest for these small models)")
    st.add_argument("--no-store", action="store_true", help="do not read or write the run store")
    st.add_argument("--force", action="store_true", help="retrain runs already in the store")
    st.set_defaults(func=_study)
    ref = sub.add_parser("reference", help="regenerate the committed reference results in data/reference/")
    ref.add_argument("--jobs", type=_jobs, default=-1, help="worker processes (default -1: one per core)")
    ref.add_argument("--only", nargs="+", metavar="NAME", help="regenerate only these experiments (the others keep "
                     "their results and meta): compare_text, compare_sine, ...")
    ref.set_defaults(func=_reference)
    lit = sub.add_parser("literature", help="regenerate the Literature page's reference runs in "
                                            "data/reference/literature/")
    lit.add_argument("--jobs", type=_jobs, default=-1, help="worker processes (default -1: one per core)")
    lit.set_defaults(func=_literature)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a bad value exits with status 2 and one `error:` line, like argparse's errors."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LookbackError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
