"""How pages, the CLI and notebooks reach the training service: queue, stop and follow runs, and ask how the
service is. Every call makes sure the service runs (galaxy_core.training.service.ensure_supervisor), so a queue
never waits for somebody to look at it, and a service that was killed comes back with the next look.

A queued run is a run folder in the state "queued"; the supervisor of the runs folder starts it when a slot is
free, watches it and records how it ended. `train_in_this_process` is the other way to train: in the caller's own
process (a notebook, a benchmark, a test), where the caller is the run's service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from galaxy_core.classroom.access import Action, may, owns, require
from galaxy_core.classroom.people import User
from galaxy_core.data import check_dataset_memory
from galaxy_core.errors import GalaxyLabError
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.executors import kill_process
from galaxy_core.training.kinds import check_run_config, run_kind
from galaxy_core.training.lifecycle import RunState
from galaxy_core.training.procedure import train_run
from galaxy_core.training.records import RunSummary
from galaxy_core.training.service import ServiceFiles, end_supervisor, ensure_supervisor
from galaxy_core.training.store import Run, RunStore

FOLLOW_SERVICE_CHECK_SECONDS = 5.0


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


def new_run(store: RunStore, config: TrainConfig, owner: User) -> Run:
    """A run folder for `config`, queued, `owner`'s, with the epochs its kind plans and a copy of the models it
    starts from (InvalidInputError for a config its kind cannot run, or a model it cannot start from). A config
    without a seed gets one of its own here."""
    config = config.seeded()
    check_run_config(config)
    kind = run_kind(config.kind)
    inputs = kind.input_models(store, config)
    who = {"owner": owner.id, "owner_name": owner.name, "owner_role": owner.role}
    run = store.create(config.to_dict(), name=config.model, planned_epochs=kind.planned_epochs(config), owner=who)
    try:
        for which, source in inputs.items():
            run.copy_in_model(which, source)
    except BaseException:
        store.discard(run)  # a run without the model it starts from is no run
        raise
    return run


def train_in_this_process(run: Run, dataset=None, observers: Sequence = ()) -> RunState:
    """Train a queued run here, as the run's own service: it moves the run to running, trains it and records its
    outcome; returns the final state. `dataset` and `observers`: as for galaxy_core.training.procedure.train_run."""
    run.move_to(RunState.RUNNING, message="starting", executor="this process", dispatched=time.time())
    outcome = train_run(run, dataset, observers)
    run.move_to(outcome.state, message=outcome.message, finished=time.time(), **outcome.fields)
    return outcome.state


class ServiceClient:
    """The training service, as a person sees it: every action that changes or lists something takes who asks
    (`user`, never defaulted: the CLI on the server's machine and a lab without sign-in pass the machine's teacher),
    and refuses (NotAllowedError, with why) what galaxy_core.classroom.access's table does not allow them."""

    def __init__(
        self,
        runs_root: str | Path,
        *,
        max_queued: int | None = None,
        max_epochs: int | None = None,
        dataset_memory_mb: int | None = None,
        max_waiting_per_student: int | None = None,
        disk_mb_per_student: int | None = None,
    ):
        self.store = RunStore(runs_root)
        self.files = ServiceFiles(self.store.root)
        self.max_queued, self.max_epochs, self.dataset_memory_mb = max_queued, max_epochs, dataset_memory_mb
        self.max_waiting_per_student, self.disk_mb_per_student = max_waiting_per_student, disk_mb_per_student

    @classmethod
    def from_settings(cls, settings, runs_root: str | Path | None = None) -> ServiceClient:
        """The client with the server's limits (queue length, epochs per run, a dataset's memory, a student's
        waiting runs and disk)."""
        return cls(
            runs_root or settings.runs_dir,
            max_queued=settings.max_queued_runs,
            max_epochs=settings.max_epochs,
            dataset_memory_mb=settings.dataset_memory_mb,
            max_waiting_per_student=settings.max_waiting_per_student,
            disk_mb_per_student=settings.disk_mb_per_student,
        )

    def submit(self, config: TrainConfig, user: User) -> Run:
        """Queue a run of `user`'s (the service starts it when a slot is free); QueueFullError when the server's
        limits refuse it, DatasetTooLargeError when its dataset would not fit the memory budget, RunsFolderError
        when the runs folder cannot be written."""
        require(user, Action.QUEUE)
        check_run_config(config)
        planned = run_kind(config.kind).planned_epochs(config)
        if self.max_epochs is not None and planned > self.max_epochs:
            phases = ""
            if planned != config.epochs:
                phases = f" ({config.epochs} asked for, over all its folds, networks or phases)"
            raise QueueFullError(f"this server allows at most {self.max_epochs} epochs per run, not {planned}{phases}")
        if self.dataset_memory_mb is not None:
            check_dataset_memory(config.dataset, self.dataset_memory_mb)
        try:
            return self._queue(config, user)
        except OSError as error:
            raise RunsFolderError(
                f"the runs folder {self.store.root} cannot be written ({error.strerror or error}): check runs_dir "
                "and the disk"
            ) from error

    def _queue(self, config: TrainConfig, user: User) -> Run:
        with self.files.scheduler_lock():
            queued = [summary for summary in self.store.runs(active_only=True) if summary.state is RunState.QUEUED]
            if self.max_queued is not None and len(queued) >= self.max_queued:
                raise QueueFullError(
                    f"{len(queued)} runs are already waiting for a training slot (the limit is {self.max_queued}): "
                    "try again when some have started, or stop one of yours"
                )
            mine = sum(owns(user, summary.owner_id) for summary in queued)
            limit = None if may(user, Action.EXCEED_STUDENT_LIMITS) else self.max_waiting_per_student
            if limit is not None and mine >= limit:
                raise QueueFullError(
                    f"you have {mine} runs waiting for a training slot, the most a student may "
                    "(max_waiting_per_student): queue this one when one of them has started, or stop one"
                )
            self._check_disk(user)
            run = new_run(self.store, config, user)
            ensure_supervisor(self.store.root)
        return run

    def _check_disk(self, user: User) -> None:
        """Refuse a student's new run while their run folders take their disk budget or more."""
        limit = None if may(user, Action.EXCEED_STUDENT_LIMITS) else self.disk_mb_per_student
        if limit is None:
            return
        used = sum(summary.run.disk_bytes() for summary in self.store.runs() if owns(user, summary.owner_id))
        if used >= limit * 2**20:
            raise QueueFullError(
                f"your runs take {used / 2**20:,.0f} MB on disk, the most a student may keep is {limit:,} MB "
                "(disk_mb_per_student): move some of them to the trash first"
            )

    def _run_of(self, run_id: str, user: User, action: Action) -> tuple[Run, RunSummary]:
        """The run, if `user` may `action` it (NotAllowedError otherwise)."""
        run = self.store.get(run_id)
        summary = run.summary()
        require(user, action, summary.owner_id, summary.owner_name, f"run {summary.name}")
        return run, summary

    def stop(self, run_id: str, user: User) -> RunSummary:
        """Stop a queued run at once; ask a running one to stop at its next batch (the service kills it if it gives
        no sign of life for the grace period). Returns the run's summary after the request."""
        run, _ = self._run_of(run_id, user, Action.STOP)
        with self.files.scheduler_lock():
            state = run.state()
            if state is RunState.QUEUED:
                run.move_to(RunState.STOPPED, message="stopped before it started", finished=time.time())
            elif state is RunState.RUNNING and run.stop_requested_at() is None:
                run.request_stop()
                run.log(f"stop requested by {user.name}")
            ensure_supervisor(self.store.root)
            return run.summary()

    def config_to_train_again(self, run_id: str, user: User) -> TrainConfig:
        """A run's whole config, seed included, to queue again as a new run: the same network (its owner or a
        teacher only: the config carries any label decisions it trained on)."""
        _, summary = self._run_of(run_id, user, Action.TRAIN_AGAIN)
        return TrainConfig.from_dict(summary.config)

    def rename(self, run_id: str, title: str, user: User) -> str:
        """Give a run a title ("" removes it); returns the title kept."""
        run, _ = self._run_of(run_id, user, Action.RENAME)
        return run.set_title(title, by=user.id)

    def delete(self, run_id: str, user: User) -> None:
        """Move a run to the trash, its worker (if any) stopped first: a queued run is stopped, a running one's
        local worker killed (a Ray run's is killed by the service when its folder has gone)."""
        run, summary = self._run_of(run_id, user, Action.DELETE)
        with self.files.scheduler_lock():
            state = run.state()
            if state is RunState.QUEUED:
                run.move_to(RunState.STOPPED, message=f"deleted by {user.name} before it started", finished=time.time())
            elif state is RunState.RUNNING and summary.executor == "local":
                kill_process(summary.pid, summary.pid_start)
            self.store.trash(run)

    def trashed(self, user: User) -> list[RunSummary]:
        """The runs in the trash `user` may restore: a teacher, all; a student, their own."""
        return [summary for summary in self.store.trashed().runs() if may(user, Action.SEE_IN_TRASH, summary.owner_id)]

    def restore(self, run_id: str, user: User) -> Run:
        summary = self.store.trashed().get(run_id).summary()
        require(user, Action.RESTORE, summary.owner_id, summary.owner_name, f"run {summary.name}")
        with self.files.scheduler_lock():
            run = self.store.restore(run_id)
            if run.state().active:  # a running run deleted while the service was away: it trains no more
                run.move_to(RunState.INTERRUPTED, message="interrupted: deleted while it trained", finished=time.time())
        return run

    def empty_trash(self, user: User) -> int:
        """Delete the trash's runs for good (a teacher's decision); returns how many."""
        require(user, Action.EMPTY_TRASH)
        return self.store.empty_trash()

    def follow(self, run: Run, poll_seconds: float = 0.5) -> Iterator[tuple[list[dict], RunSummary]]:
        """(new metrics records, the run's summary) every `poll_seconds`, until the run has ended: the last
        summary yielded is the final one. While it follows, it keeps the service running."""
        offset, checked = 0, time.monotonic()
        while True:
            summary = run.summary()
            records, offset = run.read_metrics(offset)
            yield records, summary
            if not summary.state.active:
                return
            if time.monotonic() - checked > FOLLOW_SERVICE_CHECK_SECONDS:
                checked = time.monotonic()
                ensure_supervisor(self.store.root)
            time.sleep(poll_seconds)

    def service(self) -> ServiceStatus:
        """Whether the training service runs, on which executor, and what keeps queued runs waiting, if anything."""
        running = self.files.running()
        status = self.files.status() or {}
        problem = status.get("problem") if running else None
        return ServiceStatus(running, status.get("executor"), problem if isinstance(problem, str) else None)

    def shut_down(self, user: User, *, keep_training: bool, timeout: float) -> list[RunSummary]:
        """End what the lab runs for this runs folder: unless `keep_training`, stop every queued or training run
        (each keeps what it learned) and wait up to `timeout` seconds for them to end; then, once none is left, the
        training service and its standby worker. Returns the runs still queued or training (they go on)."""
        active = self.store.runs(active_only=True)
        if not keep_training:
            for summary in active:
                self.stop(summary.id, user)
            deadline = time.monotonic() + timeout
            while (active := self.store.runs(active_only=True)) and time.monotonic() < deadline:
                time.sleep(0.5)
        if not active:
            end_supervisor(self.store.root)
        return active

    def ensure_service(self, summaries: list[RunSummary]) -> None:
        """Start the training service if some of these runs are queued or running and it is not running (after a
        reboot or a kill, say: it then records the runs whose workers are gone, and starts the queue)."""
        if any(summary.state.active for summary in summaries):
            ensure_supervisor(self.store.root)
