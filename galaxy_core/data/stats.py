"""What a dataset looks like in numbers: class balance, mean images, pixel histograms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galaxy_core.data.dataset import Dataset, Split

# A class is called dominant when it holds more than this many times its fair share (1 / classes) of the images.
IMBALANCE_FACTOR = 1.5


@dataclass(frozen=True)
class Imbalance:
    """The majority class of a split and what a network that always answers it would score."""

    majority: str
    share: float  # of the split's images: also the accuracy of always answering the majority
    balanced_accuracy: float  # of always answering the majority: 1 / classes


def imbalance(dataset: Dataset, split: str = "train") -> Imbalance | None:
    """The training split's dominant class, or None when no class holds more than 1.5x its fair share."""
    counts = dataset.class_counts()[split]
    if not counts.sum():
        return None
    majority = int(np.argmax(counts))
    share = float(counts[majority] / counts.sum())
    if share <= IMBALANCE_FACTOR / dataset.num_classes:
        return None
    return Imbalance(dataset.class_names[majority], share, 1 / dataset.num_classes)


def class_mean_images(split: Split, class_names) -> list[tuple[str, int, np.ndarray]]:
    """(class, images, its mean image stretched to full brightness as uint8) for each class present in `split`."""
    means = []
    for class_index, name in enumerate(class_names):
        members = split.images[split.labels == class_index]
        if len(members):
            mean = members.mean(axis=0)
            means.append((name, len(members), (255 * mean / max(mean.max(), 1)).astype(np.uint8)))
    return means


def pixel_histograms(images: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel counts for each value 0-255, per channel ("red", "green", "blue", or "gray")."""
    names = ["red", "green", "blue"] if images.shape[-1] == 3 else ["gray"]
    return {name: np.bincount(images[..., c].ravel(), minlength=256) for c, name in enumerate(names)}
