"""Classifying images a user brings: files or a zip of them, each checked on its own, then predicted.

One request (an upload, a `galaxy-lab predict` call) has a budget: each file or archive member at most
`file_bytes`, at most `unpacked_bytes` unpacked from archives in all, at most `pixels` decoded in all; whatever
would go over it is refused for that file, with a reason, and the rest go on. Archive members are read and
decoded one at a time and let go before the next. Any error while reading or decoding one file (a damaged
deflate stream, a decoder's exception) is that file's rejection, in plain words. Files are read in memory only:
nothing is written to disk, executed or unpickled, and only the decoders of galaxy_core.data.prepare are used:
the same that read a dataset's files, so a dropped copy of a dataset's galaxy gets the answer Evaluate shows.
A file is an archive when its name ends in .zip, or when it is not a decodable image but is a zip archive.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import numpy as np

from galaxy_core.data.dataset import RejectedFile
from galaxy_core.data.images import SUPPORTED_EXTENSIONS, ImageDecodeError, PreprocessOptions
from galaxy_core.data.prepare import prepare_image

MAX_ZIP_MEMBERS = 1000


@dataclass(frozen=True)
class ImageInput:
    """A usable image: its name, the pixels the model sees and what the user should know about it."""

    name: str
    pixels: np.ndarray  # (H, W, C) uint8, preprocessed
    original_size: tuple[int, int]  # (width, height)
    warnings: tuple[str, ...] = ()


Upload = ImageInput | RejectedFile


@dataclass(frozen=True)
class Prediction:
    name: str
    probabilities: np.ndarray  # (classes,)
    spread: np.ndarray | None  # (classes,) standard deviation over the 8 views, with TTA

    @property
    def label_index(self) -> int:
        return int(self.probabilities.argmax())


# The smallest centred square (what the model looks at, after the run's crop) an image may offer: fewer pixels than
# this hold no galaxy to classify, only a colour enlarged.
MIN_GALAXY_SIDE = 8


@dataclass(frozen=True)
class UploadLimits:
    """What one request may cost: bytes per file, bytes unpacked from archives in all, pixels decoded in all."""

    file_bytes: int
    unpacked_bytes: int
    pixels: int

    @classmethod
    def from_settings(cls, settings) -> UploadLimits:
        return cls(
            file_bytes=settings.upload_limit_mb * 1_000_000,
            unpacked_bytes=settings.upload_unpacked_mb * 1_000_000,
            pixels=settings.upload_megapixels * 1_000_000,
        )


class _Budget:
    """What a request has spent so far of its limits."""

    def __init__(self, limits: UploadLimits):
        self.limits, self.unpacked, self.pixels = limits, 0, 0

    def charge_pixels(self, pixels: int) -> None:
        if self.pixels + pixels > self.limits.pixels:
            raise ImageDecodeError(
                f"not decoded: with its {pixels / 1e6:.1f} megapixels this request would decode more than "
                f"{self.limits.pixels / 1e6:.0f} megapixels in all (send fewer or smaller images at a time)"
            )
        self.pixels += pixels


def _printable(name: str) -> str:
    """A file name as it can be shown: control characters (a newline, a terminal escape) become '?'."""
    return "".join(c if c.isprintable() else "?" for c in name)[:300] or "(no name)"


def _prepare(name: str, data: bytes, options: PreprocessOptions, budget: _Budget) -> ImageInput:
    pixels, original_size = prepare_image(data, options, charge=budget.charge_pixels)
    warnings = []
    side = int(options.crop_fraction * min(original_size))
    if side < MIN_GALAXY_SIDE:
        raise ImageDecodeError(
            f"too small to show a galaxy: {original_size[0]}x{original_size[1]} px, of which the model looks at the "
            f"centred {side} px square; it needs at least {MIN_GALAXY_SIDE} px there"
        )
    if side < options.image_size:
        warnings.append(
            f"small image ({original_size[0]}x{original_size[1]} px): its {side} px centre was enlarged to "
            f"{options.image_size} px, so fine detail is interpolated, not seen"
        )
    return ImageInput(name, pixels, original_size, tuple(warnings))


def _decoded(name: str, data: bytes, options: PreprocessOptions, budget: _Budget) -> Upload:
    try:
        return _prepare(name, data, options, budget)
    except ImageDecodeError as error:
        return RejectedFile(name, str(error))


def _archive_members(name: str, data: bytes, options: PreprocessOptions, budget: _Budget) -> Iterator[Upload]:
    """The images inside a zip archive, each read, decoded and let go in turn; what was left out and why."""
    limits = budget.limits
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        yield RejectedFile(name, "a damaged zip archive")
        return
    with archive:
        entries = [entry for entry in archive.infolist() if not entry.is_dir()]
        if len(entries) > MAX_ZIP_MEMBERS:
            yield RejectedFile(name, f"the archive holds {len(entries)} files; at most {MAX_ZIP_MEMBERS}")
            return
        found = False
        for entry in entries:
            path = PurePosixPath(entry.filename)
            label = f"{name}/{_printable(entry.filename)}"
            if path.name.startswith(".") or "__MACOSX" in path.parts:
                continue  # system files that archivers add
            found = True
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                yield RejectedFile(label, f"not an image file type ({', '.join(SUPPORTED_EXTENSIONS)})")
                continue
            if entry.file_size > limits.file_bytes:
                yield RejectedFile(label, f"unpacks to {entry.file_size / 1e6:.1f} MB, above the limit")
                continue
            room = limits.unpacked_bytes - budget.unpacked
            if entry.file_size > room:
                yield RejectedFile(
                    label,
                    f"not unpacked: this request may unpack {limits.unpacked_bytes / 1e6:.0f} MB from archives in "
                    "all, and the files before it used that up",
                )
                continue
            try:
                with archive.open(entry) as member:
                    content = member.read(min(limits.file_bytes, room) + 1)
            except Exception:  # damaged, encrypted or of an unknown compression: zipfile raises many kinds
                yield RejectedFile(label, "cannot be unpacked: damaged, encrypted or compressed in an unknown way")
                continue
            budget.unpacked += len(content)
            if len(content) > entry.file_size:
                yield RejectedFile(label, "unpacks to more than the archive says (a damaged or forged archive)")
                continue
            yield _decoded(label, content, options, budget)
            del content  # let it go before the next member is read
        if not found:
            yield RejectedFile(name, "the archive holds no image files")


def _read_file(name: str, data: bytes, options: PreprocessOptions, budget: _Budget) -> Iterator[Upload]:
    if len(data) > budget.limits.file_bytes:
        limit = budget.limits.file_bytes / 1e6
        yield RejectedFile(name, f"{len(data) / 1e6:.1f} MB, above the {limit:.0f} MB limit")
    elif name.lower().endswith(".zip"):
        yield from _archive_members(name, data, options, budget)
    else:
        upload = _decoded(name, data, options, budget)
        if isinstance(upload, RejectedFile) and zipfile.is_zipfile(io.BytesIO(data)):
            yield from _archive_members(name, data, options, budget)
        else:
            yield upload


def read_uploads(files: Iterable[tuple[str, bytes]], options: PreprocessOptions, limits: UploadLimits) -> list[Upload]:
    """Decode and preprocess (name, bytes) pairs, taken one at a time from `files`; zip archives are opened (one
    level deep) and their images taken one by one. Returns, in order, each usable image or each file's reason
    for not being one; names that repeat get " (2)", " (3)"... so that every result names one input."""
    budget = _Budget(limits)
    return _distinct([upload for name, data in files for upload in _read_file(_printable(name), data, options, budget)])


def read_upload_paths(paths: Iterable[Path], options: PreprocessOptions, limits: UploadLimits) -> list[Upload]:
    """`read_uploads` for files named on a command line: only regular files are read (not a pipe, a device or a
    folder, which could block or never end), and no more of one than the limit allows."""
    budget, uploads = _Budget(limits), []
    for path in paths:
        name = _printable(str(path))
        data = _read_regular_file(path, limits.file_bytes)
        uploads += [RejectedFile(name, data)] if isinstance(data, str) else _read_file(name, data, options, budget)
    return _distinct(uploads)


def _read_regular_file(path: Path, limit: int) -> bytes | str:
    """The file's bytes, or why they were not read."""
    try:
        # O_NONBLOCK: opening a pipe must not wait for a writer; what was opened is then checked, not the name.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        return error.strerror or str(error)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file (a folder, a device or a pipe)"
        if info.st_size > limit:
            return f"{info.st_size / 1e6:.1f} MB, above the {limit / 1e6:.0f} MB limit"
        data = b""
        while len(data) <= limit and (chunk := os.read(descriptor, limit + 1 - len(data))):
            data += chunk
    except OSError as error:
        return error.strerror or str(error)
    finally:
        os.close(descriptor)
    return data if len(data) <= limit else f"above the {limit / 1e6:.0f} MB limit (it grew while being read)"


def _distinct(uploads: list[Upload]) -> list[Upload]:
    """The same uploads, with " (2)", " (3)"... added to names already used."""
    seen: Counter = Counter()
    for index, upload in enumerate(uploads):
        seen[upload.name] += 1
        if seen[upload.name] > 1:
            uploads[index] = replace(upload, name=f"{upload.name} ({seen[upload.name]})")
    return uploads


def without_repeats(files: Iterable[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], int]:
    """The files with the same bytes as an earlier one left out (a picture dropped twice), and how many were."""
    seen, kept, repeats = set(), [], 0
    for name, data in files:
        digest = hashlib.sha256(data).digest()
        if digest in seen:
            repeats += 1
        else:
            seen.add(digest)
            kept.append((name, data))
    return kept, repeats


def prediction_rows(uploads: list[Upload], predictions: list[Prediction], class_names) -> list[dict]:
    """One record per upload, in their order: the answer and its probabilities (and spread over the 8 views, and
    notes) for an image; the reason for a refused file. `predictions` are those of the uploads' images, in order."""
    answers = iter(predictions)
    rows = []
    for upload in uploads:
        if not isinstance(upload, ImageInput):
            rows.append({"file": upload.name, "error": upload.reason})
            continue
        prediction = next(answers)
        row = {
            "file": upload.name,
            "label": class_names[prediction.label_index],
            "probabilities": dict(zip(class_names, map(float, prediction.probabilities), strict=True)),
        }
        if prediction.spread is not None:
            row["spread"] = dict(zip(class_names, map(float, prediction.spread), strict=True))
        if upload.warnings:
            row["warnings"] = list(upload.warnings)
        rows.append(row)
    return rows


def predict_images(model, images: list[ImageInput], *, tta: bool = False) -> list[Prediction]:
    """Class probabilities per image; with `tta`, the mean over the 8 flips and rotations and its spread."""
    from galaxy_core.answers.prediction import predict_probabilities, predict_views

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
