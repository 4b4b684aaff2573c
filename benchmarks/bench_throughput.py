"""Training throughput (images per second) of one model under each speed lever, all in one process and one run so
that the machine's speed (it varies 3x from hour to hour) cancels out of the ratios: XLA, input size, width, batch
size, augmentation, TensorFlow's thread pools. Convergence (epochs to an accuracy) is bench_time_to_accuracy.py's.

    .venv/bin/python benchmarks/bench_throughput.py [--model inception_small] [--seconds 12]
    .venv/bin/python benchmarks/bench_throughput.py --levers "48 px" --threads 1   (TensorFlow's op thread pools
    are fixed when it starts: one process per setting)

Each lever is timed on random images of the right shape through the training pipeline (make_tf_dataset, as a run
feeds its fit), after one untimed epoch that traces the graph; pixels do not change a step's cost.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from galaxy_core.data.augment import AugmentOptions
from galaxy_core.data.pipeline import make_tf_dataset
from galaxy_core.models import create_model

BASE = {
    "image_size": 64,
    "batch_size": 64,
    "augment": True,
    "jit_compile": False,
    "model_options": {},
    "pipeline_threads": None,
}
LEVERS = {
    "today's recipe (64 px, batch 64, augmentation, no XLA)": {},
    "XLA (jit_compile)": {"jit_compile": True},
    "no augmentation": {"augment": False},
    "56 px": {"image_size": 56},
    "48 px": {"image_size": 48},
    "batch 32": {"batch_size": 32},
    "batch 128": {"batch_size": 128},
    "width 48": {"model_options": {"width": 48}},
    "width 32": {"model_options": {"width": 32}},
    "48 px + XLA": {"image_size": 48, "jit_compile": True},
    "tf.data: 1 thread for the input pipeline": {"pipeline_threads": 1},
    "40 px": {"image_size": 40},
    "48 px + width 32": {"image_size": 48, "model_options": {"width": 32}},
    "40 px + width 32": {"image_size": 40, "model_options": {"width": 32}},
    "32 px + width 32": {"image_size": 32, "model_options": {"width": 32}},
}


def images_per_second(
    model_name: str, seconds: float, *, image_size, batch_size, augment, jit_compile, model_options, pipeline_threads
):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    count = 1024
    images = rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, count)
    batches = make_tf_dataset(
        images, labels, batch_size=batch_size, augment=AugmentOptions() if augment else None, shuffle=True
    ).repeat()
    if pipeline_threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = pipeline_threads
        batches = batches.with_options(options)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = create_model(model_name, (image_size, image_size, 3), 3, **model_options)
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit_compile
    )
    steps = count // batch_size
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)  # traces (and compiles) the step
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
        done += steps * batch_size
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="inception_small")
    parser.add_argument("--seconds", type=float, default=12.0, help="timed seconds per lever (after a warm-up)")
    parser.add_argument("--levers", nargs="*", help="only these levers (names as printed)")
    parser.add_argument(
        "--threads", type=int, help="TensorFlow's intra-op and inter-op thread pools (default: TensorFlow's choice)"
    )
    args = parser.parse_args()
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    threads = f"{args.threads} op threads" if args.threads else "TensorFlow's own thread pools"
    print(f"{args.model}, training step through the input pipeline, {os.cpu_count()} CPU cores, {threads}")
    reference = None
    for name, change in LEVERS.items():
        if args.levers and name not in args.levers:
            continue
        rate = images_per_second(args.model, args.seconds, **{**BASE, **change})
        reference = reference or rate
        print(f"{name:55s} {rate:7.0f} img/s  {rate / reference:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
