"""Where runs train: the interface the training service drives, and its embedded default, local processes.

An executor starts a run, reports the runs that ended (with the cause when the run could not record one), and
kills a run on request. It never decides what runs next: the supervisor does (galaxy_core.training.supervisor).
The Ray cluster executor is in galaxy_core.training.ray_executor.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from galaxy_core.errors import GalaxyLabError
from galaxy_core.training.lifecycle import Outcome, exit_outcome
from galaxy_core.training.store import Run


class ExecutorUnavailableError(GalaxyLabError, RuntimeError):
    """The executor cannot take runs now (not installed, cluster unreachable, resources it can never have); the
    message says why, for the user. Queued runs wait."""


@dataclass(frozen=True)
class Ended:
    """A run whose execution ended. `outcome`: how it ended as the executor saw it (killed, a lost node, a full
    disk), or how the training returned it; None: the run folder's own outcome says."""

    run_id: str
    outcome: Outcome | None


class Executor(Protocol):
    name: str

    def check(self) -> None:
        """Raise ExecutorUnavailableError when no run could start now."""

    def start(self, run: Run) -> dict:
        """Start training `run`; returns status fields to record (where it runs)."""

    def poll(self) -> list[Ended]:
        """The runs that ended since the last poll."""

    def active(self) -> set[str]:
        """The ids of the runs this executor is running."""

    def kill(self, run_id: str, outcome: Outcome) -> None:
        """End a run at once; it is reported by the next poll with this outcome."""

    def prepare(self) -> None:
        """Get ready for the next run while a slot is free (the local executor starts a worker that waits with
        TensorFlow imported); nothing to do for some executors."""

    def close(self) -> None: ...


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3, the state, first); None without it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (/proc/PID/stat field 22): with the pid, it names one
    process for good, since a pid can be reused but not with the same start time. None without /proc."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_alive(pid: int | None, start_time: int | None) -> bool:
    """Whether the process `pid` that started at `start_time` still runs (a zombie does not)."""
    fields = _stat_fields(pid) if pid is not None and start_time is not None else None
    return bool(fields) and fields[0] != "Z" and int(fields[19]) == start_time


def kill_process(pid: int | None, start_time: int | None) -> None:
    """SIGKILL the process, if it is still the one that started at `start_time`."""
    if process_alive(pid, start_time):
        os.kill(pid, signal.SIGKILL)


@dataclass
class _Worker:
    run: Run
    process: subprocess.Popen
    killed_as: Outcome | None = field(default=None)


class LocalExecutor:
    """Each run in a worker process of its own on this machine (`python -m galaxy_core.training.worker`).

    While a slot is free or runs wait for one, one worker waits on standby (`--standby`) with TensorFlow already
    imported (its start-up's longest part): the next run is handed to it on its standard input, and starts several
    seconds sooner. A standby worker leaves when the service does."""

    name = "local"
    STANDBY_RETRY_SECONDS = 60.0  # after a standby worker ended without a run (a broken install, say)

    def __init__(self, runs_root: Path | None = None) -> None:
        self._workers: dict[str, _Worker] = {}
        self._runs_root = runs_root
        self._standby: subprocess.Popen | None = None
        self._standby_failed_at = -self.STANDBY_RETRY_SECONDS

    def check(self) -> None:
        pass

    def prepare(self) -> None:
        if self._runs_root is None or (self._standby is not None and self._standby.poll() is None):
            return
        if self._standby is not None:  # it ended without a run
            self._standby, self._standby_failed_at = None, time.monotonic()
        if time.monotonic() - self._standby_failed_at < self.STANDBY_RETRY_SECONDS:
            return
        with (self._runs_root / ".standby-worker.out").open("ab") as output:
            self._standby = subprocess.Popen(
                [sys.executable, "-m", "galaxy_core.training.worker", "--standby"],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # once it has a run, it trains on without the service
            )

    def start(self, run: Run) -> dict:
        standby, self._standby = self._standby, None
        if standby is not None and standby.poll() is None:
            try:
                standby.stdin.write(f"{run.path}\n".encode())
                standby.stdin.close()
                process = standby
            except OSError:  # it ended meanwhile: a worker of its own after all
                process = self._spawn(run)
        else:
            process = self._spawn(run)
        self._workers[run.id] = _Worker(run, process)
        return {"node": socket.gethostname(), "pid": process.pid, "pid_start": process_start_time(process.pid)}

    @staticmethod
    def _spawn(run: Run) -> subprocess.Popen:
        with run.worker_output_path.open("ab") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "galaxy_core.training.worker", str(run.path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def poll(self) -> list[Ended]:
        ended = []
        for run_id, worker in list(self._workers.items()):
            code = worker.process.poll()
            if code is None:
                continue
            del self._workers[run_id]
            outcome = worker.killed_as or exit_outcome(code, worker.run.worker_output_tail(1))
            ended.append(Ended(run_id, outcome))
        return ended

    def active(self) -> set[str]:
        return set(self._workers)

    def kill(self, run_id: str, outcome: Outcome) -> None:
        worker = self._workers.get(run_id)
        if worker is not None and worker.process.poll() is None:
            worker.killed_as = outcome
            worker.process.kill()

    def close(self) -> None:
        """Workers go on without the service (a new one adopts them by pid and start time); a standby worker, which
        holds no run, is ended at once (waiting for it to see its input close would wait for its TensorFlow import)."""
        if self._standby is not None and self._standby.poll() is None:
            self._standby.stdin.close()
            self._standby.terminate()
            self._standby.wait(10)
        self._workers.clear()
