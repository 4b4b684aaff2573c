"""Grad-CAM time per image for the recommended default model on this CPU: one image at a time (as the Classify
and Evaluate pages ask for it) and in a batch of 32.

    .venv/bin/python benchmarks/bench_explain.py [--model NAME] [--image-size PX] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from galaxy_core.answers.explain import default_gradcam_layer, gradcam
from galaxy_core.models import create_model
from galaxy_core.training.config import DEFAULT_MODEL


def median_ms(call, repeats: int) -> float:
    call()  # warm up: builds the Grad-CAM sub-model and traces its functions
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    model = create_model(args.model, (args.image_size, args.image_size, 3), 3)
    images = np.random.default_rng(0).uniform(0, 255, (32, args.image_size, args.image_size, 3)).astype(np.float32)
    single = median_ms(lambda: gradcam(model, images[:1]), args.repeats)
    batch = median_ms(lambda: gradcam(model, images), max(3, args.repeats // 5)) / len(images)
    print(f"{args.model} at {args.image_size} px, layer {default_gradcam_layer(model)}, {os.cpu_count()} CPU cores")
    print(f"Grad-CAM, one image per call: {single:.1f} ms median over {args.repeats} calls")
    print(f"Grad-CAM, batch of 32: {batch:.2f} ms per image")


if __name__ == "__main__":
    main()
