"""The training service's own files beside the runs, and how it is started.

    <runs root>/supervisor.json   what the service last said of itself (touched every pass: its heartbeat)
    <runs root>/supervisor.log    what it did, a line each
    <runs root>/.scheduler.lock   held by whoever changes which runs are queued or running
    <runs root>/.supervisor.lock  held for the life of the runs folder's one supervisor

The supervisor itself is galaxy_core.training.supervisor, started as a process of its own (`ensure_supervisor`)
by whoever queues or stops a run or looks at the runs: a page, the CLI, `galaxy-lab serve`. Never by a worker: a
child does not restart its parent. It leaves by itself once idle, or when `galaxy-lab serve` ends
(`end_supervisor`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from galaxy_core.files import write_json_atomically
from galaxy_core.training.records import valid_pid

logger = logging.getLogger(__name__)


class ServiceFiles:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def status_path(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def log_path(self) -> Path:
        return self.root / "supervisor.log"

    @contextmanager
    def scheduler_lock(self) -> Iterator[None]:
        """Whoever changes which runs are queued or running holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".scheduler.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def acquire_service_lock(self) -> IO | None:
        """The lock held for the life of the one supervisor of this runs folder; None when another process holds
        it. Closing the handle (or the process ending in any way) releases it."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / ".supervisor.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def running(self) -> bool:
        """Whether a supervisor serves this runs folder (none can where its lock file cannot be opened)."""
        try:
            handle = self.acquire_service_lock()
        except OSError:
            return False
        if handle is None:
            return True
        handle.close()
        return False

    def status(self) -> dict | None:
        """What the service last said of itself, with "beat": the time of its last pass; None without one."""
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
            status["beat"] = self.status_path.stat().st_mtime
        except (OSError, ValueError, TypeError):
            return None
        return status if isinstance(status, dict) else None

    def publish(self, status: dict) -> None:
        write_json_atomically(self.status_path, status)

    def beat(self) -> None:
        self.status_path.touch()

    def log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        try:
            with self.log_path.open("a", encoding="utf-8") as file:
                file.write(f"{stamp} {message}\n")
        except OSError as error:  # a full disk must not stop the service
            logger.warning("cannot write %s: %s (%s)", self.log_path, error, message)


_spawned: list[subprocess.Popen] = []
_spawned_lock = threading.Lock()  # a server's sessions call ensure_supervisor from their own threads at once


def _reap_spawned() -> None:
    """Forget the services this process started that have exited (reaped: none lingers as a zombie)."""
    with _spawned_lock:
        _spawned[:] = [process for process in _spawned if process.poll() is None]


def ensure_supervisor(runs_root: str | Path) -> bool:
    """Start the training service of `runs_root` unless it runs already; True when this call started it. Never
    raises: a runs folder that cannot be written is reported where runs are queued."""
    _reap_spawned()
    files = ServiceFiles(runs_root)
    try:
        if files.running():
            return False
        with files.log_path.open("ab") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "galaxy_core.training.supervisor", str(files.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with _spawned_lock:
            _spawned.append(service)
    except OSError as error:
        logger.warning("cannot start the training service for %s: %s", runs_root, error)
        return False
    return True


def end_supervisor(runs_root: str | Path, timeout: float = 30.0) -> bool:
    """Ask the training service of `runs_root`, if one runs on this machine, to end (SIGTERM: it closes its standby
    worker and leaves; a run still training goes on in its own process, for the next service to adopt). Whether no
    service serves the folder afterwards."""
    files = ServiceFiles(runs_root)
    if not files.root.is_dir():
        return True  # no runs folder (deleted, say): nothing serves it, and asking must not make one
    status = files.status() or {}
    pid = valid_pid(status.get("pid"))
    if files.running() and pid and status.get("host") == socket.gethostname():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while files.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in spawned_services():  # one this process started: reaped, not left a zombie
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    _reap_spawned()
    return not files.running()


def spawned_services() -> list[subprocess.Popen]:
    """The services this process started (tests end them)."""
    with _spawned_lock:
        return list(_spawned)
