"""Lab settings: environment variables, over an optional TOML file, over built-in defaults.

| setting            | environment variable           | default                         |
|--------------------|--------------------------------|---------------------------------|
| data_roots         | GALAXY_LAB_DATA_ROOTS (os.pathsep-separated) | none              |
| cache_dir          | GALAXY_LAB_CACHE_DIR           | $XDG_CACHE_HOME/galaxy-lab      |
| runs_dir           | GALAXY_LAB_RUNS_DIR            | ./runs                          |
| upload_limit_mb    | GALAXY_LAB_UPLOAD_LIMIT_MB     | 50                              |
| upload_unpacked_mb | GALAXY_LAB_UPLOAD_UNPACKED_MB  | 200 (unpacked from archives, per request) |
| upload_megapixels  | GALAXY_LAB_UPLOAD_MEGAPIXELS   | 200 (decoded, per request)      |
| max_concurrent_runs| GALAXY_LAB_MAX_CONCURRENT_RUNS | 1 (training runs at once)       |
| max_light_runs     | GALAXY_LAB_MAX_LIGHT_RUNS      | 2 (runs of seconds at once, beside those) |
| max_queued_runs    | GALAXY_LAB_MAX_QUEUED_RUNS     | 100 (waiting runs; more are refused) |
| max_epochs         | GALAXY_LAB_MAX_EPOCHS          | 200 (all a run trains, from the app or the CLI) |
| dataset_memory_mb  | GALAXY_LAB_DATASET_MEMORY_MB   | 2048 (a dataset's decoded arrays; larger ones are refused) |
| default_dataset    | GALAXY_LAB_DEFAULT_DATASET     | synthetic (what a new session starts on) |
| stop_grace_seconds | GALAXY_LAB_STOP_GRACE_SECONDS  | 30 (silence after a stop before a kill) |
| executor           | GALAXY_LAB_EXECUTOR            | local (worker processes here), or ray |
| ray_address        | GALAXY_LAB_RAY_ADDRESS         | auto (the Ray cluster this machine is in) |
| run_num_cpus       | GALAXY_LAB_RUN_NUM_CPUS        | 1 (CPUs Ray reserves per run)   |
| run_num_gpus       | GALAXY_LAB_RUN_NUM_GPUS        | auto (1 when the cluster has GPUs, else 0) |
| dataset_defaults   | (file only)                    | none                            |
| auth               | GALAXY_LAB_AUTH                | none (one user, the teacher), oidc or roster |
| teachers           | GALAXY_LAB_TEACHERS (commas)   | none (with oidc: the teachers' e-mail addresses) |
| sign_in_domains    | GALAXY_LAB_SIGN_IN_DOMAINS (commas) | any (with oidc: the e-mail domains that may sign in) |
| trust_unverified_email | GALAXY_LAB_TRUST_UNVERIFIED_EMAIL | false (with oidc: an unverified address matches nobody) |
| trusted_proxies    | GALAXY_LAB_TRUSTED_PROXIES (commas) | 127.0.0.1, ::1 (whose X-Forwarded-For names the client) |
| max_waiting_per_student  | GALAXY_LAB_MAX_WAITING_PER_STUDENT  | 2 (a student's queued runs) |
| max_training_per_student | GALAXY_LAB_MAX_TRAINING_PER_STUDENT | 1 (a student's runs training at once) |
| disk_mb_per_student      | GALAXY_LAB_DISK_MB_PER_STUDENT      | 2000 (a student's run folders on disk) |

The settings file is $GALAXY_LAB_SETTINGS, else `galaxy-lab.toml` in the working directory when present.
Relative paths in the file are relative to the file's folder; relative paths in variables, to the working
directory. The file fails closed: a key the lab does not know, in any table, is refused with its line and the
nearest known key (a top-level setting written under a [table] header belongs to that table, TOML's rule, and a
sign-in mode that landed there would otherwise be lost without a word).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from galaxy_core.errors import GalaxyLabError
from galaxy_core.files import typed_path

SETTINGS_FILE_NAME = "galaxy-lab.toml"
ENV_PREFIX = "GALAXY_LAB_"
# Whole-number settings (each >= 1) and their defaults: the limits that keep one user from starving the rest.
LIMITS = {
    "upload_limit_mb": 50,
    "upload_unpacked_mb": 200,
    "upload_megapixels": 200,
    "max_concurrent_runs": 1,
    # Runs of seconds (a new head on a trained run's cached features, an ensemble) train in slots of their own
    # beside max_concurrent_runs: a lesson's thirty heads need not wait behind one another one slot at a time.
    "max_light_runs": 2,
    # A class of 40 with max_waiting_per_student each (80), and the teacher's: a queued run is a folder, not a
    # process, so the global limit guards the disk and the per-student ones guard fairness.
    "max_queued_runs": 100,
    "max_epochs": 200,
    "dataset_memory_mb": 2048,
    "stop_grace_seconds": 30,
    "max_waiting_per_student": 2,
    "max_training_per_student": 1,
    "disk_mb_per_student": 2000,
}
EXECUTORS = ("local", "ray")
# Where runs train and what each asks of a Ray cluster (galaxy_core.training.supervisor).
SERVICE_KEYS = ("executor", "ray_address", "run_num_cpus", "run_num_gpus")
# Who is who (docs/admin.md, "Serving a class"): no sign-in, the school's OpenID Connect provider, or the lab's roster.
AUTH_MODES = ("none", "oidc", "roster")
CLASS_KEYS = ("auth", "teachers", "sign_in_domains", "trust_unverified_email", "trusted_proxies")
# What a [dataset_defaults."<folder>"] table may set: the preprocessing every source shares and the folder source's
# own options but its path (tests/test_settings.py keeps this in step with galaxy_core.data).
DATASET_DEFAULT_KEYS = ("image_size", "crop_fraction", "channels", "val_fraction", "test_fraction", "seed")
# Where a lab without a proxy in front sees its clients from (uvicorn's own default, which Streamlit serves with).
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")
KNOWN_KEYS = {
    "data_roots",
    "cache_dir",
    "runs_dir",
    "default_dataset",
    "dataset_defaults",
    *LIMITS,
    *SERVICE_KEYS,
    *CLASS_KEYS,
}


class SettingsError(GalaxyLabError, ValueError):
    """A settings file or variable holds a value the lab cannot use."""


@dataclass(frozen=True)
class Settings:
    data_roots: tuple[Path, ...] = ()
    cache_dir: Path = field(default_factory=lambda: _default_cache_dir(os.environ))
    runs_dir: Path = Path("runs")
    upload_limit_mb: int = LIMITS["upload_limit_mb"]
    # One request (an upload, a predict command) may unpack this much from archives and decode this many pixels.
    upload_unpacked_mb: int = LIMITS["upload_unpacked_mb"]
    upload_megapixels: int = LIMITS["upload_megapixels"]
    max_concurrent_runs: int = LIMITS["max_concurrent_runs"]
    max_light_runs: int = LIMITS["max_light_runs"]
    max_queued_runs: int = LIMITS["max_queued_runs"]
    max_epochs: int = LIMITS["max_epochs"]
    # The memory one dataset's decoded arrays may take (its peak while it loads): a link, a knob or a run's config
    # asking for more is refused before anything is allocated.
    dataset_memory_mb: int = LIMITS["dataset_memory_mb"]
    stop_grace_seconds: int = LIMITS["stop_grace_seconds"]
    executor: str = "local"
    ray_address: str = "auto"
    run_num_cpus: float = 1.0
    run_num_gpus: float | None = None  # None: one GPU per run when the cluster has GPUs, else none
    # The dataset a new app session starts on, named as on the command line: "synthetic", "galaxy10-sdss", a folder
    # inside a data root ("gz1-3class") or a path.
    default_dataset: str = "synthetic"
    # Default dataset options per folder name, e.g. {"gz1-3class": {"crop_fraction": 0.4}}.
    dataset_defaults: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    auth: str = "none"
    # With auth = "oidc": the e-mail addresses that sign in as teachers, and the e-mail domains that may sign in at
    # all (none: any account the provider vouches for).
    teachers: tuple[str, ...] = ()
    sign_in_domains: tuple[str, ...] = ()
    # With auth = "oidc": whether an e-mail address the provider has not verified (no email_verified claim, or false)
    # may still match a teacher or a sign-in domain. Off: anyone who can set their own address at the provider could
    # otherwise sign in as the teacher.
    trust_unverified_email: bool = False
    # The addresses of reverse proxies whose X-Forwarded-For header names the client (for sign-in throttling); a
    # request from anywhere else is known by the address it comes from.
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    # A student's runs waiting in the queue, and training at once (a teacher's are not limited but by the queue's).
    max_waiting_per_student: int = LIMITS["max_waiting_per_student"]
    max_training_per_student: int = LIMITS["max_training_per_student"]
    # What a student's run folders may take on disk (models, predictions, logs; not the trash): past it, a new run is
    # refused until they move some to the trash.
    disk_mb_per_student: int = LIMITS["disk_mb_per_student"]
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


TABLE_HEADER = re.compile(r"^\s*\[[^\[].*\]\s*(#.*)?$")
KEY_LINE = re.compile(r'^\s*("[^"]*"|[A-Za-z0-9_-]+)\s*=')


def _table_of(header: str) -> tuple[str, ...]:
    """The table a header line opens: [dataset_defaults."gz1-3class"] -> ("dataset_defaults", "gz1-3class")."""
    try:
        nested = tomllib.loads(header.strip())
    except tomllib.TOMLDecodeError:
        return ("?",)
    path = []
    while isinstance(nested, dict) and len(nested) == 1:
        key, nested = next(iter(nested.items()))
        path.append(key)
    return tuple(path)


@dataclass(frozen=True)
class SettingsFile:
    """A settings file's values, and where in it each key was written (for messages that name the line)."""

    path: Path
    text: str
    values: dict

    @classmethod
    def read(cls, path: Path) -> SettingsFile:
        try:
            text = path.read_text(encoding="utf-8")
            values = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise SettingsError(f"cannot read settings file {path.name}: {error}") from error
        return cls(path, text, values)

    def line_of(self, key: str, table: tuple[str, ...] = ()) -> int | None:
        """The line `key` is written on in `table` (() for the top level); None when it is not found there (a
        dotted or inline key)."""
        current: tuple[str, ...] = ()
        for number, line in enumerate(self.text.splitlines(), start=1):
            if TABLE_HEADER.match(line):
                current = _table_of(line)
            elif (match := KEY_LINE.match(line)) and current == table and match[1].strip('"') == key:
                return number
        return None

    def where(self, key: str, table: tuple[str, ...] = ()) -> str:
        line = self.line_of(key, table)
        return f"{self.path.name}, line {line}" if line else f"{key} in {self.path.name}"

    def check_keys(self) -> None:
        """Refuse a key the lab does not know, in any table, naming its line and the nearest known key."""
        for key in self.values:
            if key not in KNOWN_KEYS:
                raise SettingsError(f"{self.where(key)}: {key!r} is not a setting{_nearest(key, KNOWN_KEYS)}")
        defaults = self.values.get("dataset_defaults", {})
        if not isinstance(defaults, dict):
            raise SettingsError(f"{self.where('dataset_defaults')}: dataset_defaults must be a table of tables")
        for folder, options in defaults.items():
            table = ("dataset_defaults", folder)
            if not isinstance(options, dict):
                raise SettingsError(f"{self.where(folder, table[:1])}: [dataset_defaults.{folder!r}] must be a table")
            for key in options:
                if key in DATASET_DEFAULT_KEYS:
                    continue
                misplaced = ""
                if key in KNOWN_KEYS:
                    misplaced = (
                        f". It is a top-level setting, and a line under a [table] header belongs to that table "
                        f"(TOML's rule): write {key} above the file's first [table]"
                    )
                raise SettingsError(
                    f"{self.where(key, table)}: {key!r} is not a dataset option of [dataset_defaults.{folder!r}]"
                    f"{_nearest(key, DATASET_DEFAULT_KEYS) if not misplaced else ''}{misplaced}"
                )


def _nearest(key: str, known) -> str:
    near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(sorted(known))})"


def _path(value: object, name: str, where: object) -> Path:
    try:
        return typed_path(value, f"{name} from {where}")
    except ValueError as error:
        raise SettingsError(str(error)) from None


def _positive_int(name: str, value: object, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise SettingsError(f"{name} from {where} must be a whole number >= 1, got {value!r}")
    return number


def _chosen(keys, file: SettingsFile | None, environ: Mapping[str, str]) -> dict[str, tuple[object, str]]:
    """{key: (value, where it was set)} for those of `keys` set in the file or, over it, by a variable."""
    chosen = {key: (file.values[key], file.where(key)) for key in keys if file and key in file.values}
    chosen.update(
        {
            key: (environ[ENV_PREFIX + key.upper()], ENV_PREFIX + key.upper())
            for key in keys
            if environ.get(ENV_PREFIX + key.upper())
        }
    )
    return chosen


def _service_settings(file: SettingsFile | None, environ: Mapping[str, str]) -> dict:
    """executor, ray_address, run_num_cpus and run_num_gpus from the file, then the variables."""
    chosen = _chosen(SERVICE_KEYS, file, environ)
    result: dict = {}
    if "executor" in chosen:
        value, where = chosen["executor"]
        if value not in EXECUTORS:
            raise SettingsError(f"executor from {where} must be one of {EXECUTORS}, got {value!r}")
        result["executor"] = value
    if "ray_address" in chosen:
        value, where = chosen["ray_address"]
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(f"ray_address from {where} must be 'auto' or host:port, got {value!r}")
        result["ray_address"] = value.strip()
    if "run_num_cpus" in chosen:
        result["run_num_cpus"] = _resource("run_num_cpus", *chosen["run_num_cpus"], minimum_exclusive=True)
    if "run_num_gpus" in chosen and chosen["run_num_gpus"][0] != "auto":
        result["run_num_gpus"] = _resource("run_num_gpus", *chosen["run_num_gpus"], minimum_exclusive=False)
    return result


def _texts(key: str, value: object, where: str) -> tuple[str, ...]:
    """A list of texts from the file, or comma-separated text from a variable."""
    listed = value.split(",") if where.startswith(ENV_PREFIX) and isinstance(value, str) else value
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise SettingsError(f"{key} from {where} must be a list of texts, got {value!r}")
    return tuple(item.strip() for item in listed if item.strip())


def _class_settings(file: SettingsFile | None, environ: Mapping[str, str]) -> dict:
    """Who is who (docs/admin.md, "Serving a class") from the file, then the variables."""
    chosen = _chosen(CLASS_KEYS, file, environ)
    result: dict = {}
    auth, where = chosen.get("auth", ("none", "the built-in default"))
    if auth not in AUTH_MODES:
        raise SettingsError(f"auth from {where} must be one of {AUTH_MODES}, got {auth!r}")
    result["auth"] = auth
    for key in ("teachers", "sign_in_domains"):
        if key in chosen:
            result[key] = tuple(item.casefold().lstrip("@") for item in _texts(key, *chosen[key]))
    if "trusted_proxies" in chosen:
        result["trusted_proxies"] = _texts("trusted_proxies", *chosen["trusted_proxies"])
    if "trust_unverified_email" in chosen:
        value, where = chosen["trust_unverified_email"]
        flags = {True: True, False: False, "true": True, "false": False}
        if not isinstance(value, bool | str) or value not in flags:
            raise SettingsError(f"trust_unverified_email from {where} must be true or false, got {value!r}")
        result["trust_unverified_email"] = flags[value]
    return result


def _resource(name: str, value: object, where: str, *, minimum_exclusive: bool) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not (number > 0 if minimum_exclusive else number >= 0) or number > 1024:
        bound = "a number > 0" if minimum_exclusive else "a number >= 0 (or 'auto')"
        raise SettingsError(f"{name} from {where} must be {bound}, got {value!r}")
    return number


def _folders(file: SettingsFile | None, environ: Mapping[str, str]) -> dict:
    """data_roots, cache_dir and runs_dir: the file's relative to its folder, the variables' to the working one."""
    values, base = (file.values, file.path.resolve().parent) if file else ({}, Path.cwd())
    roots = values.get("data_roots", [])
    if not isinstance(roots, list):
        raise SettingsError(f"data_roots from {file.where('data_roots')} must be a list of folders, got {roots!r}")
    data_roots = [base / _path(p, "data_roots", file.where("data_roots")) for p in roots]
    cache_dir = (
        base / _path(values["cache_dir"], "cache_dir", file.where("cache_dir")) if "cache_dir" in values else None
    )
    runs_dir = base / _path(values.get("runs_dir", "runs"), "runs_dir", file.where("runs_dir") if file else "")
    if environ.get(ENV_PREFIX + "DATA_ROOTS"):
        variable = ENV_PREFIX + "DATA_ROOTS"
        data_roots = [_path(p, "data_roots", variable) for p in environ[variable].split(os.pathsep) if p]
    if environ.get(ENV_PREFIX + "CACHE_DIR"):
        cache_dir = _path(environ[ENV_PREFIX + "CACHE_DIR"], "cache_dir", ENV_PREFIX + "CACHE_DIR")
    if environ.get(ENV_PREFIX + "RUNS_DIR"):
        runs_dir = _path(environ[ENV_PREFIX + "RUNS_DIR"], "runs_dir", ENV_PREFIX + "RUNS_DIR")
    return {
        "data_roots": tuple(p.resolve() for p in data_roots),
        "cache_dir": (cache_dir or _default_cache_dir(environ)).resolve(),
        "runs_dir": runs_dir.resolve(),
    }


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings in force now; raises SettingsError naming the bad value and where it was set."""
    environ = os.environ if environ is None else environ
    file_path = _settings_file(environ)
    file = SettingsFile.read(file_path) if file_path is not None else None
    if file is not None:
        file.check_keys()
    values = file.values if file else {}
    limits = {name: _positive_int(name, values[name], file.where(name)) for name in LIMITS if file and name in values}
    for name in LIMITS:
        variable = ENV_PREFIX + name.upper()
        if environ.get(variable):
            limits[name] = _positive_int(name, environ[variable], variable)
    default_dataset = environ.get(ENV_PREFIX + "DEFAULT_DATASET") or values.get("default_dataset", "synthetic")
    if not isinstance(default_dataset, str) or not default_dataset.strip():
        raise SettingsError(f"default_dataset must name a dataset, got {default_dataset!r}")
    return Settings(
        **_folders(file, environ),
        **_service_settings(file, environ),
        **_class_settings(file, environ),
        **limits,
        default_dataset=default_dataset.strip(),
        dataset_defaults=dict(values.get("dataset_defaults", {})),
        source=str(file_path) if file_path else "built-in defaults",
    )
