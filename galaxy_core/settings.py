"""Lab settings: environment variables, over an optional TOML file, over built-in defaults.

| setting            | environment variable           | default                         |
|--------------------|--------------------------------|---------------------------------|
| data_roots         | GALAXY_LAB_DATA_ROOTS (os.pathsep-separated) | none              |
| cache_dir          | GALAXY_LAB_CACHE_DIR           | $XDG_CACHE_HOME/galaxy-lab      |
| runs_dir           | GALAXY_LAB_RUNS_DIR            | ./runs                          |
| upload_limit_mb    | GALAXY_LAB_UPLOAD_LIMIT_MB     | 50                              |
| max_concurrent_runs| GALAXY_LAB_MAX_CONCURRENT_RUNS | 1 (training runs at once)       |
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
KNOWN_KEYS = {"data_roots", "cache_dir", "runs_dir", "upload_limit_mb", "max_concurrent_runs", "dataset_defaults"}


class SettingsError(ValueError):
    """A settings file or variable holds a value the lab cannot use."""


@dataclass(frozen=True)
class Settings:
    data_roots: tuple[Path, ...] = ()
    cache_dir: Path = field(default_factory=lambda: _default_cache_dir(os.environ))
    runs_dir: Path = Path("runs")
    upload_limit_mb: int = 50
    max_concurrent_runs: int = 1
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
    upload_limit = _positive_int("upload_limit_mb", values.get("upload_limit_mb", 50), str(file_path))
    concurrent = _positive_int("max_concurrent_runs", values.get("max_concurrent_runs", 1), str(file_path))

    if environ.get(ENV_PREFIX + "DATA_ROOTS"):
        data_roots = [Path(p).expanduser() for p in environ[ENV_PREFIX + "DATA_ROOTS"].split(os.pathsep) if p]
    if environ.get(ENV_PREFIX + "CACHE_DIR"):
        cache_dir = Path(environ[ENV_PREFIX + "CACHE_DIR"]).expanduser()
    if environ.get(ENV_PREFIX + "RUNS_DIR"):
        runs_dir = Path(environ[ENV_PREFIX + "RUNS_DIR"]).expanduser()
    if environ.get(ENV_PREFIX + "UPLOAD_LIMIT_MB"):
        upload_limit = _positive_int(
            "upload_limit_mb", environ[ENV_PREFIX + "UPLOAD_LIMIT_MB"], ENV_PREFIX + "UPLOAD_LIMIT_MB"
        )
    if environ.get(ENV_PREFIX + "MAX_CONCURRENT_RUNS"):
        concurrent = _positive_int(
            "max_concurrent_runs", environ[ENV_PREFIX + "MAX_CONCURRENT_RUNS"], ENV_PREFIX + "MAX_CONCURRENT_RUNS"
        )

    return Settings(
        data_roots=tuple(p.resolve() for p in data_roots),
        cache_dir=(cache_dir or _default_cache_dir(environ)).resolve(),
        runs_dir=runs_dir.resolve(),
        upload_limit_mb=upload_limit,
        max_concurrent_runs=concurrent,
        dataset_defaults=dict(values.get("dataset_defaults", {})),
        source=str(file_path) if file_path else "built-in defaults",
    )
