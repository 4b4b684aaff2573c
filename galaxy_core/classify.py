"""Classifying images a user brings: files or a zip of them, each checked on its own, then predicted.

Every file that cannot be used is reported with its reason and the others go on. Files are read into memory
and decoded by Pillow with a pixel limit; nothing is written to disk, executed or unpickled. Zip archives are
opened member by member with limits on count and unpacked size, so an archive bomb is refused, not unpacked.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from galaxy_core.data.images import (
    SUPPORTED_EXTENSIONS,
    ImageDecodeError,
    PreprocessOptions,
    open_image,
    preprocess_pil,
)

MAX_ZIP_MEMBERS = 1000


@dataclass(frozen=True)
class ImageInput:
    """A usable image: its name, the pixels the model sees and what the user should know about it."""

    name: str
    pixels: np.ndarray  # (H, W, C) uint8, preprocessed
    original_size: tuple[int, int]  # (width, height)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RejectedFile:
    name: str
    reason: str


@dataclass(frozen=True)
class Prediction:
    name: str
    probabilities: np.ndarray  # (classes,)
    spread: np.ndarray | None  # (classes,) standard deviation over the 8 views, with TTA

    @property
    def label_index(self) -> int:
        return int(self.probabilities.argmax())


def _prepare(name: str, data: bytes, options: PreprocessOptions) -> ImageInput:
    image, original_size = open_image(data)
    warnings = []
    side = int(options.crop_fraction * min(original_size))
    if side < options.image_size:
        warnings.append(
            f"small image ({original_size[0]}x{original_size[1]} px): its {side} px centre was enlarged to "
            f"{options.image_size} px, so fine detail is interpolated, not seen"
        )
    return ImageInput(name, preprocess_pil(image, options), original_size, tuple(warnings))


def _zip_members(name: str, data: bytes, max_bytes: int) -> tuple[list[tuple[str, bytes]], list[RejectedFile]]:
    """The image files inside a zip archive, read with limits; what was left out and why."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return [], [RejectedFile(name, "a damaged zip archive")]
    members, rejected = [], []
    with archive:
        entries = [entry for entry in archive.infolist() if not entry.is_dir()]
        if len(entries) > MAX_ZIP_MEMBERS:
            return [], [RejectedFile(name, f"the archive holds {len(entries)} files; at most {MAX_ZIP_MEMBERS}")]
        for entry in entries:
            path = PurePosixPath(entry.filename)
            label = f"{name}/{entry.filename}"
            if path.name.startswith(".") or "__MACOSX" in path.parts:
                continue  # system files that archivers add
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                rejected.append(RejectedFile(label, f"not an image file type ({', '.join(SUPPORTED_EXTENSIONS)})"))
                continue
            if entry.file_size > max_bytes:
                rejected.append(RejectedFile(label, f"unpacks to {entry.file_size / 1e6:.1f} MB, above the limit"))
                continue
            try:
                with archive.open(entry) as member:
                    content = member.read(max_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:
                # Damaged data, or encrypted or unsupported compression.
                rejected.append(RejectedFile(label, f"cannot be unpacked ({error})"))
                continue
            if len(content) > max_bytes:
                rejected.append(RejectedFile(label, "unpacks to more than its declared size allows"))
                continue
            members.append((label, content))
    return members, rejected


def read_images(
    files: Iterable[tuple[str, bytes]], options: PreprocessOptions, max_bytes: int
) -> tuple[list[ImageInput], list[RejectedFile]]:
    """Decode and preprocess (name, bytes) pairs; zip archives are opened (one level deep) and their images
    taken one by one. Returns the usable images and, for each file that is not, its reason."""
    candidates, rejected = [], []
    for name, data in files:
        if len(data) > max_bytes:
            rejected.append(RejectedFile(name, f"{len(data) / 1e6:.1f} MB, above the {max_bytes / 1e6:.0f} MB limit"))
        elif name.lower().endswith(".zip") or zipfile.is_zipfile(io.BytesIO(data)):
            members, problems = _zip_members(name, data, max_bytes)
            candidates.extend(members)
            rejected.extend(problems)
            if not members and not problems:
                rejected.append(RejectedFile(name, "the archive holds no image files"))
        else:
            candidates.append((name, data))
    images = []
    for name, data in candidates:
        try:
            images.append(_prepare(name, data, options))
        except ImageDecodeError as error:
            rejected.append(RejectedFile(name, str(error)))
    return images, rejected


def predict_images(model, images: list[ImageInput], *, tta: bool = False) -> list[Prediction]:
    """Class probabilities per image; with `tta`, the mean over the 8 flips and rotations and its spread."""
    from galaxy_core.inference import predict_probabilities, predict_views

    if not images:
        return []
    pixels = np.stack([image.pixels for image in images])
    if tta:
        views = predict_views(model, pixels)
        return [
            Prediction(image.name, views[:, index].mean(axis=0), views[:, index].std(axis=0))
            for index, image in enumerate(images)
        ]
    probabilities = predict_probabilities(model, pixels)
    return [Prediction(image.name, row, None) for image, row in zip(images, probabilities, strict=True)]
