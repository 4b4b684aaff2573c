"""The training service: one supervisor process per runs folder watches every run's life, whoever is looking.

`python -m galaxy_core.training.supervisor RUNS_ROOT`. It is started on demand (galaxy_core.training.service.
ensure_supervisor) by whoever queues, stops or looks at runs: the pages, the CLI, `galaxy-lab serve`; a lock file
keeps it to one per runs folder, and the kernel releases the lock however the process ends. It alone moves a
running run between states (galaxy_core.training.lifecycle). Every POLL_SECONDS it

- records how each run that ended, ended: the outcome its training wrote, or, when the run could not say so
  itself, the cause the executor saw (killed by a signal or for lack of memory, a full disk, a lost Ray node);
- records the end of a run whose worker, started by an earlier supervisor, is gone (recognised by its pid and
  start time, which a reused pid cannot fake): its outcome if it wrote one, else interrupted;
- kills a run that was asked to stop and has given no sign of life for `stop_grace_seconds` since;
- kills the worker of a run whose folder was deleted;
- starts queued runs while fewer than `max_concurrent_runs` train, in fair-share order
  (galaxy_core.training.fair_share: a teacher's first, then the student who has started the fewest runs lately),
  and runs of seconds (`RunSummary.is_light`: a head on a trained run's cached features, an ensemble) in light slots
  of their own beside those, `max_light_runs` at once: a lesson's heads do not queue behind one another one slot at
  a time, nor behind a long run;
- keeps workers on standby (TensorFlow imported) for the runs that wait.

With nothing queued or running for IDLE_EXIT_SECONDS it exits; the next queued run starts it again. Killed, it is
started again by the next page or command that looks at the runs, and adopts the workers still training.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

from galaxy_core.settings import Settings, load_settings
from galaxy_core.training.executors import (
    Ended,
    Executor,
    ExecutorUnavailableError,
    LocalExecutor,
    kill_process,
    process_alive,
)
from galaxy_core.training.fair_share import next_to_start, owner_of, recent_starts, starts_of
from galaxy_core.training.lifecycle import Outcome, RunState, failed, failure_message
from galaxy_core.training.records import RunSummary
from galaxy_core.training.service import ServiceFiles
from galaxy_core.training.store import Run, RunStore

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# Long enough for a worker on standby (TensorFlow imported) to be there when someone presses Train in a lesson.
IDLE_EXIT_SECONDS = 300.0
CHECK_RETRY_SECONDS = 5.0


def create_executor(settings: Settings, runs_root: Path) -> Executor:
    """The executor the settings name; Ray is imported only when a run is about to use it."""
    if settings.executor == "ray":
        from galaxy_core.training.ray_executor import RayExecutor

        return RayExecutor(settings)
    return LocalExecutor(runs_root)


class Supervisor:
    def __init__(
        self,
        store: RunStore,
        executor: Executor,
        *,
        max_concurrent: int,
        stop_grace: float,
        max_training_per_student: int = 1,
        max_light: int = 0,
    ):
        self.store, self.files, self.executor = store, ServiceFiles(store.root), executor
        self.max_concurrent, self.stop_grace, self.max_light = max_concurrent, stop_grace, max_light
        self.max_training_per_student = max_training_per_student
        # Who had runs started when, for the fair share: read once, then kept up as this service starts runs.
        self.starts = starts_of(store.runs())
        self.unwritten: dict[str, Outcome] = {}  # final states the disk refused; retried each pass
        self.problem: str | None = None  # why the executor cannot start runs now
        self.checked_at = -CHECK_RETRY_SECONDS
        self.stopping = False

    def step(self) -> int:
        """One pass over the runs folder; returns how many runs are queued or running."""
        with self.files.scheduler_lock():
            for ended in self.executor.poll():
                self._record_end(ended)
            for run_id in {run_id for run_id in self.executor.active() if not Run(self.store.root / run_id).exists()}:
                self.files.log(f"{run_id}: its folder was deleted; its worker is stopped")
                self.executor.kill(run_id, Outcome(RunState.INTERRUPTED, "its run folder was deleted"))
            summaries = self.store.runs(active_only=True)
            running = [summary for summary in summaries if summary.state is RunState.RUNNING]
            live = [summary for summary in running if self._watch(summary)]
            queued = [summary for summary in summaries if summary.state is RunState.QUEUED]
            # Runs of seconds take light slots while there are any (the first: they free theirs soonest)
            slots = {True: self.max_light, False: self.max_concurrent}
            waiting = {light: [s for s in queued if self._light(s) == light] for light in slots}
            for light, count in slots.items():
                free = count - sum(1 for summary in live if self._light(summary) == light)
                if waiting[light] and free > 0 and self._executor_ready():
                    waiting[light] = self._start_next(waiting[light], live, free)
            # Workers wait with TensorFlow imported: one while an ordinary slot is free or a run waits for one, and
            # one per light slot while runs of seconds wait (each then starts at once when a slot frees).
            ordinary_free = self.max_concurrent > sum(1 for summary in live if not self._light(summary))
            wanted = 1 if ordinary_free or waiting[False] else 0
            self.executor.prepare(max(wanted, min(len(waiting[True]), self.max_light)))
            return len(live) + len(queued)

    def _light(self, summary: RunSummary) -> bool:
        """Whether the run takes a light slot (none without light slots: then every run takes an ordinary one)."""
        return bool(self.max_light) and summary.is_light

    def _start_next(self, queued: list[RunSummary], live: list[RunSummary], free: int) -> list[RunSummary]:
        """Start up to `free` of `queued` in fair-share order; returns those still waiting. A started run counts as
        live from then on."""
        recent = recent_starts(self.starts, time.time())
        for summary in next_to_start(queued, live, recent, free, self.max_training_per_student):
            if self._start(summary.run):
                self.starts.append((owner_of(summary), time.time()))
                live.append(summary)
                queued = [waiting for waiting in queued if waiting.id != summary.id]
        return queued

    def _watch(self, summary: RunSummary) -> int:
        """1 if the running run still has a live worker (after enforcing a stop that went unanswered), else 0."""
        run = summary.run
        if run.id in self.unwritten:
            self._finish(run, self.unwritten[run.id])
            return 0
        if run.id in self.executor.active():
            if self._stop_unanswered(run):
                self.executor.kill(run.id, self._killed())
            return 1
        if summary.executor == "local" and process_alive(summary.pid, summary.pid_start):
            # A worker started by an earlier supervisor: it goes on, and still counts.
            if self._stop_unanswered(run):
                kill_process(summary.pid, summary.pid_start)
                self._finish(run, self._killed())
                return 0
            return 1
        self._finish(
            run,
            run.outcome()
            or Outcome(
                RunState.INTERRUPTED,
                "interrupted: its worker ended while the training service was not watching (the machine restarted, "
                "or the service that drove it stopped)",
            ),
        )
        return 0

    def _stop_unanswered(self, run: Run) -> bool:
        """A stop was requested and the run has given no sign of life for the grace period since."""
        requested = run.stop_requested_at()
        if requested is None:
            return False
        return time.time() - max(requested, run.heartbeat_at() or 0.0) > self.stop_grace

    def _killed(self) -> Outcome:
        return Outcome(RunState.STOPPED, f"killed: no answer for {self.stop_grace:.0f} s after stop")

    def _record_end(self, ended: Ended) -> None:
        """The outcome of a run whose execution ended: the executor's (it was killed, its node lost), else the one
        its training wrote, else a failure that says it wrote none."""
        run = Run(self.store.root / ended.run_id)
        if not run.exists():
            return
        try:
            if not run.state().active:
                return
        except (OSError, ValueError) as error:
            self.files.log(f"{ended.run_id}: ended, and its status cannot be read: {error}")
            return
        outcome = ended.outcome or run.outcome() or failed("the worker ended without recording how the run ended")
        self._finish(run, outcome)

    def _finish(self, run: Run, outcome: Outcome) -> None:
        try:
            run.move_to(outcome.state, message=outcome.message, finished=time.time(), **outcome.fields)
        except OSError as error:
            if run.id not in self.unwritten:
                self.files.log(f"{run.id}: cannot record '{outcome.message}' yet: {error}")
            self.unwritten[run.id] = outcome
            return
        self.unwritten.pop(run.id, None)
        self.files.log(f"{run.id}: {outcome.message}")

    def _executor_ready(self) -> bool:
        if time.monotonic() - self.checked_at < CHECK_RETRY_SECONDS and self.problem is not None:
            return False
        self.checked_at = time.monotonic()
        try:
            self.executor.check()
            problem = None
        except ExecutorUnavailableError as error:
            problem = str(error)
        if problem != self.problem:
            self.problem = problem
            self.files.log(f"runs wait: {problem}" if problem else f"the {self.executor.name} executor is ready")
            self.publish()
        return problem is None

    def _start(self, run: Run) -> bool:
        """Hand a queued run to the executor and record it as running; whether it started."""
        try:
            where = self.executor.start(run)
        except ExecutorUnavailableError as error:  # the cluster changed since it was checked: the run waits
            self.problem = str(error)
            self.files.log(f"{run.id}: waits: {error}")
            self.publish()
            return False
        except OSError as error:
            self._finish(run, failed(f"the run could not start: {failure_message(error)}"))
            return False
        fields = {"message": "starting", "executor": self.executor.name, "dispatched": time.time(), **where}
        try:
            run.move_to(RunState.RUNNING, **fields)
        except OSError as error:
            self.executor.kill(run.id, failed(f"the run could not start: {failure_message(error)}"))
            return True  # its worker ends at once, and the next poll records it
        self.files.log(f"{run.id}: started on the {self.executor.name} executor")
        return True

    def publish(self, state: str = "running") -> None:
        """What the service says of itself in supervisor.json, for pages and the CLI."""
        try:
            self.files.publish(
                {
                    "state": state,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "executor": self.executor.name,
                    "max_concurrent_runs": self.max_concurrent,
                    "max_light_runs": self.max_light,
                    "problem": self.problem,
                    "since": time.time(),
                }
            )
        except OSError as error:
            logger.warning("cannot write the service status: %s", error)

    def serve(self, service_lock, idle_exit: float = IDLE_EXIT_SECONDS) -> None:
        """Supervise until stopped, or until nothing has been queued or running for `idle_exit` seconds.
        `service_lock`: the handle of the lock that makes this the runs folder's one supervisor."""
        self.publish()
        idle_since = time.monotonic()
        while not self.stopping:
            try:
                busy = self.step()
            except Exception:  # the service must outlive any one bad pass; the log says what went wrong
                self.files.log(f"a supervision pass failed:\n{traceback.format_exc()}")
                busy = 1
            if busy or self.executor.active() or self.unwritten:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_exit and self._leave_if_idle(service_lock):
                break
            with contextlib.suppress(OSError):
                self.files.beat()
            time.sleep(POLL_SECONDS)
        else:
            self.publish("stopped")
        self.executor.close()

    def _leave_if_idle(self, service_lock) -> bool:
        """Give up the service lock if nothing is queued or running. Whoever queues a run holds the scheduler lock
        while it looks for a service, so a run queued now either is seen here or starts a new service."""
        with self.files.scheduler_lock():
            if self.store.runs(active_only=True):
                return False
            self.publish("stopped")
            service_lock.close()
            return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m galaxy_core.training.supervisor",
        description="The training service of a runs folder. The lab starts it when runs are queued; "
        "people use `galaxy-lab train` and the Train page.",
    )
    parser.add_argument("runs_root", help="the runs folder it serves")
    store = RunStore(parser.parse_args(argv).runs_root)
    lock = ServiceFiles(store.root).acquire_service_lock()
    if lock is None:
        return 0  # another supervisor serves this runs folder
    settings = load_settings()
    supervisor = Supervisor(
        store,
        create_executor(settings, store.root),
        max_concurrent=settings.max_concurrent_runs,
        stop_grace=settings.stop_grace_seconds,
        max_training_per_student=settings.max_training_per_student,
        max_light=settings.max_light_runs,
    )

    def stop(*_):
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    supervisor.serve(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
