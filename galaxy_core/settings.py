"""Lab settings: environment variables, over an optional TOML file, over built-in defaults.

| setting            | environment variable           | default                         |
|--------------------|--------------------------------|---------------------------------|
| data_roots         | GALAXY_LAB_DATA_ROOTS (os.pathsep-separated) | none              |
| cache_dir          | GALAXY_LAB_CACHE_DIR           | $XDG_CACHE_HOME/galaxy-lab      |
| runs_dir           | GALAXY_LAB_RUNS_DIR            | ./runs                          |
| upload_limit_mb    | GALAXY_LAB_UPLOAD_LIMIT_MB     | 50                              |
| max_concurrent_runs| GALAXY_LAB_MAX_CONCURRENT_RUNS | 1 (training runs at once)       |
| max_queued_runs    | GALAXY_LAB_MAX_QUEUED_RUNS     | 20 (waiting runs; more are refused) |
| max_epochs         | GALAXY_LAB_MAX_EPOCHS          | 200 (per run started from the app)  |
| default_dataset    | GALAXY_LAB_DEFAULT_DATASET     | synthetic (what a new session starts on) |
| dataset_defaults   | (file only)                    | none                            |

The settings file is $GALAXY_LAB_SETTINGS, else `galaxy-lab.toml` in the working directory when present.
Relative paths in the file are relative to the file's folder; relative paths in variables, to the working
directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SETTINGS_FILE_NAME = "galaxy-lab.toml"
ENV_PREFIX = "GALAXY_LAB_"
# Whole-number settings (each >= 1) and their defaults: the limits that keep one user from starving the rest.
LIMITS = {"upload_limit_mb": 50, "max_concurrent_runs": 1, "max_queued_runs": 20, "max_epochs": 200}
KNOWN_KEYS = {"data_roots", "cache_dir", "runs_dir", "default_dataset", "dataset_defaults", *LIMITS}


class SettingsError(ValueError):
    """A settings file or variable holds a value the lab cannot use."""


@dataclass(frozen=True)
class Settings:
    data_roots: tuple[Path, ...] = ()
    cache_dir: Path = field(default_factory=lambda: _default_cache_dir(os.environ))
    runs_dir: Path = Path("runs")
    upload_limit_mb: int = LIMITS["upload_limit_mb"]
    max_concurrent_runs: int = LIMITS["max_concurrent_runs"]
    max_queued_runs: int = LIMITS["max_queued_runs"]
    max_epochs: int = LIMITS["max_epochs"]
    # The dataset a new app session starts on, named as on the command line: "synthetic", "galaxy10-sdss", a folder
    # inside a data root ("gz1-3class") or a path.
    default_dataset: str = "synthetic"
    # Default dataset options per folder name, e.g. {"gz1-3class": {"crop_fraction": 0.4}}.
    dataset_defaults: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    source: str = "built-in defaults"

    @property
    def download_dir(self) -> Path:
        return self.cache_dir / "downloads"


def _default_cache_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "galaxy-lab"


def _settings_file(environ: Mapping[str, str]) -> Path | None:
    explicit = environ.get(ENV_PREFIX + "SETTINGS")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SettingsError(f"{ENV_PREFIX}SETTINGS points at {path}, which is not a file")
        return path
    local = Path.cwd() / SETTINGS_FILE_NAME
    return local if local.is_file() else None


def _read_file(path: Path) -> dict:
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"cannot read settings file {path}: {error}") from error
    unknown = set(values) - KNOWN_KEYS
    if unknown:
        raise SettingsError(
            f"settings file {path} has unknown keys {sorted(unknown)}; known keys: {sorted(KNOWN_KEYS)}"
        )
    return values


def _positive_int(name: str, value: object, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise SettingsError(f"{name} from {where} must be a whole number >= 1, got {value!r}")
    return number


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings in force now; raises SettingsError naming the bad value."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    file_path = _settings_file(environ)
    base = Path.cwd()
    if file_path is not None:
        values = _read_file(file_path)
        base = file_path.resolve().parent
    data_roots = [base / Path(p).expanduser() for p in values.get("data_roots", [])]
    cache_dir = base / Path(values["cache_dir"]).expanduser() if "cache_dir" in values else None
    runs_dir = base / Path(values.get("runs_dir", "runs")).expanduser()
    limits = {name: _positive_int(name, values.get(name, default), str(file_path)) for name, default in LIMITS.items()}

    if environ.get(ENV_PREFIX + "DATA_ROOTS"):
        data_roots = [Path(p).expanduser() for p in environ[ENV_PREFIX + "DATA_ROOTS"].split(os.pathsep) if p]
    if environ.get(ENV_PREFIX + "CACHE_DIR"):
        cache_dir = Path(environ[ENV_PREFIX + "CACHE_DIR"]).expanduser()
    if environ.get(ENV_PREFIX + "RUNS_DIR"):
        runs_dir = Path(environ[ENV_PREFIX + "RUNS_DIR"]).expanduser()
    default_dataset = environ.get(ENV_PREFIX + "DEFAULT_DATASET") or values.get("default_dataset", "synthetic")
    if not isinstance(default_dataset, str) or not default_dataset.strip():
        raise SettingsError(f"default_dataset must name a dataset, got {default_dataset!r}")
    for name in LIMITS:
        variable = ENV_PREFIX + name.upper()
        if environ.get(variable):
            limits[name] = _positive_int(name, environ[variable], variable)

    return Settings(
        data_roots=tuple(p.resolve() for p in data_roots),
        cache_dir=(cache_dir or _default_cache_dir(environ)).resolve(),
        runs_dir=runs_dir.resolve(),
        **limits,
        default_dataset=default_dataset.strip(),
        dataset_defaults=dict(values.get("dataset_defaults", {})),
        source=str(file_path) if file_path else "built-in defaults",
    )
