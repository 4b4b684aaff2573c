"""Taking a trained model out of the lab: .keras, a zipped TensorFlow SavedModel, TFLite, and a JSON model card.

Every format takes raw 0-255 RGB (or gray) pixels of the run's input size: the scaling is inside the model. The
model card says how to crop and resize an image first, and which output is which class.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from galaxy_core.answers.inference import load_run_model, run_class_names
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.kinds import describe_run_model
from galaxy_core.training.store import Run

EXPORT_FORMATS = ("keras", "savedmodel", "tflite", "json")
SUFFIXES = {"keras": ".keras", "savedmodel": "-savedmodel.zip", "tflite": ".tflite", "json": ".json"}


def model_card(run: Run, checkpoint: str = "best") -> dict:
    """What a program needs to use the exported model: classes, input, preprocessing, provenance, figures."""
    summary = run.summary()
    config = summary.config
    preprocessing = asdict(summary.dataset.preprocess)
    card = {
        "run": run.id,
        "model": describe_run_model(config),
        "checkpoint": checkpoint,
        "class_names": run_class_names(run),
        "input": {
            "shape": [preprocessing["image_size"], preprocessing["image_size"], preprocessing["channels"]],
            "dtype": "float32",
            "range": "raw pixel values 0-255 (the model rescales inside itself)",
            "layout": "height, width, channels (RGB, or one gray channel)",
        },
        "preprocessing": {
            **preprocessing,
            "steps": (
                "decode to RGB (EXIF orientation applied); crop the centre square whose side is crop_fraction of "
                "the shorter side; resize it to image_size x image_size (bilinear); convert to gray if channels "
                "is 1"
            ),
        },
        "output": "class probabilities (softmax), in the order of class_names",
        "dataset": summary.dataset.to_dict(),
    }
    if summary.options:  # what its kind was asked to do: an ensemble's members and weights, a transfer's base, ...
        card["kind"], card["options"] = summary.kind, summary.options
    for key in ("test_accuracy", "test_balanced_accuracy", "test_balanced_accuracy_tta"):
        if getattr(summary, key) is not None:
            card[key] = getattr(summary, key)
    return card


def _export_savedmodel(model, destination: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / destination.name.removesuffix(".zip")
        model.export(str(folder), format="tf_saved_model", verbose=False)
        shutil.make_archive(str(folder), "zip", root_dir=folder)
        shutil.move(f"{folder}.zip", destination)


def _export_tflite(model, destination: Path) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as work:
        model.export(work, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(work)
        destination.write_bytes(converter.convert())


def export_run(run: Run, export_format: str, output_dir: Path, checkpoint: str = "best") -> Path:
    """Write the run's model in `export_format` into `output_dir`; returns the file written."""
    if export_format not in EXPORT_FORMATS:
        raise InvalidInputError(f"format must be one of {EXPORT_FORMATS}, got {export_format!r}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    destination = output_dir / f"{run.id}{SUFFIXES[export_format]}"
    if export_format == "json":
        destination.write_text(json.dumps(model_card(run, checkpoint), indent=2))
    elif export_format == "keras":
        shutil.copyfile(run.model_path(checkpoint), destination)
    elif export_format == "savedmodel":
        _export_savedmodel(load_run_model(run, checkpoint), destination)
    else:
        _export_tflite(load_run_model(run, checkpoint), destination)
    return destination
