"""Does the report's VGG16 collapse to one class? vgg16_report and vgg16_fixed trained the same way on gz1-3class.

The report (../shared/SEED.md) says its VGG16 runs ended at 32.29% test accuracy, predicting one class. Here both
models train through the lab's own procedure on the same images (gz1-3class, 40% centre crop, --image-size px), the
same number of epochs and seed, each with its own recipe (the report's Adam at 1e-3 with every weight trainable;
the fixed one's frozen base, small head, then its fine-tuning phase). The script prints, for each, what it predicts
on the test split (how many test galaxies it puts in each class, and the share of the most predicted class: a
collapse puts nearly all of them in one), its test balanced accuracy and accuracy, and its time.

The ImageNet weights file is used when it is in Keras' cache (galaxy_core.models.applications); otherwise both start
from random weights, and the script says so: then "fixed" trains a head on a random frozen base, which is not the
transfer learning the model is named for.

    .venv/bin/python benchmarks/bench_report_collapse.py [--data PATH] [--image-size 64] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import recommended_config
from galaxy_core.training.records import epoch_records

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
MODELS = ("vgg16_report", "vgg16_fixed")
COLLAPSED = 0.95  # the share of the test galaxies put in one class above which a model has collapsed


def train_and_describe(spec: DatasetSpec, model: str, epochs: int, runs: Path) -> list[str]:
    config = recommended_config(spec, model, epochs=epochs, early_stopping=False)
    run = new_run(RunStore(runs), config, MACHINE_TEACHER)
    started = time.perf_counter()
    state = train_in_this_process(run)
    minutes = (time.perf_counter() - started) / 60
    summary = run.summary()
    if state != "finished":
        return [f"{model}: the run ended {state}: {summary.message}"]
    saved = run.predictions()
    names = summary.class_names
    predicted = np.bincount(saved["probabilities"].argmax(axis=1), minlength=len(names))
    truth = np.bincount(saved["labels"], minlength=len(names))
    share = predicted.max() / predicted.sum()
    verdict = f"collapsed to '{names[predicted.argmax()]}'" if share > COLLAPSED else "no collapse"
    weights = run.progress().get("weights_source", "?")
    epochs_done = len(epoch_records(run.metrics()))
    return [
        f"{model}: {verdict} ({share:.1%} of the test galaxies in its most predicted class)",
        f"  weights: {weights}",
        f"  {epochs_done} epochs, {config.optimizer} {config.learning_rate:g}, batch {config.batch_size}, "
        f"{summary.parameters:,} parameters, {minutes:.1f} min",
        "  test galaxies per class, predicted (true): "
        + ", ".join(f"{name} {p} ({t})" for name, p, t in zip(names, predicted, truth, strict=True)),
        f"  test balanced accuracy {summary.test_balanced_accuracy:.4f}, accuracy {summary.test_accuracy:.4f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of each (vgg16_fixed adds its fine-tuning)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to gz1-3class")
    spec = DatasetSpec.of("folder", path=str(args.data)).with_preprocess(crop_fraction=0.4, image_size=args.image_size)
    print(f"gz1-3class at {args.image_size} px (crop 0.4), {args.epochs} epochs each, seed 0, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as runs:
        for model in MODELS:
            print("\n".join(train_and_describe(spec, model, args.epochs, Path(runs))), flush=True)


if __name__ == "__main__":
    main()
