"""The job manager: a queue of runs on disk, at most N worker processes at once, stop and recovery.

It keeps no state of its own: the run folders are the queue. Any process may call `schedule()` (the app on
every refresh, a worker when it finishes); a lock file keeps two callers from starting the same run.
Workers start in their own session, so closing the browser or restarting the app does not stop them.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from galaxy_core.training.config import TrainConfig
from galaxy_core.training.store import Run, RunStore

STOP_TIMEOUT_SECONDS = 30.0


class QueueFullError(RuntimeError):
    """A run was refused: the queue is full or the run asks for more than the server allows."""


def worker_alive(pid: int | None, run: Run) -> bool:
    """Whether `pid` is still this run's worker (not a finished child, not a reused pid)."""
    if not pid:
        return False
    try:
        # Reap it if it is our own finished child, or it would linger as a zombie that looks alive.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        state = stat.rsplit(")", 1)[-1].split()[0]
        return state != "Z" and run.path.name in command
    try:  # no /proc (macOS): the best we can do is ask whether the pid exists
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class JobManager:
    def __init__(
        self,
        runs_root: str | Path,
        max_concurrent: int = 1,
        stop_timeout: float = STOP_TIMEOUT_SECONDS,
        *,
        max_queued: int | None = None,
        max_epochs: int | None = None,
    ):
        self.store = RunStore(runs_root)
        self.max_concurrent = max_concurrent
        self.stop_timeout = stop_timeout
        self.max_queued = max_queued
        self.max_epochs = max_epochs

    @classmethod
    def from_settings(cls, settings, runs_root: str | Path | None = None) -> JobManager:
        """The manager with the server's limits (concurrent runs, queue length, epochs per run)."""
        return cls(
            runs_root or settings.runs_dir,
            max_concurrent=settings.max_concurrent_runs,
            max_queued=settings.max_queued_runs,
            max_epochs=settings.max_epochs,
        )

    @contextmanager
    def _lock(self):
        self.store.root.mkdir(parents=True, exist_ok=True)
        with (self.store.root / ".scheduler.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def submit(self, config: TrainConfig) -> Run:
        """Queue a run and start it if a slot is free; QueueFullError when the server's limits refuse it."""
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            raise QueueFullError(f"this server allows at most {self.max_epochs} epochs per run, not {config.epochs}")
        if self.max_queued is not None:
            waiting = sum(status["state"] == "queued" for _, _, status in self.store.runs())
            if waiting >= self.max_queued:
                raise QueueFullError(
                    f"{waiting} runs are already waiting for a training slot (the limit is {self.max_queued}): "
                    "try again when some have started, or stop one of yours"
                )
        run = self.store.create(config.to_dict(), config.model)
        self.schedule()
        return run

    def schedule(self) -> list[Run]:
        """Mark vanished workers, enforce stop timeouts, and start queued runs in free slots (oldest first)."""
        started = []
        with self._lock():
            runs = self.store.runs()
            running = 0
            for run, _, status in runs:
                if status["state"] == "running":
                    running += self._check_running(run, status)
            queued = [run for run, _, status in reversed(runs) if status["state"] == "queued"]
            for run in queued[: max(0, self.max_concurrent - running)]:
                self._start(run)
                started.append(run)
        return started

    def _check_running(self, run: Run, status: dict) -> int:
        """1 if the run's worker is alive (after killing it if its stop timed out), else mark it and 0."""
        if not worker_alive(status.get("pid"), run):
            # A worker writes its final state before it exits, so a dead worker's state on disk is final.
            if run.status()["state"] != "running":
                return 0
            run.set_status(
                "interrupted",
                message="the worker process ended without finishing (the machine or "
                "the app restarted, or it was killed); metrics so far are kept",
            )
            return 0
        requested = run.stop_requested_at()
        if requested is not None and time.time() - requested > self.stop_timeout:
            os.kill(status["pid"], signal.SIGKILL)
            worker_alive(status["pid"], run)  # reap
            run.log(f"no graceful stop within {self.stop_timeout:.0f} s: worker killed")
            run.set_status("stopped", message="killed after the stop timeout", finished=time.time())
            return 0
        return 1

    def _start(self, run: Run) -> None:
        log = (run.path / "worker.out").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "galaxy_core.training.worker", str(run.path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        # "running" at once, under the lock, so that no other caller starts it again before the worker says so.
        run.set_status("running", pid=process.pid, started=time.time())

    def stop(self, run_id: str) -> dict:
        """Stop a queued run at once, a running one at its next batch (killed after the timeout)."""
        run = self.store.get(run_id)
        with self._lock():
            state = run.status()["state"]
            if state == "queued":
                return run.set_status("stopped", message="stopped before it started", finished=time.time())
            if state == "running":
                run.request_stop()
                run.log("stop requested")
            return run.status()
