"""Prediction with a Keras model, knowing nothing of runs: load a model file safely, predict (with or without
test-time augmentation), evaluate on a labelled dataset.

Test-time augmentation (TTA) averages the predictions over the 8 flips and quarter-turn rotations of each image
(the dihedral group of the square): a galaxy has no preferred orientation, so each view is an equally valid
picture of it, and the spread over the views says how sure the model is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_core.errors import GalaxyLabError, InvalidInputError
from galaxy_core.evaluation import summarize

EVALUATION_SPLITS = ("test", "val", "train", "all")
PREDICT_BATCH = 256


class ModelLoadError(GalaxyLabError, RuntimeError):
    """A model file is missing or cannot be loaded; the message says which file and why."""


def load_model_file(path: Path):
    """A .keras model, in Keras' safe mode (no arbitrary code from the file is run)."""
    import keras

    import galaxy_core.models  # noqa: F401  (registers the layers saved models refer to)

    if not path.is_file():
        raise ModelLoadError(f"{path} does not exist")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged or foreign file
        raise ModelLoadError(f"{path} cannot be loaded: {type(error).__name__}: {error}") from error


VIEW_COUNT = 8  # an image's flips and quarter turns: dihedral_views


def dihedral_views(images: np.ndarray) -> list[np.ndarray]:
    """The 8 flips and quarter turns of a batch of square images (N, H, H, C); the first is the batch itself."""
    if images.shape[1] != images.shape[2]:
        raise InvalidInputError(f"views need square images, got {images.shape[1]}x{images.shape[2]}")
    turns = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    return turns + [view[:, :, ::-1] for view in turns]


def predict_in_batches(model, images: np.ndarray) -> np.ndarray:
    """The model's outputs (probabilities, or a probe's features) in batches of PREDICT_BATCH, as float32, without
    model.predict's per-call input pipeline (slow for one image)."""
    images = np.asarray(images, dtype=np.float32)
    batches = [
        model.predict_on_batch(images[start : start + PREDICT_BATCH]) for start in range(0, len(images), PREDICT_BATCH)
    ]
    return np.concatenate([np.asarray(batch) for batch in batches]).astype(np.float32)


def predict_views(model, images: np.ndarray) -> np.ndarray:
    """Probabilities for each of the 8 views, shape (8, N, classes)."""
    return predict_in_batches(model, np.concatenate(dihedral_views(np.asarray(images)))).reshape(8, len(images), -1)


def predict_probabilities(model, images: np.ndarray, *, tta: bool = False) -> np.ndarray:
    """Class probabilities (N, classes); with `tta`, the mean over the 8 views of each image."""
    return predict_views(model, images).mean(axis=0) if tta else predict_in_batches(model, images)


def align_labels(labels: np.ndarray, dataset_classes, model_classes) -> np.ndarray:
    """A dataset's labels as the model's class indices, matched by class name (any order)."""
    dataset_classes, model_classes = list(dataset_classes), list(model_classes)
    if sorted(dataset_classes) != sorted(model_classes):
        raise InvalidInputError(
            f"the dataset's classes {dataset_classes} are not the model's {model_classes}: "
            "a model can only be evaluated on images of the classes it was trained on"
        )
    mapping = np.array([model_classes.index(name) for name in dataset_classes], dtype=np.int32)
    return mapping[labels]


@dataclass(frozen=True)
class EvaluationResult:
    summary: dict  # galaxy_core.evaluation.summarize
    probabilities: np.ndarray  # (N, classes), in the model's class order
    labels: np.ndarray  # (N,), in the model's class order
    source_ids: np.ndarray


def evaluate_model(model, dataset, class_names, split: str = "test", *, tta: bool = False) -> EvaluationResult:
    """Metrics of `model` (trained on `class_names`) on one split of `dataset`, or on all of its images."""
    if split not in EVALUATION_SPLITS:
        raise InvalidInputError(f"split must be one of {EVALUATION_SPLITS}, got {split!r}")
    parts = list(dataset.splits.values()) if split == "all" else [dataset.splits[split]]
    images = np.concatenate([part.images for part in parts])
    if not len(images):
        hint = " (a folder without split folders puts its test images in 'test'; or use --split all)"
        raise InvalidInputError(f"the dataset {dataset.name} has no images in its {split!r} split{hint}")
    labels = align_labels(np.concatenate([part.labels for part in parts]), dataset.class_names, class_names)
    source_ids = np.concatenate([part.source_ids for part in parts])
    probabilities = predict_probabilities(model, images, tta=tta)
    summary = summarize(labels, probabilities.argmax(axis=1), list(class_names))
    return EvaluationResult(summary, probabilities, labels, source_ids)
