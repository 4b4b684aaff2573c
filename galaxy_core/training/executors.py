"""Where runs train: the interface the training service drives, and its embedded default, local processes.

An executor starts a run, reports the runs that ended (with the cause when the run could not record one), and
kills a run on request. It never decides what runs next: the supervisor does (galaxy_core.training.supervisor).
The Ray cluster executor is in galaxy_core.training.ray_executor.
"""

from __future__ import annotations

import contextlib
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

    def prepare(self, count: int) -> None:
        """Get ready for the next `count` runs (the local executor keeps that many workers waiting with TensorFlow
        imported); nothing to do for some executors."""

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
class _Standby:
    """A worker waiting with TensorFlow imported for a run's folder on its standard input."""

    process: subprocess.Popen
    reports: int  # the read end of the pipe on which it says "ended STATUS" when it waits for another run
    warm: bool = False  # it has trained a run already (and may hold that run's base network)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.reports)

    def ended_run(self) -> int | None:
        """The exit status of the run it says it ended since last asked, if it said so."""
        try:
            said = os.read(self.reports, 4096).decode(errors="replace").split()
        except OSError:  # nothing said yet (BlockingIOError), or the pipe is gone
            return None
        statuses = [int(word) for word in said if word.lstrip("-").isdigit()]
        return statuses[-1] if statuses else None


@dataclass
class _Worker:
    run: Run
    process: subprocess.Popen
    standby: _Standby | None = None  # the standby worker it trains in, which may wait for the next run after it
    killed_as: Outcome | None = field(default=None)


class LocalExecutor:
    """Each run in a worker process on this machine (`python -m galaxy_core.training.worker`).

    Workers wait on standby (`--standby`, as many as the supervisor asks for: one per run it expects to start soon)
    with TensorFlow already imported (its start-up's longest part): the next run is handed to one on its standard
    input, and starts several seconds sooner. After a run of seconds (a head on a frozen base) the worker says so on
    its reports pipe and waits for the next one, warm: it is handed the next run before a fresh one (a lesson's
    heads of one base then find that base loaded). Other runs end their worker. A standby worker leaves when the
    service does."""

    name = "local"
    STANDBY_RETRY_SECONDS = 60.0  # after a standby worker ended without a run (a broken install, say)

    def __init__(self, runs_root: Path | None = None) -> None:
        self._workers: dict[str, _Worker] = {}
        self._runs_root = runs_root
        self._standby: list[_Standby] = []
        self._standby_failed_at = -self.STANDBY_RETRY_SECONDS

    def check(self) -> None:
        pass

    def prepare(self, count: int) -> None:
        if self._runs_root is None:
            return
        for standby in [standby for standby in self._standby if standby.process.poll() is not None]:
            self._standby.remove(standby)
            standby.close()
            if not standby.warm:  # it ended without a run
                self._standby_failed_at = time.monotonic()
        if time.monotonic() - self._standby_failed_at < self.STANDBY_RETRY_SECONDS:
            return
        while len(self._standby) < count:
            self._standby.append(self._spawn_standby(self._runs_root))

    @staticmethod
    def _spawn_standby(runs_root: Path) -> _Standby:
        reports, report_end = os.pipe()
        os.set_blocking(reports, False)
        try:
            with (runs_root / ".standby-worker.out").open("ab") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "galaxy_core.training.worker", "--standby", "--reports", str(report_end)],
                    stdin=subprocess.PIPE,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # once it has a run, it trains on without the service
                    pass_fds=(report_end,),
                )
        finally:
            os.close(report_end)
        return _Standby(process, reports)

    def _next_standby(self) -> _Standby | None:
        """A warm worker first (the one that ended a run last), else the oldest fresh one."""
        warm = [standby for standby in self._standby if standby.warm]
        if warm or self._standby:
            chosen = warm[-1] if warm else self._standby[0]
            self._standby.remove(chosen)
            return chosen
        return None

    def start(self, run: Run) -> dict:
        standby = self._next_standby()
        while standby is not None:
            try:
                standby.process.stdin.write(f"{run.path}\n".encode())
                standby.process.stdin.flush()
                break
            except OSError:  # it ended meanwhile: the next one, or a worker of its own
                standby.close()
                standby = self._next_standby()
        process = standby.process if standby is not None else self._spawn(run)
        self._workers[run.id] = _Worker(run, process, standby)
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
            if code is None and worker.standby is not None:
                code = worker.standby.ended_run()
                if code is not None:  # it waits for the next run: back on standby, warm
                    worker.standby.warm = True
                    self._standby.append(worker.standby)
            elif code is not None and worker.standby is not None:
                worker.standby.close()
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
        """Workers go on without the service (a new one adopts them by pid and start time; their standard input
        closes with this process, so they leave after their run); standby workers, which hold no run, are ended at
        once (waiting for them to see their input close would wait for their TensorFlow import)."""
        for standby in self._standby:
            if standby.process.poll() is None:
                standby.process.stdin.close()
                standby.process.terminate()
                standby.process.wait(10)
            standby.close()
        self._standby = []
        self._workers.clear()
