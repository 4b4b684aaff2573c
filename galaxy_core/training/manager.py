"""Queueing and stopping runs: what pages and the CLI call. The training service does the rest.

A queued run is a run folder in the state "queued"; the supervisor of the runs folder
(galaxy_core.training.supervisor) starts it when a slot is free, watches it, and records how it ended. Every call
here makes sure that service runs, so a queue never waits for somebody to look at it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from galaxy_core.errors import GalaxyLabError
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.store import Run, RunState, RunStore, RunSummary
from galaxy_core.training.supervisor import ensure_supervisor


class QueueFullError(GalaxyLabError, RuntimeError):
    """A run was refused: the queue is full or the run asks for more than the server allows."""


class RunsFolderError(GalaxyLabError, RuntimeError):
    """The runs folder cannot be written (read-only, full, missing permissions): nothing can be queued."""


@dataclass(frozen=True)
class ServiceStatus:
    """The training service as pages and the CLI describe it."""

    running: bool
    executor: str | None
    problem: str | None  # why queued runs cannot start now, in the user's words

    def describe(self) -> str:
        if self.problem:
            return f"queued runs wait: {self.problem}"
        if not self.running:
            return "idle (it starts with the next queued run)"
        return f"running, training on the {self.executor} executor"


class JobManager:
    def __init__(self, runs_root: str | Path, *, max_queued: int | None = None, max_epochs: int | None = None):
        self.store = RunStore(runs_root)
        self.max_queued = max_queued
        self.max_epochs = max_epochs

    @classmethod
    def from_settings(cls, settings, runs_root: str | Path | None = None) -> JobManager:
        """The manager with the server's limits (queue length, epochs per run)."""
        return cls(runs_root or settings.runs_dir, max_queued=settings.max_queued_runs, max_epochs=settings.max_epochs)

    def submit(self, config: TrainConfig) -> Run:
        """Queue a run (the service starts it when a slot is free); QueueFullError when the server's limits refuse
        it, RunsFolderError when the runs folder cannot be written."""
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            raise QueueFullError(f"this server allows at most {self.max_epochs} epochs per run, not {config.epochs}")
        try:
            return self._queue(config)
        except OSError as error:
            raise RunsFolderError(
                f"the runs folder {self.store.root} cannot be written ({error.strerror or error}): check runs_dir "
                "and the disk"
            ) from error

    def _queue(self, config: TrainConfig) -> Run:
        with self.store.lock():
            if self.max_queued is not None:
                waiting = sum(summary.state is RunState.QUEUED for summary in self.store.runs(active_only=True))
                if waiting >= self.max_queued:
                    raise QueueFullError(
                        f"{waiting} runs are already waiting for a training slot (the limit is {self.max_queued}): "
                        "try again when some have started, or stop one of yours"
                    )
            run = self.store.create(config.to_dict(), config.model)
            ensure_supervisor(self.store.root)
        return run

    def stop(self, run_id: str) -> RunSummary:
        """Stop a queued run at once; ask a running one to stop at its next batch (the service kills it if it gives
        no sign of life for the grace period). Returns the run's summary after the request."""
        run = self.store.get(run_id)
        with self.store.lock():
            summary = run.summary()
            if summary.state is RunState.QUEUED:
                run.set_status(RunState.STOPPED, message="stopped before it started", finished=time.time())
            elif summary.state is RunState.RUNNING and run.stop_requested_at() is None:
                run.request_stop()
                run.log("stop requested")
            ensure_supervisor(self.store.root)
            return run.summary()

    def follow(self, run: Run, poll_seconds: float = 0.5) -> Iterator[tuple[list[dict], RunSummary]]:
        """(new metrics records, the run's summary) every `poll_seconds`, until the run has ended: the last
        summary yielded is the final one."""
        offset = 0
        while True:
            summary = run.summary()
            records, offset = run.read_metrics(offset)
            yield records, summary
            if not summary.state.active:
                return
            time.sleep(poll_seconds)

    def service(self) -> ServiceStatus:
        """Whether the training service runs, on which executor, and what keeps queued runs waiting, if anything."""
        running = self.store.service_running()
        status = self.store.service_status() or {}
        problem = status.get("problem") if running else None
        return ServiceStatus(running, status.get("executor"), problem if isinstance(problem, str) else None)

    def ensure_service(self, summaries: list[RunSummary]) -> None:
        """Start the training service if some of these runs are queued or running and it is not running (after a
        reboot, say: it then marks the runs whose workers are gone, and starts the queue)."""
        if any(summary.state.active for summary in summaries):
            ensure_supervisor(self.store.root)
