"""Galaxy10 (SDSS, 69 px) and Galaxy10 DECaLS (256 px): HDF5 files with `images` (N, H, W, 3) uint8 and
`ans` (N,) class indices, from a local path, plus a resumable, checksummed downloader."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_core.data.cache import cached_dataset
from galaxy_core.data.dataset import SPLIT_NAMES, Dataset, DatasetError, ProgressCallback, make_splits, stratified_split
from galaxy_core.data.images import PreprocessOptions, image_bytes, preprocess_array
from galaxy_core.data.sources import (
    PATH,
    SEED,
    TEST_FRACTION,
    VAL_FRACTION,
    DatasetChoice,
    DatasetSource,
    DatasetSpec,
    SourceOption,
    existing_path,
    register_source,
)
from galaxy_core.errors import GalaxyLabError

CHUNK_IMAGES = 512
DOWNLOAD_BLOCK = 1 << 20


@dataclass(frozen=True)
class Galaxy10Variant:
    key: str
    file_name: str
    url: str
    sha256: str
    image_size: int
    class_names: tuple[str, ...]
    credit: str


VARIANTS = {
    "sdss": Galaxy10Variant(
        key="sdss",
        file_name="Galaxy10.h5",
        url="https://www.astro.utoronto.ca/~hleung/shared/Galaxy10/Galaxy10.h5",
        sha256="969a6b1cefcc36e09fffa86febd2f699a4aa19b837ba0427f01b0bc6ded458af",
        image_size=69,
        class_names=(
            "Disk, Face-on, No Spiral",
            "Smooth, Completely round",
            "Smooth, in-between round",
            "Smooth, Cigar shaped",
            "Disk, Edge-on, Rounded Bulge",
            "Disk, Edge-on, Boxy Bulge",
            "Disk, Edge-on, No Bulge",
            "Disk, Face-on, Tight Spiral",
            "Disk, Face-on, Medium Spiral",
            "Disk, Face-on, Loose Spiral",
        ),
        credit="Galaxy10 SDSS (Leung & Bovy); images SDSS, labels Galaxy Zoo 2",
    ),
    "decals": Galaxy10Variant(
        key="decals",
        file_name="Galaxy10_DECals.h5",
        url="https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
        sha256="19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571",
        image_size=256,
        class_names=(
            "Disturbed",
            "Merging",
            "Round Smooth",
            "In-between Round Smooth",
            "Cigar Shaped Smooth",
            "Barred Spiral",
            "Unbarred Tight Spiral",
            "Unbarred Loose Spiral",
            "Edge-on without Bulge",
            "Edge-on with Bulge",
        ),
        credit="Galaxy10 DECaLS (Leung); images DESI Legacy Surveys, labels Galaxy Zoo DECaLS",
    ),
}


class DownloadError(GalaxyLabError, RuntimeError):
    """A download failed; the message says why and what to do instead."""


def variant_for(variant: str) -> Galaxy10Variant:
    if variant not in VARIANTS:
        raise ValueError(f"unknown Galaxy10 variant {variant!r}; known: {sorted(VARIANTS)}")
    return VARIANTS[variant]


def find_galaxy10_file(variant: str, folders: list[Path]) -> Path | None:
    """The first `folder/<file name>` that exists, in the order given, else None."""
    name = variant_for(variant).file_name
    return next((Path(folder) / name for folder in folders if (Path(folder) / name).is_file()), None)


def _read_labels_and_shape(path: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    import h5py

    try:
        with h5py.File(path, "r") as file:
            missing = {"images", "ans"} - set(file.keys())
            if missing:
                raise DatasetError(
                    f"{path.name} lacks the HDF5 key(s) {sorted(missing)}; Galaxy10 files hold 'images' and 'ans'"
                )
            return np.asarray(file["ans"], dtype=np.int64), tuple(file["images"].shape)
    except OSError as error:
        raise DatasetError(f"{path} is not a readable HDF5 file ({error})") from error


def _decoded_bytes(spec: DatasetSpec) -> int:
    """The preprocessed images (the file is read a chunk at a time)."""
    path = Path(spec.path).resolve()
    if not path.is_file():
        raise DatasetError(f"Galaxy10 file {path} does not exist")
    return image_bytes(_read_labels_and_shape(path)[1][0], spec.preprocess)


def _build(path: Path, variant: Galaxy10Variant, options, val_fraction, test_fraction, seed, progress) -> Dataset:
    import h5py

    labels, shape = _read_labels_and_shape(path)
    if len(shape) != 4 or shape[-1] != 3 or shape[0] != len(labels):
        raise DatasetError(f"{path.name}: expected images (N, H, W, 3) matching {len(labels)} labels, got {shape}")
    if labels.min() < 0 or labels.max() >= len(variant.class_names):
        raise DatasetError(
            f"{path.name}: labels must be 0-{len(variant.class_names) - 1}, got {labels.min()}-{labels.max()}"
        )
    count = shape[0]
    size = options.image_size
    images = np.empty((count, size, size, options.channels), dtype=np.uint8)
    with h5py.File(path, "r") as file:
        for start in range(0, count, CHUNK_IMAGES):
            chunk = np.asarray(file["images"][start : start + CHUNK_IMAGES], dtype=np.uint8)
            images[start : start + len(chunk)] = preprocess_array(chunk, options)
            if progress:
                done = start + len(chunk)
                progress(done, count, f"reading {path.name}: {done:,}/{count:,} images")
    labels = labels.astype(np.int32)
    source_ids = np.array([f"{path.name}#{i}" for i in range(count)])
    sizes = np.tile(np.array(shape[2:0:-1], dtype=np.int32), (count, 1))
    parts = stratified_split(labels, (val_fraction, test_fraction), seed)
    splits = make_splits(images, labels, source_ids, sizes, dict(zip(SPLIT_NAMES, parts, strict=True)))
    return Dataset(
        name=f"galaxy10-{variant.key}",
        class_names=variant.class_names,
        splits=splits,
        preprocess=options,
        description=variant.credit,
    )


def load_galaxy10(
    path: str | Path,
    options: PreprocessOptions,
    *,
    variant: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Dataset:
    """Load a Galaxy10 HDF5 file; the variant is read from the image size when not given."""
    path = Path(path).resolve()
    if not path.is_file():
        raise DatasetError(f"Galaxy10 file {path} does not exist")
    if variant is None:
        _, shape = _read_labels_and_shape(path)
        matches = [v for v in VARIANTS.values() if len(shape) == 4 and shape[1] == v.image_size]
        if not matches:
            raise DatasetError(f"{path.name} holds {shape} images; Galaxy10 SDSS has 69 px and DECaLS 256 px images")
        chosen = matches[0]
    else:
        chosen = variant_for(variant)
    stat = path.stat()
    key = {
        "source": f"galaxy10-{chosen.key}",
        "path": str(path),
        "file": [stat.st_size, stat.st_mtime_ns],
        "preprocess": options,
        "split": [val_fraction, test_fraction, seed],
    }
    return cached_dataset(
        cache_dir, key, lambda: _build(path, chosen, options, val_fraction, test_fraction, seed, progress)
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(DOWNLOAD_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def download_galaxy10(
    variant: str,
    dest_dir: str | Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download a Galaxy10 file into `dest_dir`, resuming a partial download, and verify its SHA-256.

    Returns the final path. Raises DownloadError with a reason a user can act on.
    """
    chosen = variant_for(variant)
    url = url or chosen.url
    expected = (sha256 or chosen.sha256).lower()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / chosen.file_name
    if final.is_file() and _sha256(final) == expected:
        return final
    partial = final.with_name(final.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = response.status == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else 0
            with partial.open("ab" if resumed else "wb") as file:
                while block := response.read(DOWNLOAD_BLOCK):
                    file.write(block)
                    have += len(block)
                    if progress:
                        progress(have, total, f"downloading {chosen.file_name}: {have / 1e6:,.1f} MB")
    except urllib.error.HTTPError as error:
        if error.code != 416:  # 416: the partial file is already complete
            raise DownloadError(f"the server refused {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"cannot download {url} ({reason}). This machine seems to be offline or the server is down. "
            f"What was received so far is kept in {partial} and the next attempt resumes from it; or fetch the "
            f"file elsewhere and place it in a data root as {chosen.file_name}."
        ) from error
    actual = _sha256(partial)
    if actual != expected:
        partial.unlink()
        raise DownloadError(
            f"{chosen.file_name} arrived damaged: SHA-256 {actual}, expected {expected}. "
            "The file was removed; download it again."
        )
    partial.replace(final)
    return final


def _search_folders(settings) -> list[Path]:
    """Where Galaxy10 files are looked for: the data roots, then the downloads folder."""
    return [*settings.data_roots, settings.download_dir]


def _discover(settings) -> list[DatasetChoice]:
    found = [(variant, find_galaxy10_file(variant.key, _search_folders(settings))) for variant in VARIANTS.values()]
    return [
        DatasetChoice(f"Galaxy10 {variant.key.upper()} ({path.name})", DatasetSpec.of("galaxy10", path=str(path)))
        for variant, path in found
        if path is not None
    ]


def _from_text(text: str, settings) -> DatasetSpec | None:
    """'galaxy10-sdss' / 'galaxy10-decals' (looked up in the data roots and downloads), or an existing file."""
    if text.startswith("galaxy10-") and text.removeprefix("galaxy10-") in VARIANTS:
        variant = VARIANTS[text.removeprefix("galaxy10-")]
        path = find_galaxy10_file(variant.key, _search_folders(settings))
        if path is None:
            raise DatasetError(
                f"{variant.file_name} is in none of the data roots or {settings.download_dir}; "
                f"get it with: galaxy-lab download {variant.key}"
            )
        return DatasetSpec.of("galaxy10", path=str(path))
    path = existing_path(text, settings.data_roots)
    return DatasetSpec.of("galaxy10", path=str(path)) if path is not None and path.is_file() else None


register_source(
    DatasetSource(
        name="galaxy10",
        title="Galaxy10 SDSS or DECaLS (an HDF5 file)",
        load=load_galaxy10,
        options=(
            PATH,
            SourceOption(
                "variant", "which Galaxy10 (read from the image size when not given)", str, choices=tuple(VARIANTS)
            ),
            VAL_FRACTION,
            TEST_FRACTION,
            SEED,
        ),
        label=lambda spec: Path(spec.path or "Galaxy10").name,
        discover=_discover,
        from_text=_from_text,
        text_help="'galaxy10-sdss', 'galaxy10-decals', or a Galaxy10 .h5 file",
        decoded_bytes=_decoded_bytes,
    )
)
