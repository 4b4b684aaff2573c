"""The run store: one folder per training run, written by its worker process and read by everyone else.

    <runs root>/<run id>/
        config.json        what was asked (written once)
        status.json        queued | running | finished | failed | stopped | interrupted (rewritten atomically)
        metrics.jsonl      one JSON object per line, append-only, flushed at once
        log.txt            human-readable log, append-only
        stop-requested     present once someone asked the run to stop
        best.keras, final.keras, evaluation.json, predictions.npz, tensorboard/

Readers never trust a folder: a malformed run is skipped with a logged warning, a half-written last metrics line
is ignored, and run ids are checked before they become paths.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)

STATES = ("queued", "running", "finished", "failed", "stopped", "interrupted")
ACTIVE_STATES = ("queued", "running")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


class RunNotFoundError(LookupError):
    """No run with that id in the store (or the id is not a valid run id)."""


def _write_json_atomically(path: Path, value: dict) -> None:
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(value, file, indent=2)
        Path(temp_name).replace(path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} does not hold a JSON object")
    return value


def epoch_records(records: list[dict]) -> list[dict]:
    """The per-epoch lines of a run's metrics."""
    return [record for record in records if record.get("kind") == "epoch"]


def best_epoch_value(records: list[dict], key: str) -> float | None:
    """The highest `key` over the epochs that report it, or None."""
    return max((record[key] for record in epoch_records(records) if key in record), default=None)


@dataclass(frozen=True)
class Run:
    """A run folder. All writes come from its worker, except the stop request and the final state of a run
    that never started or whose worker vanished."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def best_model_path(self) -> Path:
        return self.path / "best.keras"

    @property
    def final_model_path(self) -> Path:
        return self.path / "final.keras"

    @property
    def evaluation_path(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def predictions_path(self) -> Path:
        return self.path / "predictions.npz"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    def config(self) -> dict:
        return _read_json(self.path / "config.json")

    def status(self) -> dict:
        return _read_json(self.path / "status.json")

    def set_status(self, state: str, **fields) -> dict:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        try:
            previous = self.status()
        except (OSError, ValueError):
            previous = {}
        status = {**previous, **fields, "state": state, "updated": time.time()}
        _write_json_atomically(self.path / "status.json", status)
        return status

    def append_metrics(self, record: dict) -> None:
        line = json.dumps({"time": time.time(), **record}) + "\n"
        with (self.path / "metrics.jsonl").open("a", encoding="utf-8") as file:
            file.write(line)
            file.flush()

    def metrics(self) -> list[dict]:
        """Every complete metrics line; a line still being written (or damaged) is left out."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with (self.path / "log.txt").open("a", encoding="utf-8") as file:
            file.write(f"{stamp} {message}\n")
            file.flush()

    def log_tail(self, lines: int = 30) -> str:
        path = self.path / "log.txt"
        return (
            "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]) if path.exists() else ""
        )

    def request_stop(self) -> None:
        (self.path / "stop-requested").write_text(str(time.time()))

    def stop_requested_at(self) -> float | None:
        marker = self.path / "stop-requested"
        try:
            return float(marker.read_text() or 0)
        except (OSError, ValueError):
            return None

    def evaluation(self) -> dict | None:
        return _read_json(self.evaluation_path) if self.evaluation_path.exists() else None


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def create(self, config: dict, model_name: str) -> Run:
        """A new run folder with its config and the status "queued"."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run = Run(self.root / f"{stamp}-{model_name}-{secrets.token_hex(2)}")
        run.path.mkdir()
        _write_json_atomically(run.path / "config.json", {"created": time.time(), **config})
        run.set_status("queued")
        return run

    def get(self, run_id: str) -> Run:
        if not RUN_ID.match(run_id or "") or ".." in run_id:
            raise RunNotFoundError(f"{run_id!r} is not a run id (letters, digits, '-', '_' and '.')")
        path = self.root / run_id
        if not (path / "status.json").is_file():
            raise RunNotFoundError(f"no run {run_id!r} in {self.root}")
        return Run(path)

    def runs(self) -> list[tuple[Run, dict, dict]]:
        """(run, config, status) for every readable run, newest first; unreadable folders are skipped."""
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.iterdir(), reverse=True):
            if not path.is_dir() or not RUN_ID.match(path.name):
                continue
            run = Run(path)
            try:
                found.append((run, run.config(), run.status()))
            except (OSError, ValueError) as error:
                logger.warning("skipping run folder %s: %s", path, error)
        return found
