"""The dataset every source returns: uint8 splits, class names, source ids and what was skipped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from galaxy_core.data.images import PreprocessOptions
from galaxy_core.data.sources import DatasetSpec
from galaxy_core.errors import GalaxyLabError, InvalidInputError

SPLIT_NAMES = ("train", "val", "test")
# Called as progress(done, total, message) during long work (decoding, rendering, downloading).
ProgressCallback = Callable[[int, int, str], None]


class DatasetError(GalaxyLabError, ValueError):
    """A dataset cannot be built; the message names the folder or file and what was expected."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, H, W, C) uint8
    labels: np.ndarray  # (N,) int32 class indices
    source_ids: np.ndarray  # (N,) str: a file path relative to the dataset root, or an index
    original_sizes: np.ndarray  # (N, 2) int32 (width, height) before preprocessing

    def __post_init__(self) -> None:
        count = len(self.images)
        if not (len(self.labels) == len(self.source_ids) == len(self.original_sizes) == count):
            raise ValueError("a split's images, labels, source ids and sizes must have the same length")
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"split images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)

    def take(self, indices: np.ndarray) -> Split:
        return Split(self.images[indices], self.labels[indices], self.source_ids[indices], self.original_sizes[indices])


@dataclass(frozen=True)
class RejectedFile:
    """A file the lab could not use (a dataset file skipped, an upload refused): its name and why, in plain words."""

    name: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    name: str
    class_names: tuple[str, ...]
    splits: Mapping[str, Split]
    preprocess: PreprocessOptions
    skipped: tuple[RejectedFile, ...] = ()
    # Where source ids point, for a source made of files; None for generated or packed data.
    root: str | None = None
    description: str = ""
    spec: DatasetSpec | None = None  # set by galaxy_core.data.create_dataset

    def __post_init__(self) -> None:
        if set(self.splits) != set(SPLIT_NAMES):
            raise ValueError(f"a dataset needs the splits {SPLIT_NAMES}, got {sorted(self.splits)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> dict[str, np.ndarray]:
        """Images per class for each split."""
        return {name: split.class_counts(self.num_classes) for name, split in self.splits.items()}

    def with_training_labels_changed(self, changes: Mapping[str, str | None]) -> Dataset:
        """The dataset with some training labels changed, as a label review decided: {source id: the new class
        name, or None to leave the image out}. Validation and test splits never change, so that runs with and
        without the changes are judged on the same labels. An unknown class, or changes none of which name a
        training image, are refused: they were made for another dataset."""
        if not changes:
            return self
        unknown = sorted({name for name in changes.values() if name is not None and name not in self.class_names})
        if unknown:
            raise DatasetError(f"the label changes name classes this dataset does not have: {', '.join(unknown)}")
        train = self.splits["train"]
        found = np.array([str(source_id) in changes for source_id in train.source_ids], dtype=bool)
        if not found.any():
            raise DatasetError(
                f"none of the {len(changes)} label changes names an image of this dataset's training split: were "
                "they made for another dataset?"
            )
        index = {name: i for i, name in enumerate(self.class_names)}
        labels = train.labels.copy()
        kept = np.ones(len(train), dtype=bool)
        for position in np.flatnonzero(found):
            new = changes[str(train.source_ids[position])]
            if new is None:
                kept[position] = False
            else:
                labels[position] = index[new]
        changed = Split(train.images, labels, train.source_ids, train.original_sizes).take(np.flatnonzero(kept))
        return replace(self, splits={**self.splits, "train": changed})


def make_splits(images, labels, source_ids, sizes, indices: Mapping[str, np.ndarray]) -> dict[str, Split]:
    """Splits from parallel per-image arrays and each split's indices into them."""
    return {name: Split(images[i], labels[i], source_ids[i], sizes[i]) for name, i in indices.items()}


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices for train/val/test, each class divided in the given (val, test) fractions.

    Every class with at least 3 images gets at least one image in each split.
    """
    val_fraction, test_fraction = fractions
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise InvalidInputError(f"val and test fractions must be >= 0 and sum below 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = len(members)
        n_val = round(count * val_fraction)
        n_test = round(count * test_fraction)
        if count >= 3:
            n_val = max(n_val, 1) if val_fraction > 0 else 0
            n_test = max(n_test, 1) if test_fraction > 0 else 0
        parts[1].append(members[:n_val])
        parts[2].append(members[n_val : n_val + n_test])
        parts[0].append(members[n_val + n_test :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in parts)
