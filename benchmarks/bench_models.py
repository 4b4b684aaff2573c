"""Per model at its default input size: parameters, multiply-adds, inference ms/image and training img/s on CPU.

.venv/bin/python benchmarks/bench_models.py [--models NAME ...] [--batch 32] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from galaxy_core.models import create_model, list_models, model_info
from galaxy_core.models.summary import count_macs


def measure(name: str, batch: int, steps: int) -> dict:
    info = model_info(name)
    size = info.default_input_size
    model = create_model(name)
    images = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = np.arange(batch) % 3
    predict = keras.Model(model.inputs, model.outputs)
    predict.predict_on_batch(images)  # build and warm up
    started = time.perf_counter()
    for _ in range(steps):
        predict.predict_on_batch(images)
    inference_ms = (time.perf_counter() - started) / (steps * batch) * 1000
    model.compile(optimizer=keras.optimizers.Adam(info.recipe.learning_rate), loss="sparse_categorical_crossentropy")
    model.train_on_batch(images, labels)  # build the training step
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    train_rate = steps * batch / (time.perf_counter() - started)
    return {
        "model": name,
        "input": f"{size} px",
        "parameters": model.count_params(),
        "mmacs": count_macs(model) / 1e6,
        "inference_ms": inference_ms,
        "train_img_s": train_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list_models())
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores, batch {args.batch}, {args.steps} timed steps, random weights")
    print("| model | input | parameters | M multiply-adds/img | inference ms/img | training img/s |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        row = measure(name, args.batch, args.steps)
        print(
            f"| {row['model']} | {row['input']} | {row['parameters']:,} | {row['mmacs']:,.0f} | "
            f"{row['inference_ms']:.2f} | {row['train_img_s']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
