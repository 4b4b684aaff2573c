"""Building datasets from specs over every registered source, the datasets found under the data roots, names
typed in a terminal, labels for menus, and path confinement."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

# Each module registers its source; the order of registration is the order of menus and of name lookups.
# isort: off
from galaxy_core.data import synthetic  # noqa: F401
from galaxy_core.data import folder  # noqa: F401
from galaxy_core.data import galaxy10  # noqa: F401

# isort: on
from galaxy_core.data.dataset import Dataset, DatasetError, ProgressCallback
from galaxy_core.data.sources import DATASET_SOURCES, DatasetChoice, DatasetSpec, dataset_source
from galaxy_core.errors import InvalidInputError
from galaxy_core.files import typed_path
from galaxy_core.settings import Settings


def list_dataset_sources() -> list[str]:
    return list(DATASET_SOURCES)


def check_spec(spec: DatasetSpec) -> DatasetSpec:
    """The spec, when its source exists and every option is one the source takes, of the right type and range;
    raises ValueError otherwise."""
    source = dataset_source(spec.source)
    for name, value in spec.options:
        source.option(name).check(value)
    missing = [option.name for option in source.options if option.required and spec.option(option.name) is None]
    if missing:
        raise InvalidInputError(f"dataset source {spec.source!r} needs {missing}")
    return spec


def create_dataset(
    spec: DatasetSpec | str,
    *,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    memory_limit_mb: int | None = None,
    image_size: int | None = None,
    crop_fraction: float | None = None,
    channels: int | None = None,
    **options: object,
) -> Dataset:
    """The dataset `spec` describes, with uint8 train/val/test splits. `spec` may also be a source name
    ("synthetic", "folder", "galaxy10") with its preprocessing and options as keywords (unset: the defaults).
    `cache_dir` enables the on-disk cache. `memory_limit_mb`: a spec whose decoded arrays would take more is refused
    (DatasetTooLargeError) before anything is decoded or allocated."""
    if isinstance(spec, str):
        spec = DatasetSpec.of(spec, **options).with_preprocess(
            image_size=image_size, crop_fraction=crop_fraction, channels=channels
        )
    elif options or image_size or crop_fraction or channels:
        raise TypeError("pass either a DatasetSpec or a source name with keywords, not both")
    check_spec(spec)
    if memory_limit_mb is not None:
        check_dataset_memory(spec, memory_limit_mb)
    dataset = dataset_source(spec.source).load(
        **dict(spec.options),
        options=spec.preprocess,
        cache_dir=Path(cache_dir) if cache_dir else None,
        progress=progress,
    )
    return replace(dataset, spec=spec)


class DatasetTooLargeError(DatasetError):
    """A dataset whose decoded arrays would take more memory than the server allows."""


def check_dataset_memory(spec: DatasetSpec, limit_mb: int) -> None:
    """Refuse (DatasetTooLargeError, with the figure and the limit) a spec whose loading would take more than
    `limit_mb` of memory at its peak; nothing is decoded to find out."""
    needed = dataset_source(spec.source).decoded_bytes(spec)
    if needed > limit_mb * 1_000_000:
        raise DatasetTooLargeError(
            f"{describe_spec(spec)} would take {needed / 1e6:,.0f} MB of memory to load, above this server's limit "
            f"of {limit_mb:,} MB (dataset_memory_mb): choose fewer images or a smaller image size"
        )


def discover_datasets(settings: Settings) -> list[DatasetChoice]:
    """Every dataset the sources find, in registration order: synthetic first, then folders in the data roots,
    then Galaxy10 files in the data roots and downloads."""
    return [choice for source in DATASET_SOURCES.values() for choice in source.discover(settings)]


def spec_from_name(text: str, settings: Settings) -> DatasetSpec:
    """The spec for a dataset named in a terminal: each source tries in turn (see `dataset_names_help`)."""
    for source in DATASET_SOURCES.values():
        spec = source.from_text(text, settings)
        if spec is not None:
            return spec
    raise DatasetError(f"{text!r} is none of: {dataset_names_help()}")


def dataset_names_help() -> str:
    return "; ".join(source.text_help for source in DATASET_SOURCES.values())


def spec_to_link(spec: DatasetSpec) -> str:
    """The spec as text for a URL (compact JSON of its dict form); `spec_from_link` reads it back."""
    return json.dumps(spec.to_dict(), separators=(",", ":"), sort_keys=True)


def spec_from_link(text: str, settings: Settings) -> DatasetSpec:
    """The spec a link carries, checked like anything typed by a stranger: a known source and options, a path (if
    any) inside the data roots or the downloads folder, and a size within the server's dataset memory budget.
    Raises DatasetError or InvalidInputError saying why."""
    try:
        values = json.loads(text)
    except ValueError:
        raise InvalidInputError(f"the link's dataset is not a dataset description: {text[:80]!r}") from None
    spec = check_spec(DatasetSpec.from_dict(values))
    if spec.path is not None:
        confined = resolve_in_data_roots(spec.path, (*settings.data_roots, settings.download_dir))
        spec = spec.with_options(path=str(confined))
    check_dataset_memory(spec, settings.dataset_memory_mb)
    return spec


def describe_spec(spec: DatasetSpec) -> str:
    """A short human label for a spec: 'gz1-3class, 64 px, RGB, crop 0.4'."""
    preprocess = spec.preprocess
    text = f"{dataset_source(spec.source).label(spec)}, {preprocess.image_size} px, "
    text += "grayscale" if preprocess.channels == 1 else "RGB"
    if preprocess.crop_fraction != 1.0:
        text += f", crop {preprocess.crop_fraction}"
    return text


def resolve_in_data_roots(text: str, roots: tuple[Path, ...]) -> Path:
    """A user-typed dataset path, resolved (links followed) and confined to the data roots.

    Relative paths are tried against each root in turn. Raises DatasetError when the path leaves every root
    (`..`, a link pointing out, an absolute path elsewhere) or does not exist.
    """
    if not roots:
        raise DatasetError("no data roots are configured: set GALAXY_LAB_DATA_ROOTS or data_roots in galaxy-lab.toml")
    try:
        typed = typed_path(text, "the dataset path")
    except ValueError as error:
        raise DatasetError(str(error)) from None
    candidates = [typed] if typed.is_absolute() else [root / typed for root in roots]
    inside = []
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            exists = resolved.exists()
        except OSError as error:  # a name too long for the file system, a loop of links, ...
            raise DatasetError(f"{text!r} cannot be looked up: {error.strerror or error}") from None
        if any(resolved.is_relative_to(root.resolve()) for root in roots):
            if exists:
                return resolved
            inside.append(resolved)
    # Neither message names a folder: a student who typed the path learns nothing of the server's.
    if inside:
        raise DatasetError(f"{text!r} is not in the lab's data folders")
    raise DatasetError(f"{text!r} is in a folder the lab does not serve from (outside the data roots)")
