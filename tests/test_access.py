"""Who may do what, as a matrix: every action of the lab's access table, tried by a student and by a teacher on
their own run, a classmate's and a teacher's, through the library (each refusal a NotAllowedError) and through the
pages (which buttons each sees). The expected matrix is written here by hand from the policy, not read from the
table; a new action without a line here fails the test. And no ServiceClient method runs without saying who asks."""

import inspect
import secrets

import pytest

from galaxy_core.answers.review import class_decisions, load_review, record_review_decisions, review_decisions
from galaxy_core.classroom import class_folder
from galaxy_core.classroom.access import Action, NotAllowedError
from galaxy_core.classroom.challenge import ChallengeRules, list_challenges, set_up_challenge
from galaxy_core.classroom.lesson import set_lesson_base
from galaxy_core.classroom.names import board_shows_names, show_names_on_board, visible_name
from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, TEACHER, User
from galaxy_core.classroom.serving import server_settings
from galaxy_core.classroom.submissions import grade_book_csv, submit_run
from galaxy_core.settings import load_settings
from galaxy_core.training import RunState
from galaxy_core.training.client import QueueFullError, ServiceClient, new_run
from tests.helpers import account_user, copy_of_run, open_page, school_account, tiny_config, write_private_folder

ADA, BOB = User("ada", "Ada", STUDENT), User("bob", "Bob", STUDENT)
LEE = User("lee", "Ms Lee", TEACHER)

# The policy, by hand: a student acts on their own runs and decision sets only; everyone queues runs of their own
# and decides on doubted labels (each person's decisions kept apart); the rest is the teacher's.
STUDENT_ON_THEIR_OWN = {
    "STOP",
    "RENAME",
    "DELETE",
    "RESTORE",
    "SEE_IN_TRASH",
    "TRAIN_ON_DECISIONS",
    "SEE_NAME",
    "TRAIN_AGAIN",
    "SUBMIT",
}
EVERYONE = {"QUEUE", "DECIDE_LABELS"}
TEACHER_ONLY = {
    "EXCEED_STUDENT_LIMITS",
    "EMPTY_TRASH",
    "SEE_REVIEWERS",
    "SHOW_NAMES",
    "SEE_SERVER_SETTINGS",
    "SET_LESSON",
    "SET_UP_CHALLENGE",
    "SEE_PRIVATE_FIGURES",
}
TARGETS = ("own", "a classmate's", "a teacher's")


def owner_for(actor: User, target: str) -> User:
    if target == "own":
        return actor
    if target == "a classmate's":
        return BOB if actor != BOB else ADA
    return MACHINE_TEACHER if actor == LEE else LEE


def expected(actor: User, action: str, target: str) -> bool:
    if actor.role == TEACHER or action in EVERYONE:
        return True
    return action in STUDENT_ON_THEIR_OWN and target == "own"


class Lab:
    """A runs folder with a finished label review, a finished run and a challenge on its dataset, where each action
    is tried for real."""

    def __init__(self, runs, review, finished):
        self.client = ServiceClient(runs)
        self.runs, self.review, self.finished = runs, review, finished
        self.image = load_review(review.summary(), MACHINE_TEACHER).doubts[0].image
        self.settings = load_settings()
        self.private = write_private_folder(runs.parent / "private")
        self.challenge = self.challenge_of(MACHINE_TEACHER)

    def run_of(self, owner: User, trashed: bool = False):
        run = new_run(self.client.store, tiny_config(), owner)
        if trashed:
            self.client.delete(run.id, MACHINE_TEACHER)
        return run

    def try_action(self, action: str, actor: User, owner: User) -> bool:
        """Whether `actor` could take `action` on something of `owner`'s; checks that what was allowed happened."""
        try:
            return getattr(self, action.lower())(actor, owner)
        except NotAllowedError:
            return False

    def queue(self, actor, owner):
        return self.client.submit(tiny_config(), actor).summary().owner_id == actor.id

    def exceed_student_limits(self, actor, owner):
        self.run_of(actor)
        waiting = sum(summary.owner_id == actor.id for summary in self.client.store.runs(active_only=True))
        try:  # as many waiting as a student may have here
            ServiceClient(self.runs, max_waiting_per_student=waiting).submit(tiny_config(), actor)
        except QueueFullError:
            return False
        return True

    def stop(self, actor, owner):
        run = self.run_of(owner)
        self.client.stop(run.id, actor)
        return run.state() is RunState.STOPPED

    def rename(self, actor, owner):
        run = self.run_of(owner)
        self.client.rename(run.id, "# *mine* <b>now</b>", actor)
        return run.title() == "# *mine* <b>now</b>"  # kept as typed

    def delete(self, actor, owner):
        run = self.run_of(owner)
        self.client.delete(run.id, actor)
        return run.id not in self.client.store.run_ids()

    def restore(self, actor, owner):
        run = self.run_of(owner, trashed=True)
        self.client.restore(run.id, actor)
        return run.id in self.client.store.run_ids()

    def see_in_trash(self, actor, owner):
        run = self.run_of(owner, trashed=True)
        return run.id in [summary.id for summary in self.client.trashed(actor)]

    def empty_trash(self, actor, owner):
        self.run_of(owner, trashed=True)
        self.client.empty_trash(actor)
        return self.client.trashed(MACHINE_TEACHER) == []

    def decide_labels(self, actor, owner):
        record_review_decisions(self.review, {self.image: "rejected"}, actor)
        return review_decisions(self.review, actor) == {self.image: "rejected"}

    def train_on_decisions(self, actor, owner):
        record_review_decisions(self.review, {self.image: "accepted"}, owner)
        return review_decisions(self.review, actor, owner.id) == {self.image: "accepted"}

    def see_reviewers(self, actor, owner):
        return owner.id in class_decisions(self.review, actor)

    def show_names(self, actor, owner):
        show_names_on_board(self.runs, True, actor)
        shown = board_shows_names(self.runs)
        show_names_on_board(self.runs, False, MACHINE_TEACHER)
        return shown

    def train_again(self, actor, owner):
        run = self.run_of(owner)
        return self.client.config_to_train_again(run.id, actor).seed == run.config()["seed"]

    def set_lesson(self, actor, owner):
        set_lesson_base(self.client.store, None, actor)  # no starting run: the right is the same as for one
        return (class_folder(self.runs) / "lesson.json").is_file()

    def see_server_settings(self, actor, owner):
        return f"Runs: {self.runs.resolve()}" in server_settings(load_settings(), actor)

    def challenge_of(self, actor):
        dataset, rules = self.finished.summary().dataset, ChallengeRules()
        return set_up_challenge(self.runs, "Spring", dataset, str(self.private), rules, actor, self.settings)

    def set_up_challenge(self, actor, owner):
        return self.challenge_of(actor).id in [challenge.id for challenge in list_challenges(self.runs)]

    def submit(self, actor, owner):
        run = copy_of_run(self.finished, owner, secrets.token_hex(3))
        submission = submit_run(self.settings, self.challenge.id, run.id, actor)
        return submission.student_id == owner.id  # it counts for the run's owner

    def see_private_figures(self, actor, owner):
        return "private balanced accuracy" in grade_book_csv(self.settings, self.challenge, actor)

    def see_name(self, actor, owner):
        return visible_name(owner.id, owner.name, actor, board_shows_names(self.runs), "a classmate") == owner.name


def test_every_action_of_the_table_has_its_line_here():
    assert set(Action.__members__) == EVERYONE | STUDENT_ON_THEIR_OWN | TEACHER_ONLY
    assert not (EVERYONE & STUDENT_ON_THEIR_OWN or EVERYONE & TEACHER_ONLY or STUDENT_ON_THEIR_OWN & TEACHER_ONLY)


@pytest.mark.parametrize("actor", [ADA, LEE], ids=["a student", "a teacher"])
def test_the_authorization_matrix_through_the_library(
    actor, finished_review, finished_run, isolated_settings, queue_that_never_starts
):
    lab = Lab(isolated_settings["runs"], finished_review, finished_run)
    got, wanted = {}, {}
    for action in Action.__members__:
        for target in TARGETS:
            got[action, target] = lab.try_action(action, actor, owner_for(actor, target))
            wanted[action, target] = expected(actor, action, target)
    assert got == wanted


def test_no_service_client_method_runs_without_saying_who_asks():
    """Every public method of ServiceClient that acts or lists for someone takes `user`, with no default; the few
    that only read the service or follow a run are named here."""
    reads_only = {"follow", "service", "ensure_service", "from_settings"}
    for name, method in inspect.getmembers(ServiceClient, inspect.isfunction):
        if name.startswith("_") or name in reads_only:
            continue
        parameter = inspect.signature(method).parameters.get("user")
        assert parameter is not None, f"ServiceClient.{name} does not say who asks"
        assert parameter.default is inspect.Parameter.empty, f"ServiceClient.{name} defaults its user"
    for function in (new_run, record_review_decisions, review_decisions, load_review, class_decisions):
        parameters = inspect.signature(function).parameters
        who = parameters.get("user") or parameters.get("owner")
        assert who is not None and who.default is inspect.Parameter.empty, function.__name__


CLAIMS = {
    "Ada": school_account("ada@school.org", "Ada"),
    "Bob": school_account("bob@school.org", "Bob"),
    "Ms Lee": school_account("lee@school.org", "Ms Lee"),
}
PEOPLE = {"Ada": account_user(CLAIMS["Ada"], STUDENT), "Bob": account_user(CLAIMS["Bob"], STUDENT)}
PEOPLE["Ms Lee"] = account_user(CLAIMS["Ms Lee"], TEACHER)


@pytest.fixture
def oidc_class(monkeypatch, queue_that_never_starts):
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    monkeypatch.setenv("GALAXY_LAB_TEACHERS", "lee@school.org")


@pytest.mark.parametrize("viewer", ["Ada", "Ms Lee"])
def test_the_train_page_shows_each_person_the_buttons_the_table_allows(
    viewer, oidc_class, finished_review, isolated_settings
):
    actor = PEOPLE[viewer]
    client = ServiceClient(isolated_settings["runs"])
    others = {
        "own": actor,
        "a classmate's": PEOPLE["Bob"],
        "a teacher's": PEOPLE["Ms Lee" if viewer == "Ada" else "Ada"],
    }
    if viewer == "Ms Lee":
        others["a teacher's"] = User("mr-park", "Mr Park", TEACHER)
    trashed = {target: new_run(client.store, tiny_config(), owner) for target, owner in others.items()}
    for target, run in trashed.items():
        client.rename(run.id, f"trashed {target}", MACHINE_TEACHER)
        client.delete(run.id, MACHINE_TEACHER)
    for target, owner in others.items():
        run = new_run(client.store, tiny_config(), owner)  # queued: it can be stopped
        at = open_page("train", signed_in_as=CLAIMS[viewer], viewed_run=run.id, runs_scope="class")
        assert not at.exception
        buttons = [button.key for button in at.button]
        assert (f"stop_{run.id}" in buttons) is expected(actor, "STOP", target), target
        manage = "Title, disk, delete" in [expander.label for expander in at.expander]
        assert manage is expected(actor, "RENAME", target), target
    listed = next(expander for expander in at.expander if expander.label.startswith("Trash"))
    restorable = {target for target in trashed if f"trashed {target}" in " ".join(t.value for t in listed.text)}
    assert restorable == {target for target in TARGETS if expected(actor, "SEE_IN_TRASH", target)}
    assert ("empty_trash" in [button.key for button in at.button]) is expected(actor, "EMPTY_TRASH", "own")


@pytest.mark.parametrize("viewer", ["Ada", "Ms Lee"])
def test_the_review_board_and_home_pages_show_the_teachers_controls_to_teachers_only(
    viewer, oidc_class, finished_review, isolated_settings
):
    record_review_decisions(finished_review, {"any": "accepted"}, PEOPLE["Bob"])
    at = open_page("review", signed_in_as=CLAIMS[viewer])
    assert not at.exception
    class_view = any(expander.label.startswith("The class's decisions") for expander in at.expander)
    assert class_view is expected(PEOPLE[viewer], "SEE_REVIEWERS", "a classmate's")
    at = open_page("board", signed_in_as=CLAIMS[viewer])
    assert not at.exception
    toggle = "board_show_names" in [toggle.key for toggle in at.toggle]
    assert toggle is expected(PEOPLE[viewer], "SHOW_NAMES", "own")
    at = open_page("home", signed_in_as=CLAIMS[viewer])
    folders = "Settings in force" in [expander.label for expander in at.expander]
    assert folders is expected(PEOPLE[viewer], "SEE_SERVER_SETTINGS", "own")
    assert (str(isolated_settings["runs"]) in " ".join(code.value for code in at.code)) is folders


def test_emptying_the_trash_asks_first_and_keeps_the_runs_until_confirmed(oidc_class, isolated_settings, finished_run):
    client = ServiceClient(isolated_settings["runs"])
    client.delete(finished_run.id, MACHINE_TEACHER)
    at = open_page("train", signed_in_as=CLAIMS["Ms Lee"])
    at.button(key="empty_trash").click().run()
    assert not at.exception and "Delete the 1 run(s) in the trash for good?" in at.warning[0].value
    assert [summary.id for summary in client.trashed(MACHINE_TEACHER)] == [finished_run.id]  # asked, not done
    at.button(key="empty_trash_cancelled").click().run()
    assert "empty_trash_confirmed" not in [button.key for button in at.button]
    assert len(client.trashed(MACHINE_TEACHER)) == 1
    at.button(key="empty_trash").click().run()
    at.button(key="empty_trash_confirmed").click().run()
    assert not at.exception and client.trashed(MACHINE_TEACHER) == []
