"""The run store: it owns every file of a run folder and the runs folder's service files.

    <runs root>/<run id>/
        config.json        what was asked (written once)
        status.json        the state and what is known of the run (rewritten atomically)
        metrics.jsonl      one JSON object per line, append-only, flushed at once
        log.txt            human-readable log, append-only
        heartbeat          its modification time is the worker's last sign of life
        stop-requested     present once someone asked the run to stop
        best.keras, final.keras, evaluation.json, predictions.npz   (each replaced atomically)
        fold-1.keras ... review.npz  a label review's fold models and its out-of-fold probabilities and ranking
        review-decisions.json        what reviewers decided of each doubted label (rewritten atomically, locked)
        tensorboard/       TensorBoard event files
        worker.out         what the worker process printed (local executor)
        .reserve           disk space kept so that the final status can be written on a full disk
    <runs root>/supervisor.json, .scheduler.lock, .supervisor.lock, supervisor.log   (the training service)

Whoever trains a run (a local worker process, or the head's copy of a remote one) writes through `Run`; pages,
the CLI and benchmarks read `RunSummary` records and the readers here. Readers never trust a folder: a malformed
run is skipped with a logged warning, a half-written last metrics line is ignored, fields of the wrong type read as
missing, and run ids are checked before they become paths.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import re
import secrets
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np

from galaxy_core.data import DatasetSpec, check_spec, describe_spec
from galaxy_core.errors import GalaxyLabError, InvalidInputError
from galaxy_core.files import replaced_atomically, write_bytes_atomically, write_json_atomically
from galaxy_core.prediction import ModelLoadError

logger = logging.getLogger(__name__)

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")  # a TensorBoard file or folder name
MODEL_FILES = {"best": "best.keras", "final": "final.keras"}
CHECKPOINTS = tuple(MODEL_FILES)
FOLD_MODEL = re.compile(r"fold-([1-9][0-9]?)")  # a label review's fold model: "fold-1" to "fold-99"
REVIEW_DECISIONS = ("accepted", "rejected")
# Disk space kept for the run's final status, released when the disk is full (a status is under 8 kB).
RESERVE_FILE, RESERVE_BYTES = ".reserve", 16384


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"

    @property
    def active(self) -> bool:
        """Queued or running: the run may still change."""
        return self in (RunState.QUEUED, RunState.RUNNING)


class RunNotFoundError(GalaxyLabError, LookupError):
    """No run with that id in the store (or the id is not a valid run id)."""


def model_file_name(which: str) -> str:
    """The file name of a run's model: "best", "final" or a label review's "fold-N"."""
    if which in MODEL_FILES:
        return MODEL_FILES[which]
    if isinstance(which, str) and FOLD_MODEL.fullmatch(which):
        return f"{which}.keras"
    raise ValueError(f"not a model of a run: {which!r}")


def _read_json(path: Path) -> dict:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} does not hold a JSON object")
    return value


def epoch_records(records: list[dict]) -> list[dict]:
    """The lines of a run's metrics for finished epochs (an epoch cut short by a stop is "partial_epoch")."""
    return [record for record in records if record.get("kind") == "epoch"]


def best_epoch_value(records: list[dict], key: str) -> float | None:
    """The highest `key` over the epochs that report it, or None."""
    return max((record[key] for record in epoch_records(records) if _number(record.get(key)) is not None), default=None)


def _tail(path: Path, lines: int) -> str:
    """The last lines of a text file that has some; "" when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def _number(value) -> float | None:
    """A finite number from a JSON field, else None (a bool, a string or NaN is not a figure)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _whole(value) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number == int(number) else None


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def valid_pid(value) -> int | None:
    """A process id from a status file: a whole number > 1 (0, -1 and 1 would address process groups or init)."""
    pid = _whole(value)
    return pid if pid is not None and pid > 1 else None


def _state_of(status: dict) -> RunState:
    try:
        return RunState(status.get("state"))
    except ValueError:
        raise ValueError(f"status.json has no known state: {status.get('state')!r}") from None


def _checked_config(config: dict) -> tuple[dict, DatasetSpec]:
    """(the config, its dataset spec), if it says what every reader relies on: a dataset spec and a model name;
    else ValueError."""
    problems, spec = [], None
    try:
        spec = check_spec(DatasetSpec.from_dict(config.get("dataset")))
    except ValueError as error:
        problems.append(f"its dataset: {error}")
    if not isinstance(config.get("model"), str):
        problems.append(f"its model is {config.get('model')!r}, not a model name")
    if "epochs" in config and _whole(config["epochs"]) is None:
        problems.append(f"its epochs are {config['epochs']!r}")
    if problems:
        raise ValueError("config.json: " + "; ".join(problems))
    return config, spec


def _planned_epochs(config: dict) -> int | None:
    """The config's epochs; a label review's over all its folds."""
    epochs = _whole(config.get("epochs"))
    folds = _whole(config.get("folds"))
    if config.get("kind") == "label_review" and epochs is not None and folds is not None:
        return epochs * folds
    return epochs


@dataclass(frozen=True)
class RunSummary:
    """What pages, the CLI and benchmarks know of a run: its config and status, typed and checked."""

    run: Run
    config: dict
    dataset: DatasetSpec  # the config's, parsed and checked once
    state: RunState
    message: str  # one line: what is happening, or why and how it ended
    epochs_done: int  # finished epochs
    epochs_planned: int | None
    best_val_balanced_accuracy: float | None
    test_accuracy: float | None
    test_balanced_accuracy: float | None
    test_balanced_accuracy_tta: float | None
    class_names: tuple[str, ...]
    parameters: int | None
    executor: str | None
    node: str | None
    device: str | None
    pid: int | None
    pid_start: int | None
    created: float | None
    dispatched: float | None  # when the training service handed it to an executor
    started: float | None  # when its training procedure began
    finished: float | None
    eta_seconds: float | None
    batches_done: int | None  # in the epoch under way
    steps_per_epoch: int | None
    error: str | None
    traceback: str | None

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def is_label_review(self) -> bool:
        return self.config.get("kind") == "label_review"

    @property
    def has_review(self) -> bool:
        """A label review that finished and kept its ranking of the doubted labels."""
        return self.is_label_review and self.state is RunState.FINISHED and self.run.review_path.is_file()

    @property
    def has_test_results(self) -> bool:
        return self.test_balanced_accuracy is not None

    @property
    def has_model(self) -> bool:
        """The run ended and kept a model (a best checkpoint or a final model) to evaluate or classify with."""
        return not self.state.active and (self.run.best_model_path.is_file() or self.run.final_model_path.is_file())

    def batch_progress(self) -> str:
        """ ", batch 12/40" while an epoch is under way; "" otherwise."""
        if self.state is RunState.RUNNING and self.batches_done and self.steps_per_epoch:
            return f", batch {self.batches_done}/{self.steps_per_epoch}"
        return ""

    @property
    def progress(self) -> float:
        """The share of its planned epochs the run has done, batches of the current epoch included."""
        planned = self.epochs_planned or 1
        within = self.batches_done / self.steps_per_epoch if self.batches_done and self.steps_per_epoch else 0.0
        return min(1.0, (self.epochs_done + within) / planned)

    def table_row(self) -> dict:
        """The run as one row of the runs table (the Train page's and `galaxy-lab runs`)."""
        running = self.state is RunState.RUNNING
        return {
            "run": self.id,
            "state": self.state.value,
            "what happened": self.message,
            "model": f"label review: {self.config.get('folds')} x {self.model}" if self.is_label_review else self.model,
            "dataset": describe_spec(self.dataset) + (" (reviewed labels)" if self.config.get("label_changes") else ""),
            "epochs": f"{self.epochs_done}/{self.epochs_planned or '?'}" + self.batch_progress(),
            "val balanced acc": self.best_val_balanced_accuracy,
            "test balanced acc": self.test_balanced_accuracy,
            "time left": f"{self.eta_seconds / 60:.1f} min" if running and self.eta_seconds is not None else "",
            "where": self.node or "",
        }

    def to_json(self) -> dict:
        """The summary as `galaxy-lab runs --json` prints it."""
        return {
            "id": self.id,
            "state": self.state.value,
            "message": self.message,
            "model": self.model,
            "dataset": self.dataset.path or self.dataset.source,
            "executor": self.executor,
            "node": self.node,
            "device": self.device,
            "epochs_done": self.epochs_done,
            "epochs_planned": self.epochs_planned,
            "best_val_balanced_accuracy": self.best_val_balanced_accuracy,
            "test_accuracy": self.test_accuracy,
            "test_balanced_accuracy": self.test_balanced_accuracy,
            "test_balanced_accuracy_tta": self.test_balanced_accuracy_tta,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
        }


DEFAULT_MESSAGES = {
    RunState.QUEUED: "waiting for a training slot",
    RunState.RUNNING: "training",
    RunState.FINISHED: "finished",
    RunState.FAILED: "failed",
    RunState.STOPPED: "stopped",
    RunState.INTERRUPTED: "interrupted",
}


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
            return self.config().get("kind") == "label_review"
        except (OSError, ValueError):
            return False

    @property
    def evaluation_path(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def review_path(self) -> Path:
        return self.path / "review.npz"

    @property
    def review_decisions_path(self) -> Path:
        return self.path / "review-decisions.json"

    @property
    def predictions_path(self) -> Path:
        return self.path / "predictions.npz"

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
        return _read_json(self.path / "status.json")

    def state(self) -> RunState:
        """The run's state alone (cheaper than its summary); ValueError when the status has none."""
        return _state_of(self.status())

    def summary(self) -> RunSummary:
        """The run's typed summary; raises OSError or ValueError when config or status cannot be read or its
        config lacks what a run must say (its dataset and model)."""
        (config, dataset), status = _checked_config(self.config()), self.status()
        state = _state_of(status)
        epochs_done = _whole(status.get("epochs_done"))
        best_val = _number(status.get("best_val_balanced_accuracy"))
        if epochs_done is None:  # written by an older version of the lab: count from the metrics
            metrics = self.metrics()
            epochs_done, best_val = len(epoch_records(metrics)), best_epoch_value(metrics, "val_balanced_accuracy")
        names = status.get("class_names")
        error = _text(status.get("error"))
        message = _text(status.get("message")) or (f"failed: {error}" if error else DEFAULT_MESSAGES[state])
        return RunSummary(
            run=self,
            config=config,
            dataset=dataset,
            state=state,
            message=message,
            epochs_done=epochs_done,
            epochs_planned=_planned_epochs(config),
            best_val_balanced_accuracy=best_val,
            test_accuracy=_number(status.get("test_accuracy")),
            test_balanced_accuracy=_number(status.get("test_balanced_accuracy")),
            test_balanced_accuracy_tta=_number(status.get("test_balanced_accuracy_tta")),
            class_names=tuple(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else (),
            parameters=_whole(status.get("parameters")),
            executor=_text(status.get("executor")),
            node=_text(status.get("node")),
            device=_text(status.get("device")),
            pid=valid_pid(status.get("pid")),
            pid_start=_whole(status.get("pid_start")),
            created=_number(config.get("created")),
            dispatched=_number(status.get("dispatched")),
            started=_number(status.get("started")),
            finished=_number(status.get("finished")),
            eta_seconds=_number(status.get("eta_seconds")),
            batches_done=_whole(status.get("batches_done")),
            steps_per_epoch=_whole(status.get("steps_per_epoch")),
            error=error,
            traceback=_text(status.get("traceback")),
        )

    def metrics(self) -> list[dict]:
        """Every complete metrics line; a line still being written (or damaged) is left out."""
        return self.read_metrics()[0]

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

    def _arrays(self, path: Path) -> dict[str, np.ndarray] | None:
        """The arrays of one of the run's .npz files; None when there is none or it cannot be read (logged)."""
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
        return self._arrays(self.predictions_path)

    def review(self) -> dict[str, np.ndarray] | None:
        """A label review's arrays (probabilities, labels, source_ids, folds, doubted); None when there are none
        or they cannot be read (logged)."""
        return self._arrays(self.review_path)

    def review_decisions(self) -> dict[str, str]:
        """{source id: "accepted" or "rejected"} for the doubted labels reviewers have decided; damaged entries
        (or a damaged file, logged) read as undecided."""
        try:
            saved = _read_json(self.review_decisions_path)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            logger.warning("run %s: unreadable review-decisions.json: %s", self.id, error)
            return {}
        return {key: value for key, value in saved.items() if value in REVIEW_DECISIONS}

    def record_review_decisions(self, decisions: dict[str, str | None]) -> dict[str, str]:
        """Merge reviewers' decisions ({source id: "accepted", "rejected", or None to undecide}) into the saved
        ones, under a lock so that two reviewers' clicks both count; returns all decisions."""
        bad = sorted({value for value in decisions.values() if value is not None and value not in REVIEW_DECISIONS})
        if bad:
            raise InvalidInputError(f"a review decision is one of {REVIEW_DECISIONS} (or none), not {bad}")
        with (self.path / ".review-decisions.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = {**self.review_decisions(), **decisions}
            merged = {key: value for key, value in merged.items() if value is not None}
            write_json_atomically(self.review_decisions_path, merged)
        return merged

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

    # Writing: the run's worker (or the head's copy of a remote worker), the job manager and the supervisor.

    def set_status(self, state: RunState | str, **fields) -> dict:
        """Merge `fields` into the status. A final state can be written on a full disk: the space it needs is
        kept in reserve from the run's creation."""
        state = RunState(state)
        try:
            previous = self.status()
        except (OSError, ValueError):
            previous = {}
        if previous.get("state") != state.value:
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

    def save_model(self, model, which: str) -> None:
        """Save a Keras model as the run's best checkpoint, final model or a label review's fold model, replacing
        the previous one atomically."""
        with replaced_atomically(self.path / model_file_name(which)) as temporary:
            model.save(temporary)

    def put_model_file(self, which: str, data: bytes) -> None:
        """A model file saved elsewhere (a remote worker), as `save_model` would have written it."""
        write_bytes_atomically(self.path / model_file_name(which), data)

    def save_evaluation(self, summary: dict) -> None:
        write_json_atomically(self.evaluation_path, summary)

    def _save_arrays(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        with replaced_atomically(path) as temporary:
            np.savez(temporary, **arrays)

    def save_predictions(self, **arrays: np.ndarray) -> None:
        self._save_arrays(self.predictions_path, arrays)

    def save_review(self, **arrays: np.ndarray) -> None:
        self._save_arrays(self.review_path, arrays)

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

    @property
    def service_status_path(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def service_log_path(self) -> Path:
        return self.root / "supervisor.log"

    def create(self, config: dict, model_name: str) -> Run:
        """A new run folder with its config and the status "queued"."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run = Run(self.root / f"{stamp}-{model_name}-{secrets.token_hex(2)}")
        run.path.mkdir()
        write_json_atomically(run.path / "config.json", {"created": time.time(), **config})
        (run.path / RESERVE_FILE).write_bytes(bytes(RESERVE_BYTES))
        run.set_status(RunState.QUEUED)
        return run

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

    def runs(self, *, active_only: bool = False) -> list[RunSummary]:
        """Every readable run (or only the queued and running ones), newest first; damaged folders are left out
        (`scan` lists them)."""
        return self.scan(active_only=active_only)[0]

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The scheduler lock: whoever changes which runs are queued or running holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".scheduler.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def acquire_service_lock(self) -> IO | None:
        """The training service's lock, held for the life of the one supervisor of this runs folder; None when
        another process holds it. Closing the handle (or the process ending in any way) releases it."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / ".supervisor.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def service_running(self) -> bool:
        """Whether a supervisor serves this runs folder (none can where its lock file cannot be opened)."""
        try:
            handle = self.acquire_service_lock()
        except OSError:
            return False
        if handle is None:
            return True
        handle.close()
        return False

    def service_status(self) -> dict | None:
        """What the training service last said of itself (see galaxy_core.training.supervisor), or None."""
        try:
            status = _read_json(self.service_status_path)
            status["beat"] = self.service_status_path.stat().st_mtime
        except (OSError, ValueError):
            return None
        return status

    def set_service_status(self, status: dict) -> None:
        write_json_atomically(self.service_status_path, status)

    def beat_service(self) -> None:
        self.service_status_path.touch()

    def log_service(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        try:
            with self.service_log_path.open("a", encoding="utf-8") as file:
                file.write(f"{stamp} {message}\n")
        except OSError as error:  # a full disk must not stop the service
            logger.warning("cannot write %s: %s (%s)", self.service_log_path, error, message)
