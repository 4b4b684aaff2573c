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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from galaxy_core.errors import GalaxyLabError
from galaxy_core.training.store import Run, RunState
from galaxy_core.training.worker import EXIT_FOLDER_GONE, EXIT_NO_SPACE, EXIT_UNRECORDED

EXECUTORS = ("local", "ray")


class ExecutorUnavailableError(GalaxyLabError, RuntimeError):
    """The executor cannot take runs now (not installed, cluster unreachable, resources it can never have); the
    message says why, for the user. Queued runs wait."""


@dataclass(frozen=True)
class Ended:
    """A run whose execution ended. `state` and `message` are the cause as the executor saw it, for a run that
    could not record its own end (None: the run should have recorded it)."""

    run_id: str
    state: RunState | None
    message: str


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

    def kill(self, run_id: str, state: RunState, message: str) -> None:
        """End a run at once; it is reported by the next poll with this state and message."""

    def close(self) -> None: ...


SIGNAL_NOTES = {signal.SIGKILL: "out of memory is a common cause", signal.SIGTERM: "someone asked it to end"}


def exit_cause(code: int, run: Run) -> tuple[RunState | None, str]:
    """What a worker's exit status says of a run that may not have recorded its own end."""
    if code < 0:
        number = -code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "an unknown signal"
        note = SIGNAL_NOTES.get(number)
        return RunState.INTERRUPTED, f"interrupted: the worker was killed by signal {number} ({name}" + (
            f"; {note})" if note else ")"
        )
    if code == EXIT_NO_SPACE:
        return RunState.FAILED, "failed: no space left on device"
    if code == EXIT_FOLDER_GONE:
        return None, "the run folder was deleted"
    if code in (0, 1):
        return None, f"the worker ended (exit status {code}) without recording how the run ended"
    last = run.worker_output_tail(1)
    cause = "the failure could not be recorded" if code == EXIT_UNRECORDED else f"exit status {code}"
    return RunState.FAILED, f"failed: the worker ended with {cause}" + (f": {last}" if last else "")


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
    killed_as: tuple[RunState, str] | None = field(default=None)


class LocalExecutor:
    """Each run in a worker process of its own on this machine (`python -m galaxy_core.training.worker`)."""

    name = "local"

    def __init__(self) -> None:
        self._workers: dict[str, _Worker] = {}

    def check(self) -> None:
        pass

    def start(self, run: Run) -> dict:
        with run.worker_output_path.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "galaxy_core.training.worker", str(run.path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._workers[run.id] = _Worker(run, process)
        return {"node": socket.gethostname(), "pid": process.pid, "pid_start": process_start_time(process.pid)}

    def poll(self) -> list[Ended]:
        ended = []
        for run_id, worker in list(self._workers.items()):
            code = worker.process.poll()
            if code is None:
                continue
            del self._workers[run_id]
            state, message = worker.killed_as or exit_cause(code, worker.run)
            ended.append(Ended(run_id, state, message))
        return ended

    def active(self) -> set[str]:
        return set(self._workers)

    def kill(self, run_id: str, state: RunState, message: str) -> None:
        worker = self._workers.get(run_id)
        if worker is not None and worker.process.poll() is None:
            worker.killed_as = (state, message)
            worker.process.kill()

    def close(self) -> None:
        """Workers go on without the service (a new one adopts them by pid and start time)."""
        self._workers.clear()
