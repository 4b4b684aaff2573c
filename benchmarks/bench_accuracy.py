"""Train the recommended preset on gz1-3class train/val through the worker and print the test figures.

Goal: >= 90% balanced accuracy on the test split within 15 minutes on this 2-core CPU.

    .venv/bin/python benchmarks/bench_accuracy.py [--data PATH] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import preset_config
from galaxy_core.training.records import epoch_records

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--epochs", type=int, help="override the recommended number of epochs")
    parser.add_argument("--image-size", type=int, help="override the preset's input size")
    parser.add_argument("--runs-dir", type=Path, help="keep the run in this runs folder (default: a temporary one)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to gz1-3class")
    spec = DatasetSpec.of("folder", path=str(args.data)).with_preprocess(crop_fraction=0.4)
    overrides = {"epochs": args.epochs} if args.epochs else {}
    config = preset_config(spec, image_size=args.image_size, **overrides)
    with tempfile.TemporaryDirectory() as temporary_dir:
        run = new_run(RunStore(args.runs_dir or temporary_dir), config, MACHINE_TEACHER)
        started = time.perf_counter()
        state = train_in_this_process(run)
        minutes = (time.perf_counter() - started) / 60
        evaluation = run.evaluation()
        epochs = len(epoch_records(run.metrics()))
        if state != "finished" or evaluation is None:
            raise SystemExit(f"error: the run ended {state}: {run.status().get('error')}")
    print(
        f"{config.model} {config.model_options} at {config.input_shape[0]} px on gz1-3class (crop 0.4): "
        f"{epochs} epochs (at most "
        f"{config.epochs}), batch {config.batch_size}, {config.optimizer} {config.learning_rate:g} "
        f"{config.schedule}, class weights {config.class_weighting}, augmentation on"
    )
    print(f"wall time (dataset load, training, evaluation): {minutes:.1f} min on {os.cpu_count()} CPU cores")
    print(f"test accuracy: {evaluation['accuracy']:.4f}")
    print(f"test balanced accuracy: {evaluation['balanced_accuracy']:.4f} (goal >= 0.90)")
    tta = evaluation["tta"]
    print(
        f"averaged over the 8 flips and quarter turns: accuracy {tta['accuracy']:.4f}, balanced accuracy "
        f"{tta['balanced_accuracy']:.4f}"
    )
    for name, figures in evaluation["per_class"].items():
        print(
            f"  {name}: recall {figures['recall']:.4f}, precision {figures['precision']:.4f}, "
            f"support {figures['support']}"
        )


if __name__ == "__main__":
    main()
