"""One factory for every dataset source, the datasets found under the data roots, and path confinement."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from galaxy_core.data.dataset import Dataset, DatasetError, ProgressCallback
from galaxy_core.data.folder import SPLIT_FOLDER_NAMES, load_folder
from galaxy_core.data.galaxy10 import VARIANTS, find_galaxy10_file, load_galaxy10
from galaxy_core.data.images import PreprocessOptions
from galaxy_core.data.synthetic import load_synthetic
from galaxy_core.files import typed_path
from galaxy_core.settings import Settings

DATASET_SOURCES: dict[str, Callable[..., Dataset]] = {
    "synthetic": load_synthetic,
    "folder": load_folder,
    "galaxy10": load_galaxy10,
}
# Arguments every source takes from the factory itself, not from the caller's source options.
_FACTORY_ARGUMENTS = {"options", "cache_dir", "progress"}


def list_dataset_sources() -> list[str]:
    return sorted(DATASET_SOURCES)


def source_options(name: str) -> list[str]:
    """The options a source accepts besides the preprocessing ones."""
    if name not in DATASET_SOURCES:
        raise ValueError(f"unknown dataset source {name!r}; known sources: {list_dataset_sources()}")
    parameters = inspect.signature(DATASET_SOURCES[name]).parameters
    return [p for p in parameters if p not in _FACTORY_ARGUMENTS]


def create_dataset(
    name: str,
    *,
    image_size: int = 64,
    crop_fraction: float = 1.0,
    channels: int = 3,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    **options: object,
) -> Dataset:
    """Build the dataset `name` ("synthetic", "folder", "galaxy10") with uint8 train/val/test splits.

    Preprocessing options are shared by every source; the rest go to the source (see `source_options`).
    Unset (None) options take the source's default. `cache_dir` enables the on-disk cache.
    """
    accepted = source_options(name)
    options = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"dataset source {name!r} does not take {unknown}; it takes {accepted}")
    preprocess = PreprocessOptions(image_size=image_size, crop_fraction=crop_fraction, channels=channels)
    dataset = DATASET_SOURCES[name](
        options=preprocess, cache_dir=Path(cache_dir) if cache_dir else None, progress=progress, **options
    )
    spec = {"name": name, "image_size": image_size, "crop_fraction": crop_fraction, "channels": channels, **options}
    return replace(dataset, spec=spec)


@dataclass(frozen=True)
class DatasetChoice:
    """A dataset the lab can offer: a label for menus and the arguments for `create_dataset`."""

    label: str
    spec: dict = field(default_factory=dict)


def _looks_like_folder_dataset(folder: Path) -> bool:
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    split_names = set().union(*SPLIT_FOLDER_NAMES.values())
    return any(p.name.lower() in split_names for p in subfolders) or len(subfolders) >= 2


def discover_datasets(settings: Settings) -> list[DatasetChoice]:
    """Synthetic first, then folder datasets and Galaxy10 files found in the data roots and downloads."""
    choices = [DatasetChoice("synthetic (built in, offline)", {"name": "synthetic"})]
    for root in settings.data_roots:
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if _looks_like_folder_dataset(folder):
                defaults = dict(settings.dataset_defaults.get(folder.name, {}))
                choices.append(
                    DatasetChoice(f"{folder.name} (folder)", {"name": "folder", "path": str(folder), **defaults})
                )
    for variant in VARIANTS.values():
        path = find_galaxy10_file(variant.key, _galaxy10_folders(settings))
        if path is not None:
            choices.append(
                DatasetChoice(f"Galaxy10 {variant.key.upper()} ({path.name})", {"name": "galaxy10", "path": str(path)})
            )
    return choices


def _galaxy10_folders(settings: Settings) -> list[Path]:
    """Where Galaxy10 files are looked for: the data roots, then the downloads folder."""
    return [*settings.data_roots, settings.download_dir]


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
    if inside:
        raise DatasetError(f"{text!r} does not exist (looked for {', '.join(map(str, inside))})")
    raise DatasetError(
        f"{text!r} is outside the data roots; datasets must be inside one of: {', '.join(map(str, roots))}"
    )


def spec_from_name(text: str, settings: Settings) -> dict:
    """Arguments for `create_dataset` from a name typed in a terminal.

    "synthetic"; "galaxy10-sdss" or "galaxy10-decals" (looked up in the data roots and downloads); a path
    to a folder (folder dataset) or an .h5 file (Galaxy10); or the name of a folder inside a data root.
    """
    if text == "synthetic":
        return {"name": "synthetic"}
    if text.startswith("galaxy10-") and text.removeprefix("galaxy10-") in VARIANTS:
        variant = VARIANTS[text.removeprefix("galaxy10-")]
        path = find_galaxy10_file(variant.key, _galaxy10_folders(settings))
        if path is not None:
            return {"name": "galaxy10", "path": str(path)}
        raise DatasetError(
            f"{variant.file_name} is in none of the data roots or {settings.download_dir}; "
            f"get it with: galaxy-lab download {variant.key}"
        )
    path = Path(text).expanduser()
    if not path.exists():
        inside = [root / text for root in settings.data_roots if (root / text).exists()]
        if not inside:
            raise DatasetError(
                f"{text!r} is neither 'synthetic', 'galaxy10-sdss', 'galaxy10-decals', an existing path, "
                "nor a folder in a data root"
            )
        path = inside[0]
    if path.is_file():
        return {"name": "galaxy10", "path": str(path.resolve())}
    defaults = dict(settings.dataset_defaults.get(path.resolve().name, {}))
    return {"name": "folder", "path": str(path.resolve()), **defaults}
