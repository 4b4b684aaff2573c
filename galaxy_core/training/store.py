"""The run store: it owns every file of a run folder.

    <runs root>/<run id>/
        config.json        what was asked (written once)
        status.json        the run's state and what was recorded with it (rewritten atomically, through
                           `Run.move_to`, which checks the move; who moves a run: galaxy_core.training.lifecycle)
        progress.json      what the training reported while it trained (rewritten atomically; only the training)
        outcome.json       how the training says the run ended, for the service to record
        metrics.jsonl      one JSON object per line, append-only, flushed at once
        log.txt            human-readable log, append-only
        heartbeat          its modification time is the worker's last sign of life
        stop-requested     present once someone asked the run to stop
        best.keras, final.keras, fold-N.keras   models (each replaced atomically)
        base.keras         the model a run starts from (a transfer run's base), copied in when it is queued
        evaluation.json, predictions.npz        the test evaluation
        review.npz, review-decisions.json       a label review's (galaxy_core.answers.review says what they hold)
        tensorboard/       TensorBoard event files
        worker.out         what the worker process printed (local executor)
        .reserve           disk space kept so that the final status can be written on a full disk

Whoever trains a run (a local worker process, or the head's copy of a remote one) writes through `Run`; pages,
the CLI and benchmarks read `RunSummary` records (galaxy_core.training.records) and the readers here. Readers
never trust a folder: a malformed run is skipped with a logged warning, a half-written last metrics line is
ignored, fields of the wrong type read as missing, and run ids are checked before they become paths. The training
service's own files beside the runs are galaxy_core.training.service's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import numpy as np

from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.errors import GalaxyLabError, InvalidInputError
from galaxy_core.files import replaced_atomically, write_bytes_atomically, write_json_atomically
from galaxy_core.training.config import DEFAULT_KIND
from galaxy_core.training.lifecycle import Outcome, RunState, check_transition
from galaxy_core.training.records import KIND_TRAITS, PLAIN_TRAITS, RunSummary, merged_status, state_of

logger = logging.getLogger(__name__)

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")  # a file or folder name written from elsewhere
MODEL_FILES = {"best": "best.keras", "final": "final.keras"}
CHECKPOINTS = tuple(MODEL_FILES)
# Models a run starts from, copied in when it is queued: a transfer run's "base", an ensemble's "member-1", ...
INPUT_MODEL = re.compile(r"base|member-([1-9][0-9]?)")
FOLD_MODEL = re.compile(r"fold-([1-9][0-9]?)")  # a label review's fold model: "fold-1" to "fold-99"
ARRAY_FILES = ("predictions", "review", "members")  # <name>.npz
# The store's own files, which no caller may write under another name.
OWN_FILES = ("config.json", "status.json", "progress.json", "outcome.json", "evaluation.json", "title.json")
MAX_TITLE = 80
TRASH = ".trash"  # <runs root>/.trash/<run id>: deleted runs, restorable until the trash is emptied
# Disk space kept for the run's final status, released when the disk is full (a status is under 8 kB).
RESERVE_FILE, RESERVE_BYTES = ".reserve", 16384


class RunNotFoundError(GalaxyLabError, LookupError):
    """No run with that id in the store (or the id is not a valid run id)."""


def model_file_name(which: str) -> str:
    """The file name of a run's model: "best", "final" or a label review's "fold-N"."""
    if which in MODEL_FILES:
        return MODEL_FILES[which]
    if isinstance(which, str) and FOLD_MODEL.fullmatch(which):
        return f"{which}.keras"
    raise ValueError(f"not a model of a run: {which!r}")


def member_model_name(number: int) -> str:
    """The input model of an ensemble's member `number` (from 1)."""
    return f"member-{number}"


def input_model_file(which: str) -> str:
    """The file name of a model a run starts from: "base" or "member-N"."""
    if not isinstance(which, str) or not INPUT_MODEL.fullmatch(which):
        raise ValueError(f"not a model a run starts from: {which!r} (base, member-1, member-2, ...)")
    return f"{which}.keras"


def _array_file(name: str) -> str:
    if name not in ARRAY_FILES:
        raise ValueError(f"not an array file of a run: {name!r} (one of {ARRAY_FILES})")
    return f"{name}.npz"


def _json_file(name: str) -> str:
    if not FILE_NAME.fullmatch(name) or not name.endswith(".json") or name in OWN_FILES:
        raise ValueError(f"not a JSON file a caller may keep in a run folder: {name!r}")
    return name


def _read_json(path: Path) -> dict:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} does not hold a JSON object")
    return value


def _tail(path: Path, lines: int) -> str:
    """The last lines of a text file that has some; "" when it cannot be read."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in content.splitlines() if line.strip()][-lines:])


@dataclass(frozen=True)
class Run:
    """A run folder, read and written only through these methods."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def best_model_path(self) -> Path:
        return self.path / MODEL_FILES["best"]

    @property
    def final_model_path(self) -> Path:
        return self.path / MODEL_FILES["final"]

    def input_model_path(self, which: str) -> Path:
        """Where the model the run starts from ("base", "member-1", ...) is kept."""
        return self.path / input_model_file(which)

    def input_models(self) -> dict[str, Path]:
        """The models the run starts from that it holds ({"base": its path}, {"member-1": ..., ...})."""
        found = {path.stem: path for path in self.path.glob("*.keras") if INPUT_MODEL.fullmatch(path.stem)}
        return {which: found[which] for which in sorted(found, key=lambda name: (len(name), name))}

    def checkpoints(self) -> list[str]:
        """The models the run kept, of "best" and "final"."""
        return [checkpoint for checkpoint, name in MODEL_FILES.items() if (self.path / name).is_file()]

    def model_path(self, checkpoint: str = "best") -> Path:
        """The run's best checkpoint (its final model when it kept no checkpoint), its final model, or a label
        review's model of one fold ("fold-1", ...); raises ModelLoadError saying why when the run kept none."""
        fold = FOLD_MODEL.fullmatch(checkpoint) if isinstance(checkpoint, str) else None
        if fold:
            path = self.path / model_file_name(checkpoint)
            if not path.is_file():
                raise ModelLoadError(f"run {self.id} has no model of fold {fold.group(1)}")
            return path
        if checkpoint not in CHECKPOINTS:
            raise InvalidInputError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
        path = self.path / MODEL_FILES[checkpoint]
        if checkpoint == "best" and not path.is_file():
            path = self.final_model_path
        if path.is_file():
            return path
        if self._is_label_review():
            raise ModelLoadError(
                f"run {self.id} is a label review: its models (one per fold) are for its Label review page, not "
                "for evaluating or classifying"
            )
        if checkpoint == "best":
            raise ModelLoadError(f"run {self.id} kept no model: it ended before its first epoch did")
        raise ModelLoadError(f"run {self.id} has no final model: it did not reach its last epoch; use its best one")

    def _is_label_review(self) -> bool:
        try:
            return KIND_TRAITS.get(self.config().get("kind", DEFAULT_KIND), PLAIN_TRAITS).reviews_labels
        except (OSError, ValueError, AttributeError):
            return False

    @property
    def evaluation_path(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def predictions_path(self) -> Path:
        return self.array_path("predictions")

    def array_path(self, name: str) -> Path:
        return self.path / _array_file(name)

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def worker_output_path(self) -> Path:
        return self.path / "worker.out"

    # Reading.

    def exists(self) -> bool:
        """Whether this is still a run: a deleted folder may come back half (TensorFlow recreates its log folder)."""
        return (self.path / "status.json").is_file()

    def config(self) -> dict:
        return _read_json(self.path / "config.json")

    def status(self) -> dict:
        """What the training service recorded (the state among it)."""
        return _read_json(self.path / "status.json")

    def progress(self) -> dict:
        """What the training reported so far; {} before it has reported anything, or when it cannot be read."""
        try:
            return _read_json(self.path / "progress.json")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            logger.warning("run %s: unreadable progress.json: %s", self.id, error)
            return {}

    def state(self) -> RunState:
        """The run's state alone (cheaper than its summary); ValueError when the status has none."""
        return state_of(self.status())

    def summary(self) -> RunSummary:
        """The run's typed summary; raises OSError or ValueError when config or status cannot be read or its
        config lacks what a run must say (its dataset and model)."""
        config, status = self.config(), self.status()
        return RunSummary.read(self, config, merged_status(status, self.progress()), self.title())

    def title(self) -> str:
        """Its owner's title for it; "" without one (or when it cannot be read)."""
        try:
            value = _read_json(self.path / "title.json").get("title")
        except (OSError, ValueError):
            return ""
        return value if isinstance(value, str) else ""

    def disk_bytes(self) -> int:
        """What the run folder takes on disk (its models, mostly)."""
        total = 0
        for folder, _, names in os.walk(self.path):
            for name in names:
                with contextlib.suppress(OSError):
                    total += (Path(folder) / name).lstat().st_size
        return total

    def outcome(self) -> Outcome | None:
        """How the training says the run ended; None before it has, or when that cannot be read (logged)."""
        try:
            return Outcome.from_dict(_read_json(self.path / "outcome.json"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as error:
            logger.warning("run %s: unreadable outcome.json: %s", self.id, error)
            return None

    def metrics(self) -> list[dict]:
        """Every complete metrics line; a line still being written (or damaged) is left out."""
        return self.read_metrics()[0]

    def metrics_version(self) -> tuple[int, int] | None:
        """(size, modification time in ns) of the metrics file, None before its first line: what a cache of the
        metrics is keyed by."""
        try:
            stat = (self.path / "metrics.jsonl").stat()
        except OSError:
            return None
        return stat.st_size, stat.st_mtime_ns

    def read_metrics(self, offset: int = 0) -> tuple[list[dict], int]:
        """The complete metrics lines from byte `offset` on, and the offset after the last of them (to follow a
        run without reading its metrics again)."""
        try:
            with (self.path / "metrics.jsonl").open("rb") as file:
                file.seek(offset)
                data = file.read()
        except OSError:
            return [], offset
        complete = data[: data.rfind(b"\n") + 1]
        records = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records, offset + len(complete)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.path / "log.txt", lines)

    def worker_output_tail(self, lines: int = 5) -> str:
        return _tail(self.worker_output_path, lines)

    def evaluation(self) -> dict | None:
        """The saved test evaluation; None when there is none or it cannot be read (logged)."""
        if not self.evaluation_path.is_file():
            return None
        try:
            return _read_json(self.evaluation_path)
        except (OSError, ValueError) as error:
            logger.warning("run %s: unreadable evaluation.json: %s", self.id, error)
            return None

    def arrays(self, name: str) -> dict[str, np.ndarray] | None:
        """The arrays of one of the run's .npz files ("predictions", "review"); None when there are none or they
        cannot be read (logged)."""
        path = self.array_path(name)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                return {key: saved[key] for key in saved.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            logger.warning("run %s: unreadable %s: %s", self.id, path.name, error)
            return None

    def predictions(self) -> dict[str, np.ndarray] | None:
        """The saved test predictions (probabilities, tta_probabilities, labels, source_ids); None when there are
        none or they cannot be read (logged)."""
        return self.arrays("predictions")

    def json_file(self, name: str) -> dict:
        """A JSON object another module keeps in the run folder (e.g. "review-decisions.json"); {} when there is
        none, or when it cannot be read (logged)."""
        try:
            return _read_json(self.path / _json_file(name))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            logger.warning("run %s: unreadable %s: %s", self.id, name, error)
            return {}

    def heartbeat_at(self) -> float | None:
        try:
            return (self.path / "heartbeat").stat().st_mtime
        except OSError:
            return None

    def stop_requested_at(self) -> float | None:
        try:
            return float((self.path / "stop-requested").read_text() or 0)
        except (OSError, ValueError):
            return None

    def stop_requested(self) -> bool:
        return self.stop_requested_at() is not None

    # Writing. The training service moves the run between states; the training reports progress and its outcome.

    def move_to(self, state: RunState | str, **fields) -> dict:
        """The one way to change a run's state (IllegalTransitionError for a move its life does not allow; the
        training service's moves and an asker's, galaxy_core.training.lifecycle), recording `fields` with it. A
        final state can be written on a full disk: the space it needs is kept in reserve from the run's creation."""
        state = RunState(state)
        previous = self.status()
        check_transition(state_of(previous), state)
        previous.pop("message", None)  # a message describes the state it was written with
        status = {**previous, **fields, "state": state.value, "updated": time.time()}
        try:
            write_json_atomically(self.path / "status.json", status)
        except OSError as error:
            reserve = self.path / RESERVE_FILE
            if error.errno != errno.ENOSPC or state.active or not reserve.is_file():
                raise
            reserve.unlink()
            write_json_atomically(self.path / "status.json", status)
        return status

    def report_progress(self, **fields) -> None:
        """Merge what the training reports (its stage, epochs and batches done, time left, ...) into its progress."""
        write_json_atomically(self.path / "progress.json", {**self.progress(), **fields, "updated": time.time()})

    def set_title(self, title: str, by: str) -> str:
        """Replace the run's title (control characters dropped, at most MAX_TITLE characters); returns it."""
        kept = "".join(c for c in title if c.isprintable()).strip()[:MAX_TITLE]
        write_json_atomically(self.path / "title.json", {"title": kept, "by": by, "at": time.time()})
        return kept

    def save_outcome(self, outcome: Outcome) -> None:
        write_json_atomically(self.path / "outcome.json", outcome.to_dict())

    def append_metrics(self, record: dict) -> None:
        line = json.dumps({"time": time.time(), **record}) + "\n"
        with (self.path / "metrics.jsonl").open("a", encoding="utf-8") as file:
            file.write(line)
            file.flush()

    def log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with (self.path / "log.txt").open("a", encoding="utf-8") as file:
            file.write(f"{stamp} {message}\n")
            file.flush()

    def save_model(self, model, which: str, *also: str) -> None:
        """Save a Keras model as the run's best checkpoint, final model or a label review's fold model, replacing
        the previous one atomically; `also`: the same model under other names too (saved once, then copied)."""
        path = self.path / model_file_name(which)
        with replaced_atomically(path) as temporary:
            model.save(temporary)
        for other in also:
            with replaced_atomically(self.path / model_file_name(other)) as temporary:
                shutil.copyfile(path, temporary)

    def put_model_file(self, which: str, data: bytes) -> None:
        """A model file saved elsewhere (a remote worker), as `save_model` would have written it."""
        write_bytes_atomically(self.path / model_file_name(which), data)

    def copy_in_model(self, which: str, source: Path) -> None:
        """A model the run starts from ("base", "member-1", ...), copied from another run's folder."""
        with replaced_atomically(self.input_model_path(which)) as temporary:
            shutil.copyfile(source, temporary)

    def save_evaluation(self, summary: dict) -> None:
        write_json_atomically(self.evaluation_path, summary)

    def save_arrays(self, name: str, **arrays: np.ndarray) -> None:
        """One of the run's .npz files ("predictions", "review"), replaced atomically."""
        with replaced_atomically(self.array_path(name)) as temporary:
            np.savez(temporary, **arrays)

    def update_json_file(self, name: str, change: Callable[[dict], dict]) -> dict:
        """Rewrite a JSON object another module keeps in the run folder with `change(current)`, under a lock, so
        that two writers at once both count; returns what was written."""
        with (self.path / f".{_json_file(name)}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            value = change(self.json_file(name))
            write_json_atomically(self.path / name, value)
        return value

    def append_tensorboard(self, relative: str, offset: int, data: bytes) -> None:
        """Bytes of a TensorBoard event file written elsewhere (a remote worker), at their offset in it."""
        parts = PurePosixPath(relative).parts
        if not parts or any(not FILE_NAME.fullmatch(part) or ".." in part for part in parts):
            raise ValueError(f"not a TensorBoard file name: {relative!r}")
        path = self.tensorboard_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("r+b" if path.exists() else "wb") as file:
            file.seek(offset)
            file.write(data)

    def beat(self) -> None:
        """A sign of life from the worker (a touch: it needs no free disk space once the file exists)."""
        (self.path / "heartbeat").touch()

    def request_stop(self) -> None:
        (self.path / "stop-requested").write_text(str(time.time()))


@dataclass(frozen=True)
class DamagedRun:
    """A run folder that cannot be read: listed with its reason, never in the way of the other runs."""

    id: str
    reason: str


def _reason(error: BaseException) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"a file is not valid JSON ({error.msg} at line {error.lineno})"
    if isinstance(error, OSError):
        return f"{Path(error.filename).name if error.filename else 'a file'}: {error.strerror or error}"
    return str(error)


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def create(self, config: dict, *, name: str, planned_epochs: int, owner: dict | None = None) -> Run:
        """A new run folder with its config and the status "queued" (with the epochs it plans to train: counted
        once, here, for every reader). `owner`: {"owner", "owner_name", "owner_role"}, kept with the config."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run = self._new_folder(f"{stamp}-{name}")  # its name taken, empty
        # Filled beside it under a name no reader lists, then renamed over it (rename replaces an empty folder):
        # a page that lists the runs meanwhile sees no half-made run, which it would call damaged.
        filling = self.root / f".new-{run.id}"
        try:
            filling.mkdir()
            write_json_atomically(filling / "config.json", {"created": time.time(), **(owner or {}), **config})
            (filling / RESERVE_FILE).write_bytes(bytes(RESERVE_BYTES))
            status = {"state": RunState.QUEUED.value, "epochs_planned": planned_epochs, "updated": time.time()}
            write_json_atomically(filling / "status.json", status)
            filling.rename(run.path)
        except BaseException:
            shutil.rmtree(filling, ignore_errors=True)
            self.discard(run)
            raise
        return run

    def _new_folder(self, prefix: str) -> Run:
        """A folder of its own: the random tag is short, so a tag already taken in the same second is drawn again."""
        for _ in range(100):
            run = Run(self.root / f"{prefix}-{secrets.token_hex(2)}")
            try:
                run.path.mkdir()
                return run
            except FileExistsError:
                continue
        raise FileExistsError(f"no free run id for {prefix} in {self.root}")

    def discard(self, run: Run) -> None:
        """Remove a run folder that never became a run (its queueing failed half-way), not to the trash."""
        shutil.rmtree(run.path, ignore_errors=True)

    def get(self, run_id: str) -> Run:
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
            raise RunNotFoundError(f"{run_id!r} is not a run id (letters, digits, '-', '_' and '.')")
        run = Run(self.root / run_id)
        if not run.exists():
            raise RunNotFoundError(f"no run {run_id!r} in {self.root}")
        return run

    def run_ids(self) -> list[str]:
        """The ids of the folders that look like runs, newest first."""
        try:
            entries = list(self.root.iterdir())
        except OSError:
            return []
        return sorted((p.name for p in entries if RUN_ID.fullmatch(p.name) and p.is_dir()), reverse=True)

    def scan(self, *, active_only: bool = False) -> tuple[list[RunSummary], list[DamagedRun]]:
        """(every readable run, newest first; the run folders that cannot be read, with why). `active_only`:
        only queued and running runs (and no damaged ones). Folders that are no run at all are left out."""
        found, damaged = [], []
        for run_id in self.run_ids():
            run = Run(self.root / run_id)
            if not (run.exists() or (run.path / "config.json").exists()):
                continue
            try:
                if active_only and not run.state().active:
                    continue
                found.append(run.summary())
            except (OSError, ValueError, TypeError) as error:
                if not active_only:
                    logger.warning("damaged run folder %s: %s", run.path, error)
                    damaged.append(DamagedRun(run_id, _reason(error)))
        # Ids order runs by the second they were created in; the creation time orders runs of the same second.
        found.sort(key=lambda summary: (summary.created or 0.0, summary.id), reverse=True)
        return found, damaged

    @property
    def trash_dir(self) -> Path:
        return self.root / TRASH

    def trash(self, run: Run) -> None:
        """Move a run folder to the trash (restorable until the trash is emptied)."""
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        run.path.rename(self.trash_dir / run.id)

    def trashed(self) -> RunStore:
        """The trash, read as a store of its own."""
        return RunStore(self.trash_dir)

    def restore(self, run_id: str) -> Run:
        """Bring a run back from the trash; RunNotFoundError when it is not there, FileExistsError when a folder of
        its name is in the way."""
        run = self.trashed().get(run_id)
        target = self.root / run_id
        if target.exists():
            raise FileExistsError(f"a folder named {run_id} is already in {self.root}")
        run.path.rename(target)
        return Run(target)

    def empty_trash(self) -> int:
        """Delete every run in the trash for good; returns how many."""
        gone = 0
        for run_id in self.trashed().run_ids():
            shutil.rmtree(self.trash_dir / run_id, ignore_errors=True)
            gone += 1
        return gone

    def runs(self, *, active_only: bool = False) -> list[RunSummary]:
        """Every readable run (or only the queued and running ones), newest first; damaged folders are left out
        (`scan` lists them)."""
        return self.scan(active_only=active_only)[0]
