"""A run's life: its states, the moves allowed between them, how a run ends (its outcome), and the causes of an
end that the run itself could not record (a signal, a full disk, a lost node).

    queued ──> running ──> finished | stopped | failed | interrupted
       └─────> stopped | failed            (stopped before it started; could not start)

The code that trains a run never moves it between states: it reports progress and returns an `Outcome`. Every
move goes through the run store's `Run.move_to`, which checks it against `TRANSITIONS` (an illegal move is a bug,
and raises), and is made by one of two, under the runs folder's scheduler lock (galaxy_core.training.service):

- the training service (galaxy_core.training.supervisor): queued -> running when it starts a run, and a running
  run's end (the outcome its worker wrote, or interrupted when the worker is gone); `train_in_this_process` is
  the service of a run trained in the caller's own process;
- the person who asks (galaxy_core.training.client.ServiceClient, in a page's or the CLI's process): queued ->
  stopped on Stop or Delete, and a running run restored from the trash -> interrupted (its worker went with its
  folder). A running run asked to stop is not moved by the asker: its training sees the request and ends with
  its outcome.

What a person sees of a run's state is read in one place, `RunSummary.read` (galaxy_core.training.records), which
merges the status with what the training reports while it trains.
"""

from __future__ import annotations

import errno
import signal
from dataclasses import dataclass, field
from enum import StrEnum


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


ENDED = frozenset({RunState.FINISHED, RunState.FAILED, RunState.STOPPED, RunState.INTERRUPTED})
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.STOPPED, RunState.FAILED}),
    RunState.RUNNING: ENDED,
    **{state: frozenset() for state in ENDED},
}


class IllegalTransitionError(RuntimeError):
    """A run was asked to move between states in a way its life does not allow: a bug in the lab, not the user's."""


def check_transition(current: RunState, new: RunState) -> None:
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it has ended"
        raise IllegalTransitionError(f"a {current} run cannot become {new} (from {current}: {allowed})")


class StoppedBeforeTrainingError(Exception):
    """A stop request arrived before the run had learned anything; the message says when."""


@dataclass(frozen=True)
class Outcome:
    """How a run ended: its final state, the one line a user reads, and what else to record with it (test
    figures, the error and its traceback)."""

    state: RunState
    message: str
    fields: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", RunState(self.state))
        if self.state not in ENDED:
            raise ValueError(f"an outcome is a final state, not {self.state}")

    def to_dict(self) -> dict:
        return {"state": self.state.value, "message": self.message, "fields": self.fields}

    @classmethod
    def from_dict(cls, values: dict) -> Outcome:
        """The outcome saved by `to_dict`; ValueError or TypeError when it is not one."""
        if not isinstance(values, dict) or not isinstance(values.get("message"), str):
            raise ValueError(f"not a run's outcome: {values!r}")
        fields = values.get("fields", {})
        if not isinstance(fields, dict):
            raise ValueError(f"an outcome's fields are a mapping, not {fields!r}")
        return cls(RunState(values.get("state")), values["message"], fields)


def failure_message(error: BaseException) -> str:
    """The one line a user reads for a failed run: the disk, the memory, or the error itself."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "no space left on device"
    if isinstance(error, MemoryError):
        return "out of memory"
    return f"{type(error).__name__}: {error}"


def failed(message: str, **fields) -> Outcome:
    return Outcome(RunState.FAILED, f"failed: {message}", {"error": message, **fields})


# A local worker's exit status, for what the run folder may not be able to say.
EXIT_RECORDED = 0  # the outcome is in the run folder
EXIT_NO_SPACE = 28  # errno's ENOSPC: the run's outcome could not be written on a full disk
EXIT_UNRECORDED = 3  # the outcome could not be written for another reason
EXIT_FOLDER_GONE = 4  # the run folder was deleted while the run trained
SIGNAL_NOTES = {signal.SIGKILL: "out of memory is a common cause", signal.SIGTERM: "someone asked it to end"}


def exit_outcome(code: int, last_output: str = "") -> Outcome | None:
    """How a worker's exit status says its run ended; None where the run folder says it (or there is no folder)."""
    if code in (EXIT_RECORDED, EXIT_FOLDER_GONE):
        return None
    if code < 0:
        number = -code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "an unknown signal"
        note = SIGNAL_NOTES.get(number)
        detail = f"{name}; {note}" if note else name
        return Outcome(RunState.INTERRUPTED, f"interrupted: the worker was killed by signal {number} ({detail})")
    if code == EXIT_NO_SPACE:
        return failed("no space left on device")
    what = f"the worker ended with exit status {code}"
    if code == EXIT_UNRECORDED:
        what = "its outcome could not be recorded"
    return failed(what + (f": {last_output}" if last_output else ""))
