"""A run's life: the moves between states the lab allows (and refuses), outcomes, and the causes an exit status
gives."""

import json
import signal

import pytest

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.training import RunState, RunStore
from galaxy_core.training.client import new_run
from galaxy_core.training.lifecycle import (
    EXIT_FOLDER_GONE,
    EXIT_NO_SPACE,
    EXIT_RECORDED,
    EXIT_UNRECORDED,
    IllegalTransitionError,
    Outcome,
    check_transition,
    exit_outcome,
)
from tests.helpers import rewrite_status, tiny_config

# The moves a run can make, written out by hand: queued runs start, or stop or fail before they start; running
# runs end in one of four ways; an ended run never moves again.
ALLOWED = {
    ("queued", "running"),
    ("queued", "stopped"),
    ("queued", "failed"),
    ("running", "finished"),
    ("running", "failed"),
    ("running", "stopped"),
    ("running", "interrupted"),
}


@pytest.mark.parametrize("current", list(RunState))
@pytest.mark.parametrize("new", list(RunState))
def test_only_the_moves_of_a_runs_life_are_allowed(current, new):
    if (current.value, new.value) in ALLOWED:
        check_transition(current, new)
    else:
        with pytest.raises(IllegalTransitionError, match=f"a {current} run cannot become {new}"):
            check_transition(current, new)


def test_the_store_refuses_an_illegal_move_and_keeps_the_status(isolated_settings):
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(), MACHINE_TEACHER)
    run.move_to("stopped", message="stopped before it started")
    before = (run.path / "status.json").read_text()
    with pytest.raises(IllegalTransitionError, match="a stopped run cannot become running"):
        run.move_to("running")
    assert (run.path / "status.json").read_text() == before
    rewrite_status(run, "running")
    run.move_to("finished", message="done", test_accuracy=0.5)
    status = json.loads((run.path / "status.json").read_text())
    assert (status["state"], status["message"], status["test_accuracy"]) == ("finished", "done", 0.5)


def test_an_outcome_is_a_final_state_and_round_trips():
    outcome = Outcome(RunState.FINISHED, "finished after 2 of 2 epochs", {"test_accuracy": 0.9})
    assert Outcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome
    with pytest.raises(ValueError, match="an outcome is a final state, not running"):
        Outcome(RunState.RUNNING, "training")
    for damaged in ({"state": "finished"}, {"state": "dancing", "message": "x"}, [1], {"message": "x", "fields": 3}):
        with pytest.raises(ValueError):
            Outcome.from_dict(damaged)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (EXIT_RECORDED, None),  # the run folder holds the outcome
        (EXIT_FOLDER_GONE, None),  # there is no run folder left to record anything in
        (-signal.SIGKILL, ("interrupted", "killed by signal 9 (SIGKILL; out of memory is a common cause)")),
        (-signal.SIGTERM, ("interrupted", "killed by signal 15 (SIGTERM; someone asked it to end)")),
        (-signal.SIGSEGV, ("interrupted", "killed by signal 11 (SIGSEGV)")),
        (EXIT_NO_SPACE, ("failed", "failed: no space left on device")),
        (EXIT_UNRECORDED, ("failed", "failed: its outcome could not be recorded: last line")),
        (1, ("failed", "failed: the worker ended with exit status 1: last line")),
    ],
)
def test_an_exit_status_says_how_a_run_ended(code, expected):
    outcome = exit_outcome(code, "last line")
    if expected is None:
        assert outcome is None
    else:
        assert outcome.state == expected[0] and expected[1] in outcome.message
