"""Time to accuracy on gz1-3class: today's recipe (kept here as the reference), the recommended default and the
quick preset, trained one after the other in this process through the lab's own training procedure.

For each recipe it prints a line per epoch (minutes since the run started, validation and test balanced
accuracy of the weights at that epoch), the wall time to 0.80 / 0.83 / 0.85 of each, the final test figures (the
best checkpoint, as the run reports them) with bootstrap intervals of the test figure and of its difference from
the reference's (how far the 649-image test split lets the figures move by chance), the ETA error at epoch 2, and
the ratios of the wall times to the reference's, measured in this one run (this machine's speed varies 3x from
hour to hour). The per-epoch test figure is this benchmark's own observer; its time is left out of the wall
times. Each recipe's dataset is decoded once before its run starts, so the runs read a warm cache (the cold
decode is printed apart).

    .venv/bin/python benchmarks/bench_time_to_accuracy.py [--recipes reference default quick] [--data PATH]
    .venv/bin/python benchmarks/bench_time_to_accuracy.py --recipes reference --try 'name={"image_size": 48}'

The new default is chosen on validation figures only; the test columns are there to check the goals.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from galaxy_core.answers.prediction import predict_probabilities
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.evaluation import balanced_accuracy, balanced_accuracy_interval, confusion_matrix
from galaxy_core.settings import load_settings
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import PRESETS, TrainConfig, preset_config
from galaxy_core.training.records import epoch_records

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
THRESHOLDS = (0.80, 0.83, 0.85)
# Today's recipe before this benchmark (docs/benchmarks.md, "Accuracy of the recommended default"), kept as the
# yardstick the goals are ratios of.
REFERENCE = {
    "model": "inception_small",
    "image_size": 64,
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "schedule": "cosine",
    "batch_size": 64,
    "epochs": 35,
    "early_stopping": True,
    "monitor": "val_balanced_accuracy",
    "patience": 10,
    "class_weighting": True,
}


class TestWatch(keras.callbacks.Callback):
    """After each epoch: the test split's balanced accuracy and the run's clock, its own time left out."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, started: float):
        super().__init__()
        self.images, self.labels, self.num_classes, self.started = images, labels, num_classes, started
        self.own_seconds = 0.0
        self.records: list[dict] = []

    def clock(self) -> float:
        return time.perf_counter() - self.started - self.own_seconds

    def on_epoch_end(self, epoch, logs=None):
        begun = time.perf_counter()
        minutes = self.clock() / 60
        predicted = predict_probabilities(self.model, self.images).argmax(axis=1)
        score = balanced_accuracy(confusion_matrix(self.labels, predicted, self.num_classes))
        self.records.append({"epoch": epoch + 1, "minutes": minutes, "test": score, "own": self.own_seconds})
        self.own_seconds += time.perf_counter() - begun


def recipe_config(spec: DatasetSpec, recipe: dict) -> TrainConfig:
    recipe = dict(recipe)
    spec = spec.with_preprocess(image_size=recipe.pop("image_size"))
    return TrainConfig(dataset=spec, **recipe)


def first_reaching(records: list[dict], key: str, threshold: float) -> float | None:
    return next((r["minutes"] for r in records if r.get(key) is not None and r[key] >= threshold), None)


def run_recipe(name: str, config: TrainConfig, runs_dir: Path) -> dict:
    settings = load_settings()
    decode_started = time.perf_counter()
    dataset = create_dataset(config.dataset, cache_dir=settings.cache_dir)  # warms the cache for the run
    cold_seconds = time.perf_counter() - decode_started
    test = dataset.splits["test"]
    run = new_run(RunStore(runs_dir), config, MACHINE_TEACHER)
    started = time.perf_counter()
    watch = TestWatch(test.images, np.asarray(test.labels), dataset.num_classes, started)
    state = train_in_this_process(run, observers=[watch])
    wall_minutes = watch.clock() / 60
    if state != "finished":
        raise SystemExit(f"error: {name} ended {state}: {run.status().get('error')}")
    epochs = epoch_records(run.metrics())
    records = [
        {**r, "val": e.get("val_balanced_accuracy"), "eta": e.get("eta_seconds")}
        for r, e in zip(watch.records, epochs, strict=False)
    ]
    evaluation = run.evaluation()
    predictions = run.predictions()
    eta_error = None
    if len(records) > 2:
        actual = (wall_minutes - records[1]["minutes"]) * 60
        eta_error = (records[1]["eta"] - actual) / actual
    return {
        "name": name,
        "config": config,
        "records": records,
        "wall_minutes": wall_minutes,
        "cold_seconds": cold_seconds,
        "test": evaluation["balanced_accuracy"],
        "test_tta": evaluation["tta"]["balanced_accuracy"],
        "test_labels": predictions["labels"],
        "test_predicted": predictions["probabilities"].argmax(axis=1),
        "eta_error": eta_error,
        "eta_at_2": records[1]["eta"] if len(records) > 1 else None,
    }


def describe(config: TrainConfig) -> str:
    options = f" {config.model_options}" if config.model_options else ""
    return (
        f"{config.model}{options} at {config.input_shape[0]} px, {config.epochs} epochs at most, batch "
        f"{config.batch_size}, {config.optimizer} {config.learning_rate:g} {config.schedule}, patience "
        f"{config.patience if config.early_stopping else 'off'}"
        + (f", weights averaged (momentum {config.weight_averaging:g})" if config.weight_averaging else "")
        + (f", seed {config.seed}" if config.seed else "")
    )


def print_result(result: dict, reference: dict | None) -> None:
    print(f"\n## {result['name']}: {describe(result['config'])}")
    print(f"cold dataset decode before the run: {result['cold_seconds']:.1f} s")
    print("epoch  minutes  val bal acc  test bal acc")
    for r in result["records"]:
        print(f"{r['epoch']:5d}  {r['minutes']:7.2f}  {r['val']:11.4f}  {r['test']:12.4f}")
    for threshold in THRESHOLDS:
        val, test = (first_reaching(result["records"], key, threshold) for key in ("val", "test"))
        line = f"time to {threshold:.2f}: val {_minutes(val)}, test {_minutes(test)}"
        if reference and test is not None:
            line += f"; test time / reference wall time {test / reference['wall_minutes']:.0%}"
            reference_test = first_reaching(reference["records"], "test", threshold)
            if reference_test:
                line += f", / reference's time to {threshold:.2f} {test / reference_test:.0%}"
        print(line)
    print(
        f"final (best checkpoint): test balanced accuracy {result['test']:.4f}, over 8 views {result['test_tta']:.4f}; "
        f"{len(result['records'])} epochs, wall time {result['wall_minutes']:.2f} min"
        + (f" ({result['wall_minutes'] / reference['wall_minutes']:.0%} of the reference's)" if reference else "")
    )
    low, high = balanced_accuracy_interval(result["test_labels"], result["test_predicted"])
    line = f"95% bootstrap interval of the test figure: {low:.3f} to {high:.3f}"
    if reference:
        low, high = balanced_accuracy_interval(
            result["test_labels"], result["test_predicted"], reference["test_predicted"]
        )
        line += f"; of its difference from the reference's (paired): {low:+.3f} to {high:+.3f}"
    print(line)
    if result["eta_error"] is not None:
        print(f"ETA after epoch 2: {result['eta_at_2']:.0f} s, error {result['eta_error']:+.0%} of the time it took")


def _minutes(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument(
        "--recipes", nargs="*", default=["reference", "recommended", "quick"], help=f"reference and/or {list(PRESETS)}"
    )
    parser.add_argument(
        "--try",
        dest="candidates",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a candidate recipe: the reference with these changes (image_size, model, model_options, epochs, ...)",
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to gz1-3class")
    spec = DatasetSpec.of("folder", path=str(args.data)).with_preprocess(crop_fraction=0.4)
    configs = {}
    for name in args.recipes:
        configs[name] = recipe_config(spec, REFERENCE) if name == "reference" else preset_config(spec, name)
    for candidate in args.candidates:
        name, changes = candidate.split("=", 1)
        configs[name] = recipe_config(spec, {**REFERENCE, **json.loads(changes)})
    print(f"gz1-3class ({args.data}), crop 0.4, {os.cpu_count()} CPU cores; recipes in the order run:")
    reference = None
    with tempfile.TemporaryDirectory() as runs_dir:
        for name, config in configs.items():
            result = run_recipe(name, config, Path(runs_dir))
            reference = result if name == "reference" else reference
            print_result(result, reference if name != "reference" else None)


if __name__ == "__main__":
    main()
