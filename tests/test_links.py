"""A link opens the run it names: from "My runs", a classmate's or the teacher's run switches the menus to the
class's runs (once: the person may switch back); a run a page cannot show is said, not replaced in silence."""

from streamlit.testing.v1 import AppTest

from galaxy_core.classroom.people import STUDENT, TEACHER
from tests.helpers import PAGE_TIMEOUT, REPO_ROOT, account_user, give_run, open_page, school_account, unescaped

ADA = school_account("ada@school.org", "Ada")
LEE = school_account("lee@school.org", "Ms Lee")


def _lab(monkeypatch, run) -> None:
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    monkeypatch.setenv("GALAXY_LAB_TEACHERS", "lee@school.org")
    give_run(run, account_user(LEE, TEACHER))


def _opened(link: dict, claims: dict) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT)
    at.user = {"is_logged_in": True, **claims}
    for key, value in link.items():
        at.query_params[key] = value
    return at.run()


def test_a_link_to_the_teachers_run_switches_a_students_menus_to_the_class(finished_run, monkeypatch):
    _lab(monkeypatch, finished_run)
    at = _opened({"evaluate_run": finished_run.id}, ADA)
    assert not at.exception
    assert at.sidebar.radio(key="runs_scope").value == "class"
    assert f"This link opens run {finished_run.id}, which is not yours" in unescaped(at.info[0].value)
    at.sidebar.radio(key="runs_scope").set_value("mine").run()  # followed once: her choice stands
    assert at.sidebar.radio(key="runs_scope").value == "mine" and not at.info
    # Her own run's link, and a link to no run, leave her menus alone.
    give_run(finished_run, account_user(ADA, STUDENT))
    assert _opened({"evaluate_run": finished_run.id}, ADA).sidebar.radio(key="runs_scope").value == "mine"
    assert _opened({"evaluate_run": "20990101-000000-gone-0000"}, ADA).sidebar.radio(key="runs_scope").value == "mine"


def test_a_page_says_why_it_does_not_show_the_run_a_link_names(finished_run, finished_transfer, monkeypatch):
    _lab(monkeypatch, finished_run)
    give_run(finished_transfer, account_user(ADA, STUDENT))
    at = open_page("evaluate", signed_in_as=ADA, link={"evaluate_run": finished_run.id}, runs_scope="mine")
    assert not at.exception
    assert "cannot be shown on this page: the menus list only your runs" in at.warning[0].value
    assert at.selectbox(key="evaluate_run").value == finished_transfer.id  # hers, said to be instead
    gone = open_page("evaluate", signed_in_as=ADA, link={"evaluate_run": "20990101-000000-gone-0000"})
    assert "which is not in the lab (deleted, or in the trash)" in gone.warning[0].value
    followed = open_page("evaluate", signed_in_as=ADA, link={"evaluate_run": finished_run.id}, runs_scope="class")
    assert not followed.warning and followed.selectbox(key="evaluate_run").value == finished_run.id
