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


def seconds_per_call(call, steps: int, cap_seconds: float) -> float:
    """Mean time of `call` over `steps` calls, stopping early after `cap_seconds` (at least one call)."""
    started, calls = time.perf_counter(), 0
    while calls < steps and (calls == 0 or time.perf_counter() - started < cap_seconds):
        call()
        calls += 1
    return (time.perf_counter() - started) / calls


def measure(name: str, batch: int, steps: int, cap_seconds: float) -> dict:
    info = model_info(name)
    size = info.default_input_size
    model = create_model(name)
    images = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = np.arange(batch) % 3
    model.predict_on_batch(images)  # build and warm up
    inference = seconds_per_call(lambda: model.predict_on_batch(images), steps, cap_seconds)
    model.compile(optimizer=keras.optimizers.Adam(info.recipe.learning_rate), loss="sparse_categorical_crossentropy")
    model.train_on_batch(images, labels)  # build the training step
    training = seconds_per_call(lambda: model.train_on_batch(images, labels), steps, cap_seconds)
    return {
        "model": name,
        "input": f"{size} px",
        "parameters": model.count_params(),
        "mmacs": count_macs(model) / 1e6,
        "inference_ms": inference / batch * 1000,
        "train_img_s": batch / training,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list_models())
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--cap-seconds", type=float, default=20.0, help="stop timing a model after this long")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores, batch {args.batch}, {args.steps} timed steps, random weights")
    print("| model | input | parameters | M multiply-adds/img | inference ms/img | training img/s |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        row = measure(name, args.batch, args.steps, args.cap_seconds)
        print(
            f"| {row['model']} | {row['input']} | {row['parameters']:,} | {row['mmacs']:,.0f} | "
            f"{row['inference_ms']:.2f} | {row['train_img_s']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
