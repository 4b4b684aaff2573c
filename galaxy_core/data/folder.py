"""A folder of class subfolders, with or without train/ val/ test/ split folders above them.

    root/<class>/<image>             split here with a seed, stratified by class
    root/<split>/<class>/<image>     the split folders are used; a missing val/ or test/ is carved from train/

Files that cannot be used are skipped and reported by name with the reason; a dataset that has no
images, fewer than two classes, or a class without images is an error that says which.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_core.data.cache import cached_dataset
from galaxy_core.data.dataset import (
    SPLIT_NAMES,
    Dataset,
    DatasetError,
    ProgressCallback,
    RejectedFile,
    make_splits,
    stratified_split,
)
from galaxy_core.data.images import (
    SUPPORTED_EXTENSIONS,
    ImageDecodeError,
    PreprocessOptions,
    image_bytes,
    load_image_file,
)
from galaxy_core.data.jpeg import decode_jpegs
from galaxy_core.data.sources import (
    PATH,
    SEED,
    TEST_FRACTION,
    VAL_FRACTION,
    DatasetChoice,
    DatasetSource,
    DatasetSpec,
    existing_path,
    register_source,
)

IMAGE_TYPES = ", ".join(extension.lstrip(".") for extension in SUPPORTED_EXTENSIONS)

SPLIT_FOLDER_NAMES = {
    "train": {"train", "training"},
    "val": {"val", "valid", "validation"},
    "test": {"test", "testing"},
}


@dataclass(frozen=True)
class _Candidate:
    relative_path: str
    split: str | None  # None: the folder has no split folders
    label: int


def _visible_subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _split_folders(root: Path) -> dict[str, Path]:
    found = {}
    for folder in _visible_subdirs(root):
        for split, names in SPLIT_FOLDER_NAMES.items():
            if folder.name.lower() in names:
                if split in found:
                    raise DatasetError(
                        f"{root} has two folders for the {split} split: {found[split].name}, {folder.name}"
                    )
                found[split] = folder
    return found


def _scan(root: Path) -> tuple[tuple[str, ...], list[_Candidate], list[RejectedFile], str]:
    """Class names, image candidates, files skipped for their type, and a signature of the listing."""
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; a folder dataset needs a folder of class folders")
    split_folders = _split_folders(root)
    if split_folders and "train" not in split_folders:
        raise DatasetError(f"{root} has {sorted(split_folders)} split folders but no train/ folder")
    top_folders = dict(split_folders) or {None: root}
    class_source = top_folders.get("train", root)
    class_names = tuple(p.name for p in _visible_subdirs(class_source))
    if len(class_names) < 2:
        raise DatasetError(
            f"{class_source} must hold one folder per class (at least 2); found {list(class_names) or 'none'}"
        )
    candidates: list[_Candidate] = []
    skipped: list[RejectedFile] = []
    signature = hashlib.sha256()
    for split, top in top_folders.items():
        for class_folder in _visible_subdirs(top):
            if class_folder.name not in class_names:
                raise DatasetError(f"{class_folder} is a class that {class_source} does not have: {list(class_names)}")
            label = class_names.index(class_folder.name)
            prefix = class_folder.relative_to(root).as_posix() + "/"
            with os.scandir(class_folder) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    relative = prefix + entry.name
                    stat = entry.stat()
                    signature.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                    if entry.name.lower().endswith(SUPPORTED_EXTENSIONS):
                        candidates.append(_Candidate(relative, split, label))
                    else:
                        skipped.append(RejectedFile(relative, f"not a supported image type ({IMAGE_TYPES})"))
    if not candidates:
        raise DatasetError(f"no images ({IMAGE_TYPES}) found in the class folders of {root}")
    return class_names, candidates, skipped, signature.hexdigest()


def _decode_all(
    root: Path, candidates: list[_Candidate], options: PreprocessOptions, progress: ProgressCallback | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[RejectedFile]]:
    """(images, original sizes, decoded mask, failures) in candidate order.

    JPEG files go through the fast cropped decoder; the other files, and the JPEG files it could not read, through
    PIL, which says why a file is unusable. PIL runs in threads: it releases the GIL while decoding and resizing.
    """
    jpegs = np.array(
        [i for i, c in enumerate(candidates) if c.relative_path.lower().endswith((".jpg", ".jpeg"))], dtype=np.int64
    )
    size = options.image_size
    images = np.zeros((len(candidates), size, size, options.channels), dtype=np.uint8)
    sizes = np.zeros((len(candidates), 2), dtype=np.int32)
    decoded = np.zeros(len(candidates), dtype=bool)
    if len(jpegs):
        # Plain strings: pathlib costs more than the decoding here, across thousands of files.
        paths = [f"{root}{os.sep}{candidates[i].relative_path}" for i in jpegs]
        images[jpegs], sizes[jpegs], decoded[jpegs] = decode_jpegs(paths, options, progress)
    remaining = np.flatnonzero(~decoded)

    def decode(index: int):
        try:
            return load_image_file(root / candidates[index].relative_path, options)
        except ImageDecodeError as error:
            return RejectedFile(candidates[index].relative_path, str(error))

    failures = []
    step = max(1, len(remaining) // 50)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        for done, (index, result) in enumerate(zip(remaining, pool.map(decode, remaining), strict=True), start=1):
            if isinstance(result, RejectedFile):
                failures.append(result)
            else:
                images[index], sizes[index] = result
                decoded[index] = True
            if progress and (done % step == 0 or done == len(remaining)):
                progress(done, len(remaining), f"decoding {root.name}: {done:,}/{len(remaining):,} other images")
    return images, sizes, decoded, failures


def _build(
    root: Path,
    class_names: tuple[str, ...],
    candidates: list[_Candidate],
    skipped: list[RejectedFile],
    options: PreprocessOptions,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    progress: ProgressCallback | None,
) -> Dataset:
    images, sizes, decoded, failures = _decode_all(root, candidates, options, progress)
    if not decoded.any():
        raise DatasetError(f"none of the {len(candidates)} image files in {root} could be read")
    labels = np.array([c.label for c in candidates], dtype=np.int32)
    source_ids = np.array([c.relative_path for c in candidates])
    # Without split folders every image starts in the training pool, and val/test are carved from it.
    in_split = np.array([c.split or "train" for c in candidates])
    pool = np.flatnonzero((in_split == "train") & decoded)
    empty = [name for label, name in enumerate(class_names) if not np.any(labels[pool] == label)]
    if empty:
        raise DatasetError(f"class folder(s) {empty} in {root} have no readable training images")
    indices = {name: np.flatnonzero((in_split == name) & decoded) for name in SPLIT_NAMES}
    carve = (0.0 if len(indices["val"]) else val_fraction, 0.0 if len(indices["test"]) else test_fraction)
    train, val, test = stratified_split(labels[pool], carve, seed)
    indices["train"] = pool[train]
    if carve[0]:
        indices["val"] = pool[val]
    if carve[1]:
        indices["test"] = pool[test]
    splits = make_splits(images, labels, source_ids, sizes, indices)
    return Dataset(
        name=root.name,
        class_names=class_names,
        splits=splits,
        preprocess=options,
        skipped=tuple(skipped + failures),
        root=str(root),
        description=f"image folder {root.name}",
    )


def load_folder(
    path: str | Path,
    options: PreprocessOptions,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Dataset:
    """Load a folder dataset (see the module docstring); cached by folder listing + options."""
    root = Path(path).resolve()
    class_names, candidates, skipped, signature = _scan(root)
    key = {
        "source": "folder",
        "root": str(root),
        "listing": signature,
        "preprocess": options,
        "split": [val_fraction, test_fraction, seed],
    }
    return cached_dataset(
        cache_dir,
        key,
        lambda: _build(root, class_names, candidates, skipped, options, val_fraction, test_fraction, seed, progress),
    )


def folder_spec(folder: Path, settings) -> DatasetSpec:
    """The spec of a folder dataset, with the settings' defaults for a folder of that name (e.g. gz1-3class's
    crop) applied."""
    defaults = {"name": "folder", **settings.dataset_defaults.get(folder.name, {}), "path": str(folder)}
    return DatasetSpec.from_dict(defaults)


def _looks_like_folder_dataset(folder: Path) -> bool:
    subfolders = _visible_subdirs(folder)
    split_names = set().union(*SPLIT_FOLDER_NAMES.values())
    return any(p.name.lower() in split_names for p in subfolders) or len(subfolders) >= 2


def _discover(settings) -> list[DatasetChoice]:
    """Every folder directly inside a data root that has split folders or at least two class folders."""
    return [
        DatasetChoice(f"{folder.name} (folder)", folder_spec(folder.resolve(), settings))
        for root in settings.data_roots
        if root.is_dir()
        for folder in _visible_subdirs(root)
        if _looks_like_folder_dataset(folder)
    ]


def _from_text(text: str, settings) -> DatasetSpec | None:
    path = existing_path(text, settings.data_roots)
    return folder_spec(path, settings) if path is not None and path.is_dir() else None


register_source(
    DatasetSource(
        name="folder",
        title="A folder of class folders",
        load=load_folder,
        options=(PATH, VAL_FRACTION, TEST_FRACTION, SEED),
        label=lambda spec: Path(spec.path or "folder").name,
        discover=_discover,
        from_text=_from_text,
        text_help="a folder of class folders, or the name of one in a data root",
        decoded_bytes=lambda spec: image_bytes(len(_scan(Path(spec.path).resolve())[1]), spec.preprocess),
    )
)
