"""A trained run's features of a dataset's images, computed once and cached: what a transfer run trains its new
head on when the base stays frozen (seconds instead of minutes: the base's forward pass is paid once per dataset),
and evaluates it on (the test images' 8 flips and quarter turns included).

    <cache>/features/<key>.npz   source_ids, features        every split's images through the base, up to the cut
                                 test_ids, test_views        the test images' 8 views, (8, N, features)

The key names the base network by its model file's SHA-256 (another checkpoint, even of the same run, is another
base), the layer cut at, and the dataset spec (images and preprocessing). A cache file that cannot be read, or
holds other images, is computed again, never trusted. The folder is kept under FEATURE_CACHE_BYTES: after each
write, the files used least recently go first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_core.data import Dataset, spec_to_link
from galaxy_core.files import replaced_atomically

logger = logging.getLogger(__name__)
FEATURE_CACHE_BYTES = 4 * 2**30


@dataclass(frozen=True)
class BaseFeatures:
    splits: dict[str, np.ndarray]  # {split: features of its images, in the split's order}
    test_views: np.ndarray  # (8, test images, features): the test images' dihedral views
    cached: bool  # read from the cache


def model_digest(model_path: Path) -> str:
    """The SHA-256 of a model file, read in chunks."""
    digest = hashlib.sha256()
    with Path(model_path).open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def feature_key(base_digest: str, cut: str, dataset: Dataset) -> str:
    parts = [base_digest, cut, spec_to_link(dataset.spec)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def _rows(cached_ids: np.ndarray, wanted: np.ndarray) -> list[int] | None:
    """The rows of `cached_ids` holding `wanted`, in its order; None when one is missing."""
    where = {source_id: row for row, source_id in enumerate(cached_ids.astype(str))}
    rows = [where.get(str(source_id)) for source_id in wanted]
    return None if any(row is None for row in rows) else rows


def _read(path: Path, dataset: Dataset) -> BaseFeatures | None:
    """The cached features of exactly this dataset's images; None when the file is missing or unusable."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in ("source_ids", "features", "test_ids", "test_views")}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        logger.warning("feature cache %s is damaged (%s): computed again", path.name, error)
        return None
    if len(arrays["source_ids"]) != len(arrays["features"]) or arrays["test_views"].shape[:2] != (
        8,
        len(arrays["test_ids"]),
    ):
        return None
    ids = np.concatenate([split.source_ids for split in dataset.splits.values()])
    rows, test_rows = _rows(arrays["source_ids"], ids), _rows(arrays["test_ids"], dataset.splits["test"].source_ids)
    if rows is None or test_rows is None:
        return None
    path.touch()  # used: the last to be pruned
    return BaseFeatures(_by_split(dataset, arrays["features"][rows]), arrays["test_views"][:, test_rows], True)


def base_features(feature_model, base_digest: str, cut: str, dataset: Dataset, cache_dir: Path | None) -> BaseFeatures:
    """Every split's images, and the test images' 8 views, through `feature_model` once; with `cache_dir`, the
    result is kept for the next run with the same base, cut and data."""
    from galaxy_core.answers.prediction import predict_in_batches, predict_views

    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "features" / f"{feature_key(base_digest, cut, dataset)}.npz"
        cached = _read(path, dataset)
        if cached is not None:
            return cached
    features = predict_in_batches(feature_model, np.concatenate([s.images for s in dataset.splits.values()]))
    test = dataset.splits["test"]
    test_views = (
        predict_views(feature_model, test.images) if len(test) else np.zeros((8, 0, *features.shape[1:]), np.float32)
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = np.concatenate([split.source_ids.astype(str) for split in dataset.splits.values()])
        with replaced_atomically(path) as temporary:
            np.savez(
                temporary,
                source_ids=ids,
                features=features,
                test_ids=test.source_ids.astype(str),
                test_views=test_views,
            )
    return BaseFeatures(_by_split(dataset, features), test_views, False)


def prune(folder: Path, limit_bytes: int) -> list[Path]:
    """Delete the least recently used cache files of `folder` until the rest take at most `limit_bytes` (the newest
    is always kept); returns the files deleted."""
    files = []
    for path in folder.glob("*.npz"):
        try:
            stat = path.stat()
        except OSError:  # deleted meanwhile by another run's pruning
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    files.sort(reverse=True)
    deleted, total = [], 0
    for index, (_, size, path) in enumerate(files):
        total += size
        if total > limit_bytes and index > 0:
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


def _by_split(dataset: Dataset, features: np.ndarray) -> dict[str, np.ndarray]:
    result, start = {}, 0
    for name, split in dataset.splits.items():
        result[name] = features[start : start + len(split)]
        start += len(split)
    return result
