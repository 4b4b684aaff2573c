"""Symmetry built in, measured: the p4m network (galaxy_core.models.p4m) against the Recommended recipe's network on
gz1-3class, each seed trained with the same recipe (the Recommended preset's settings, 48 px), and, where the p4m
network's epochs cost more, once more with as many epochs as fit in the Recommended run's time.

Prints, per seed and model: parameters, seconds per epoch, epochs trained, test balanced accuracy (plain and over
the 8 views) with its 95% bootstrap interval; then each p4m run's paired difference to the Recommended run of its
seed (a paired bootstrap interval, McNemar's exact test on the same 649 test galaxies). The labels are noisy: about
9 points of balanced accuracy are doubtful labels, a ceiling no network here can pass.

    .venv/bin/python benchmarks/bench_symmetry.py [--data PATH] [--seeds 0,1] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from galaxy_core.answers.inference import balanced_accuracy_interval_of, saved_predictions
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec
from galaxy_core.evaluation import balanced_accuracy_interval, mcnemar
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import preset_config
from galaxy_core.training.records import epoch_records

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
P4M = "p4m_cnn"


def trained(store: RunStore, config, label: str) -> dict:
    """Train `config` in this process; its figures."""
    run = new_run(store, config, MACHINE_TEACHER)
    started = time.perf_counter()
    if train_in_this_process(run) != "finished":
        raise SystemExit(f"error: {label} ended {run.summary().message}")
    seconds = time.perf_counter() - started
    summary, epochs = run.summary(), epoch_records(run.metrics())
    low, high = balanced_accuracy_interval_of(run)
    figures = {
        "label": label,
        "run": run,
        "seconds": seconds,
        "epochs": len(epochs),
        "per_epoch": sum(record["epoch_seconds"] for record in epochs) / max(1, len(epochs)),
        "parameters": summary.parameters,
        "test": summary.test_balanced_accuracy,
        "tta": summary.test_balanced_accuracy_tta,
        "interval": (low, high),
    }
    print(
        f"  {label}: {figures['parameters']:,} parameters, {figures['per_epoch']:.1f} s/epoch, {figures['epochs']} "
        f"epochs, {seconds / 60:.1f} min; test balanced accuracy {figures['test']:.3f} (8 views {figures['tta']:.3f}; "
        f"95% interval {low:.3f}-{high:.3f})",
        flush=True,
    )
    return figures


def paired(p4m: dict, plain: dict) -> str:
    """The p4m run minus the plain run on the same test galaxies: a paired interval and McNemar's test."""
    first, second = saved_predictions(p4m["run"]), saved_predictions(plain["run"])
    predicted, baseline = first.probabilities.argmax(axis=1), second.probabilities.argmax(axis=1)
    low, high = balanced_accuracy_interval(first.labels, predicted, baseline)
    test = mcnemar(predicted == first.labels, baseline == second.labels)
    return (
        f"{p4m['label']} - {plain['label']}: {p4m['test'] - plain['test']:+.3f} (paired 95% interval {low:+.3f} to "
        f"{high:+.3f}; McNemar p = {test.p_value:.3g}); time {p4m['seconds'] / plain['seconds']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, help="override the Recommended preset's epochs (a quick look)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to gz1-3class")
    spec = DatasetSpec.of("folder", path=str(args.data)).with_preprocess(crop_fraction=0.4)
    overrides = {"epochs": args.epochs} if args.epochs else {}
    comparisons = []
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "runs")
        print(f"{os.cpu_count()} CPU cores; gz1-3class at crop 0.4, the Recommended preset's recipe", flush=True)
        for seed in [int(seed) for seed in args.seeds.split(",")]:
            print(f"seed {seed}:", flush=True)
            recommended = preset_config(spec, "recommended", seed=seed, **overrides)
            plain = trained(store, recommended, f"Recommended ({recommended.model})")
            same_epochs = trained(store, replace(recommended, model=P4M, model_options={}), f"{P4M}, same recipe")
            comparisons.append(paired(same_epochs, plain))
            if same_epochs["seconds"] > 1.1 * plain["seconds"]:
                epochs = max(1, int(plain["seconds"] / same_epochs["per_epoch"]))
                same_time = trained(
                    store,
                    replace(recommended, model=P4M, model_options={}, epochs=epochs),
                    f"{P4M}, {epochs} epochs (the Recommended run's time)",
                )
                comparisons.append(paired(same_time, plain))
    print("\npaired differences (positive: the p4m network scored higher)")
    for line in comparisons:
        print(f"  {line}")


if __name__ == "__main__":
    main()
