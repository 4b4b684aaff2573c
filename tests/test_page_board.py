"""A class in AppTest (auth = "oidc", st.user as the school's provider would set it): the class board and who sees
whose name, and the Train page's buttons for one's own runs and a classmate's, refused again by the library."""

import shutil

import pytest

from galaxy_core.classroom.access import NotAllowedError
from galaxy_core.classroom.people import STUDENT, TEACHER
from galaxy_core.training import Run
from galaxy_core.training.client import ServiceClient, new_run
from tests.helpers import (
    account_user,
    give_run,
    open_page,
    rewrite_status,
    saved_balanced_accuracy,
    school_account,
    tiny_config,
    wait_for,
)

ADA = school_account("ada@school.org", "Ada")
BOB = school_account("bob@school.org", "Bob")
LEE = school_account("lee@school.org", "Ms Lee")


@pytest.fixture
def a_class(monkeypatch, finished_run):
    """Runs of Ada (0.60 and 0.70), Bob (0.80) and the teacher (0.50), as their owners would have queued them."""
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    monkeypatch.setenv("GALAXY_LAB_TEACHERS", "lee@school.org")
    runs = {}
    for name, who, figure in [("ada1", ADA, 0.6), ("ada2", ADA, 0.7), ("bob", BOB, 0.8), ("lee", LEE, 0.5)]:
        run = Run(finished_run.path.with_name(f"{finished_run.id}-{name}"))
        shutil.copytree(finished_run.path, run.path)
        role = TEACHER if who is LEE else STUDENT
        give_run(run, account_user(who, role))
        rewrite_status(run, "finished", test_balanced_accuracy=figure)
        runs[name] = run
    shutil.rmtree(finished_run.path)
    return runs


def board(at) -> list[tuple]:
    table = at.dataframe[0].value
    return list(zip(table["who"], table["best test balanced accuracy"], table["runs trained"], strict=True))


def test_the_board_names_only_oneself_until_the_teacher_shows_every_name(a_class):
    at = open_page("board", signed_in_as=ADA)
    assert not at.exception
    # By hand: Bob's best 0.80, Ada's best of two 0.70, the teacher's 0.50.
    assert board(at) == [("classmate 1", 0.8, 1), ("Ada", 0.7, 2), ("the teacher", 0.5, 1)]
    assert "board_show_names" not in [toggle.key for toggle in at.toggle]  # a student cannot choose
    teacher = open_page("board", signed_in_as=LEE)
    assert board(teacher)[0][0] == "Bob" and teacher.metric[0].value == "80.0%"
    teacher.toggle(key="board_show_names").set_value(True).run()
    assert [row[0] for row in board(open_page("board", signed_in_as=ADA))] == ["Bob", "Ada", "Ms Lee"]


def test_a_run_stopped_before_it_started_is_not_counted_as_trained(a_class):
    client = ServiceClient(a_class["bob"].path.parent)
    bob = account_user(BOB, STUDENT)
    for _ in range(2):  # queued, then stopped (or failed) before its training began
        run = new_run(client.store, tiny_config(), bob)
        client.stop(run.id, bob)
    rewrite_status(run, "failed", error="its dataset could not be read")
    assert board(open_page("board", signed_in_as=ADA))[0] == ("classmate 1", 0.8, 1)


def test_someone_without_a_tested_run_is_on_the_board_with_why_and_compare_points_to_the_class(a_class):
    rewrite_status(a_class["lee"], "running", test_balanced_accuracy=None)  # the teacher's only run is training
    at = open_page("board", signed_in_as=LEE)
    table = at.dataframe[0].value
    assert not at.exception and table["who"].tolist()[-1] == "Ms Lee"
    assert table["model"].tolist()[-1] == "no run with test results yet"
    # Bob has one run with results: Compare, on his own runs (a student's default), sends him to the class's.
    at = open_page("compare", signed_in_as=BOB, runs_scope="mine")
    assert not at.exception and "choose *The class's runs* in the sidebar" in at.info[0].value


def test_a_student_gets_no_button_for_a_classmates_run_and_the_library_refuses_it(a_class):
    bob_run, ada_run = a_class["bob"], a_class["ada1"]
    at = open_page("train", signed_in_as=ADA, viewed_run=bob_run.id, runs_scope="class")
    assert not at.exception
    assert "Title, disk, delete" not in [expander.label for expander in at.expander]
    at = open_page("train", signed_in_as=ADA, viewed_run=ada_run.id, runs_scope="class")
    assert "Title, disk, delete" in [expander.label for expander in at.expander]
    at.text_input[0].set_value("*mine* [link](http://x) :red[boo]")  # in a form: sent with its submit button
    at.button(key=f"FormSubmitter:rename_{ada_run.id}-Save the title").click().run()
    assert ada_run.title() == "*mine* [link](http://x) :red[boo]"
    header = next(m.value for m in at.markdown if ada_run.id in m.value)
    assert r"\*mine\* \[link\]\(http\://x\) \:red\[boo\]" in header  # shown as typed, not as Markdown
    client = ServiceClient(bob_run.path.parent)
    with pytest.raises(NotAllowedError, match="Ada may not delete run"):
        client.delete(bob_run.id, account_user(ADA, STUDENT))
    teacher = open_page("train", signed_in_as=LEE, viewed_run=bob_run.id, runs_scope="class")
    assert "Title, disk, delete" in [expander.label for expander in teacher.expander]


def test_nobody_signed_in_sees_only_the_sign_in(a_class):
    from streamlit.testing.v1 import AppTest

    from tests.helpers import PAGE_TIMEOUT, REPO_ROOT

    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1/oauth2callback", "cookie_secret": "x", "client_id": "x"}
    at.run()
    assert not at.exception
    assert [button.label for button in at.button] == ["Sign in with your school account"]
    assert not at.dataframe and not at.sidebar.radio
    unconfigured = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT).run()
    assert "an [auth] section in .streamlit/secrets.toml" in unconfigured.error[0].value


def test_one_button_makes_the_class_ensemble_of_each_persons_best_run(a_class):
    at = open_page("board", signed_in_as=ADA)
    at.button(key="board_make_ensemble").click().run()
    assert not at.exception and "Queued the ensemble of 3 runs" in at.success[0].value
    store = ServiceClient(a_class["bob"].path.parent).store
    ensemble = next(summary for summary in store.runs() if summary.kind == "ensemble")
    # By hand: Bob's best (his only run), Ada's best of two, the teacher's; the ensemble is Ada's run.
    assert ensemble.options["members"] == [a_class["bob"].id, a_class["ada2"].id, a_class["lee"].id]
    assert ensemble.owner_id == account_user(ADA, STUDENT).id
    finished = wait_for(lambda: store.get(ensemble.id).summary().has_test_results and store.get(ensemble.id).summary())
    at = open_page("board", signed_in_as=ADA)
    assert not at.exception
    assert board(at) == [("classmate 1", 0.8, 1), ("Ada", 0.7, 2), ("the teacher", 0.5, 1)]  # not one's own run
    together = at.dataframe[1].value
    same_answers = saved_balanced_accuracy(a_class["bob"])  # every member is a copy of one run's answers
    assert together["ensemble"].iloc[0] == pytest.approx(saved_balanced_accuracy(finished.run))
    assert together["its best member"].iloc[0] == pytest.approx(same_answers)
    assert together["members"].iloc[0] == 3
