"""The teacher's lesson: a run the class starts from, chosen by a teacher only, opened on every student's Train page
(whoever's runs their menus list), and shown on the class board beside what the class made of it."""

import pytest

from galaxy_core.classroom.access import NotAllowedError
from galaxy_core.classroom.lesson import lesson_base, lesson_base_id, set_lesson_base
from galaxy_core.classroom.people import STUDENT, TEACHER
from galaxy_core.errors import InvalidInputError
from galaxy_core.training import RunStore
from galaxy_core.training.client import ServiceClient
from tests.helpers import account_user, give_run, open_page, rewrite_status, school_account

ADA = school_account("ada@school.org", "Ada")
LEE = school_account("lee@school.org", "Ms Lee")


@pytest.fixture
def a_lesson(monkeypatch, finished_run, queue_that_never_starts):
    """A class signed in through the school's provider; the teacher's finished run in the runs folder."""
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    monkeypatch.setenv("GALAXY_LAB_TEACHERS", "lee@school.org")
    give_run(finished_run, account_user(LEE, TEACHER))
    return finished_run


def test_only_a_teacher_chooses_the_starting_run_and_only_one_that_can_be_started_from(
    a_lesson, finished_review, isolated_settings
):
    store = RunStore(isolated_settings["runs"])
    with pytest.raises(NotAllowedError, match="only a teacher may choose the run the class starts from"):
        set_lesson_base(store, a_lesson.id, account_user(ADA, STUDENT))
    assert lesson_base_id(store.root) is None
    with pytest.raises(InvalidInputError, match="is a label review"):
        set_lesson_base(store, finished_review.id, account_user(LEE, TEACHER))
    set_lesson_base(store, a_lesson.id, account_user(LEE, TEACHER))
    assert lesson_base(store).id == a_lesson.id
    ServiceClient(store.root).delete(a_lesson.id, account_user(LEE, TEACHER))
    assert lesson_base(store) is None  # in the trash: no student is sent to it


def test_the_teachers_choice_opens_every_students_train_page_on_it_and_the_board_shows_it(
    a_lesson, isolated_settings
):
    store = RunStore(isolated_settings["runs"])
    at = open_page("train", signed_in_as=LEE, viewed_run=a_lesson.id)
    at.button(key=f"lesson_{a_lesson.id}").click().run()
    assert not at.exception and lesson_base_id(store.root) == a_lesson.id
    assert "The class starts from this run" in " ".join(caption.value for caption in at.caption)
    # Ada lists only her own runs, and has none: her Train page opens on a new head for the teacher's run.
    at = open_page("train", signed_in_as=ADA, runs_scope="mine")
    assert not at.exception
    assert at.radio(key="train_recipe").value == "from_run"
    assert at.selectbox(key="train_base_run").value == a_lesson.id
    assert "The class starts from the teacher's run" in at.info[0].value  # her teacher, not "a classmate"
    at.button(key="train_from_run").click().run()
    assert not at.exception and at.success[0].value.startswith("Queued run ")
    [hers] = [summary for summary in store.runs() if summary.owner_name == "Ada"]
    assert (hers.base_run, hers.kind) == (a_lesson.id, "transfer")
    # Her run finished above the teacher's: the board says so beside the starting run's own figure.
    rewrite_status(hers.run, "finished", test_balanced_accuracy=0.9, started=1.0)
    rewrite_status(a_lesson, "finished", test_balanced_accuracy=0.8)
    board = open_page("board", signed_in_as=ADA)
    assert not board.exception
    assert [metric.value for metric in board.metric] == ["90.0%", "80.0%"]
    assert "1 of the 1 tested run(s) started from it score above it" in board.caption[0].value
