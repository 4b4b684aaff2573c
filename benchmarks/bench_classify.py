"""Time to classify one dropped 423 px JPEG with its Grad-CAM, as the Classify page does, once the model is loaded:
decode and preprocess, predict, Grad-CAM for the predicted class, overlay.

Goal: <= 150 ms median on this CPU.

    .venv/bin/python benchmarks/bench_classify.py [--image FILE.jpg] [--run RUN --runs-dir DIR] [--repeats N]

Without --run, the recommended default model (random weights: the time does not depend on them) at 64 px with
crop 0.4, as gz1-3class is read. Without --image, the first gz1-3class test image, or a rendered 423 px galaxy.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

from galaxy_core.answers.explain import gradcam, overlay
from galaxy_core.answers.inference import load_run_model
from galaxy_core.answers.uploads import ImageInput, UploadLimits, predict_images, read_uploads
from galaxy_core.data import PreprocessOptions
from galaxy_core.models import create_model
from galaxy_core.training import RunStore
from galaxy_core.training.config import DEFAULT_MODEL

GZ1_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class" / "test"


def default_image() -> tuple[str, bytes]:
    found = sorted(GZ1_TEST.glob("*/*.jp*g"))[:1]
    if found:
        return str(found[0]), found[0].read_bytes()
    from galaxy_core.data.synthetic import DIFFICULTIES, render_galaxy  # a stand-in without the real data

    buffer = io.BytesIO()
    pixels = render_galaxy("spiral", np.random.default_rng(0), 423, DIFFICULTIES["normal"])
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return "rendered 423 px galaxy", buffer.getvalue()


LIMITS = UploadLimits(file_bytes=50_000_000, unpacked_bytes=200_000_000, pixels=200_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path)
    parser.add_argument("--run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    name, data = (str(args.image), args.image.read_bytes()) if args.image else default_image()
    if args.run:
        run = RunStore(args.runs_dir).get(args.run)
        model, options = load_run_model(run), run.summary().dataset.preprocess
    else:
        options = PreprocessOptions(image_size=64, crop_fraction=0.4)
        model = create_model(DEFAULT_MODEL, (64, 64, 3), 3)

    def classify_one() -> np.ndarray:
        (image,) = read_uploads([(name, data)], options, LIMITS)
        assert isinstance(image, ImageInput), image
        (prediction,) = predict_images(model, [image])
        heatmap = gradcam(model, image.pixels, prediction.label_index)[0]
        return overlay(image.pixels, heatmap)

    classify_one()  # warm up: traces the prediction and Grad-CAM functions
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        classify_one()
        times.append((time.perf_counter() - started) * 1000)
    size = Image.open(io.BytesIO(data)).size
    print(f"{name} ({size[0]}x{size[1]} px, {len(data) / 1000:.0f} kB) with {model.name}, {os.cpu_count()} CPU cores")
    print(
        f"classify + Grad-CAM + overlay: median {statistics.median(times):.1f} ms, 90th percentile "
        f"{np.percentile(times, 90):.1f} ms over {args.repeats} (goal <= 150 ms median)"
    )


if __name__ == "__main__":
    main()
