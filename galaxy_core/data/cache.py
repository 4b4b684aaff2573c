"""On-disk cache of decoded, preprocessed datasets, keyed by source + options.

One uncompressed .npz per key: loading it is a sequential read (a fraction of a second for gz1-3class at
64 px). Files are written to a temporary name in the same folder and moved into place, so a reader never
sees half a file; a damaged entry is treated as a miss and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np

from galaxy_core.data.dataset import SPLIT_NAMES, Dataset, RejectedFile, Split
from galaxy_core.data.images import PreprocessOptions
from galaxy_core.files import replaced_atomically

logger = logging.getLogger(__name__)
# Bump when the decoding, preprocessing or rendering code changes what it produces.
CACHE_FORMAT = 3  # 2: large non-JPEG images are reduced before they are resized; 3: skipped files by name


def cache_key(parts: Mapping[str, object]) -> str:
    text = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _save(dataset: Dataset, path: Path) -> None:
    arrays = {}
    for name, split in dataset.splits.items():
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels
        arrays[f"{name}_source_ids"] = split.source_ids.astype(str)
        arrays[f"{name}_original_sizes"] = split.original_sizes
    meta = {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "preprocess": asdict(dataset.preprocess),
        "skipped": [asdict(s) for s in dataset.skipped],
        "root": dataset.root,
        "description": dataset.description,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as temporary:
        np.savez(temporary, **arrays)


def _load(path: Path) -> Dataset:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        splits = {
            name: Split(
                images=data[f"{name}_images"],
                labels=data[f"{name}_labels"],
                source_ids=data[f"{name}_source_ids"],
                original_sizes=data[f"{name}_original_sizes"],
            )
            for name in SPLIT_NAMES
        }
    return Dataset(
        name=meta["name"],
        class_names=tuple(meta["class_names"]),
        splits=splits,
        preprocess=PreprocessOptions(**meta["preprocess"]),
        skipped=tuple(RejectedFile(**s) for s in meta["skipped"]),
        root=meta["root"],
        description=meta["description"],
    )


def cached_dataset(cache_dir: Path | None, key_parts: Mapping[str, object], build: Callable[[], Dataset]) -> Dataset:
    """The dataset stored under this key, else `build()` stored and returned. No cache_dir: just build."""
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / "datasets" / f"{key_parts['source']}-{cache_key(key_parts)}.npz"
    if path.is_file():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            logger.warning("dataset cache entry %s is unreadable (%s); rebuilding it", path, error)
    dataset = build()
    try:
        _save(dataset, path)
    except OSError as error:
        # A read-only or full cache folder costs speed, never the data.
        logger.warning("could not write dataset cache %s: %s", path, error)
    return dataset
