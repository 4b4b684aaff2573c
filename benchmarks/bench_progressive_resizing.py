"""Progressive resizing on gz1-3class: the recommended recipe's model trained first on smaller images, then on the
recommended size, against the recommended recipe itself, in one process (the machine's speed cancels out).

The recommended model ends in global average pooling, so its weights fit any input size: the small-image model's
weights are copied into a model of the full size for the remaining epochs. One cosine schedule runs over the
whole run (the second phase starts its own cosine at the rate the first one had reached); Adam's moments start
afresh at the switch. Balanced accuracy on val and test after every epoch; validation decides, test is printed to
check.

    .venv/bin/python benchmarks/bench_progressive_resizing.py [--small 32] [--small-epochs 6] [--data PATH]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from galaxy_core.answers.prediction import predict_probabilities
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
from galaxy_core.models import create_model
from galaxy_core.settings import load_settings
from galaxy_core.training.config import PRESETS, preset_config
from galaxy_core.training.recipe import training_inputs

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"


def scores(model, dataset) -> tuple[float, float]:
    """(val, test) balanced accuracy of `model` on `dataset`."""
    figures = []
    for name in ("val", "test"):
        split = dataset.splits[name]
        predicted = predict_probabilities(model, split.images).argmax(axis=1)
        figures.append(balanced_accuracy(confusion_matrix(split.labels, predicted, dataset.num_classes)))
    return figures[0], figures[1]


def train(phases, config, started: float) -> list[dict]:
    """Train through `phases` [(dataset, epochs)], the weights carried from one to the next; a record per epoch
    (minutes exclude the per-epoch scoring)."""
    total = sum(epochs for _, epochs in phases)
    rate, done, model, scoring, records = config.learning_rate, 0, None, 0.0, []
    for dataset, epochs in phases:
        train_split = dataset.splits["train"]
        keras.utils.set_random_seed(config.seed)
        previous = model
        model = create_model(config.model, train_split.images.shape[1:], dataset.num_classes, **config.model_options)
        if previous is not None:
            model.set_weights(previous.get_weights())
        steps = math.ceil(len(train_split) / config.batch_size)
        # The cosine over the whole run, from where it has reached.
        start_rate = 0.5 * rate * (1 + math.cos(math.pi * done / total))
        schedule = keras.optimizers.schedules.CosineDecay(start_rate, decay_steps=steps * epochs)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
        batches, weights = training_inputs(config, train_split, dataset.num_classes)
        for _ in range(epochs):
            model.fit(batches, epochs=1, class_weight=weights, shuffle=False, verbose=0)
            done += 1
            begun = time.perf_counter()
            val, test = scores(model, dataset)
            scoring += time.perf_counter() - begun
            minutes = (time.perf_counter() - started - scoring) / 60
            size = train_split.images.shape[1]
            records.append({"epoch": done, "size": size, "minutes": minutes, "val": val, "test": test})
            print(f"  {done:5d} {size:5d} px {minutes:8.2f} {val:12.4f} {test:13.4f}", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=32, help="the first phase's input size (default 32)")
    parser.add_argument("--small-epochs", type=int, default=6, help="epochs at the small size (default 6)")
    parser.add_argument("--data", type=Path, default=GZ1)
    args = parser.parse_args()
    cache = load_settings().cache_dir
    spec = DatasetSpec.of("folder", path=str(args.data.resolve())).with_preprocess(crop_fraction=0.4)
    config = preset_config(spec)
    full = create_dataset(config.dataset, cache_dir=cache)
    small = create_dataset(config.dataset.with_preprocess(image_size=args.small), cache_dir=cache)
    epochs, size = config.epochs, PRESETS["recommended"].image_size
    runs = {
        f"recommended: {epochs} epochs at {size} px": [(full, epochs)],
        f"progressive: {args.small_epochs} at {args.small} px, then {epochs - args.small_epochs} at {size} px": [
            (small, args.small_epochs),
            (full, epochs - args.small_epochs),
        ],
    }
    print(f"gz1-3class, crop 0.4, {os.cpu_count()} CPU cores; {config.model}, batch {config.batch_size}, adam cosine")
    for name, phases in runs.items():
        print(f"\n## {name}\n  epoch  input  minutes  val bal acc  test bal acc")
        records = train(phases, config, time.perf_counter())
        best = max(records, key=lambda record: record["val"])
        print(
            f"  best val {best['val']:.4f} at epoch {best['epoch']} (test there {best['test']:.4f}); "
            f"whole run {records[-1]['minutes']:.2f} min"
        )


if __name__ == "__main__":
    main()
