"""The Challenge page in AppTest (auth = "oidc"): the teacher sets a challenge up (refused with the reason where the
private folder lies in a data root), a student submits her run, and nothing private reaches her page (the private
folder, its size, any private figure) until the teacher reveals the figures."""

import shutil

import pytest

from galaxy_core.classroom.challenge import list_challenges, submissions_of
from galaxy_core.classroom.people import STUDENT
from galaxy_core.settings import load_settings
from tests.helpers import (
    PRIVATE_COUNTS,
    account_user,
    challenge_on,
    copy_of_run,
    markdown_texts,
    open_page,
    school_account,
    score_queued,
    unescaped,
    write_private_folder,
)

ADA = school_account("ada@school.org", "Ada")
LEE = school_account("lee@school.org", "Ms Lee")


@pytest.fixture
def a_challenge(monkeypatch, finished_run, tmp_path):
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    monkeypatch.setenv("GALAXY_LAB_TEACHERS", "lee@school.org")
    monkeypatch.setattr("galaxy_core.training.client.ensure_supervisor", lambda root: False)
    made = challenge_on(finished_run, write_private_folder(tmp_path / "hidden-galaxies"))
    run = copy_of_run(finished_run, account_user(ADA, STUDENT), "ada", test_balanced_accuracy=0.7)
    shutil.rmtree(finished_run.path)
    return load_settings(), made, run


def page_text(at) -> str:
    tables = " ".join(frame.value.to_csv() for frame in at.dataframe)
    return " ".join(markdown_texts(at)) + " " + " ".join(unescaped(e.value) for e in at.caption) + " " + tables


def test_a_student_submits_and_sees_nothing_private_until_the_reveal(a_challenge):
    settings, made, run = a_challenge
    at = open_page("challenge", signed_in_as=ADA)
    assert not at.exception
    assert at.selectbox(key="submit_run").value == run.id
    at.button(key="challenge_submit").click().run()
    assert not at.exception and at.success, [e.value for e in at.error]
    [submission] = submissions_of(settings.runs_dir, made.id)
    assert (submission.student_name, submission.run_id) == ("Ada", run.id)
    score_queued(settings)
    at = open_page("challenge", signed_in_as=ADA)
    text = page_text(at)
    assert "hidden-galaxies" not in text and f"{sum(PRIVATE_COUNTS)} private" not in text
    assert at.dataframe[0].value["private figure"].isna().all()  # her submissions: scored, not shown
    assert "private rank" not in at.dataframe[-1].value.columns  # the public board
    assert "challenge_reveal" not in [button.key for button in at.button]

    teacher = open_page("challenge", signed_in_as=LEE)
    assert f"{sum(PRIVATE_COUNTS)} private images in" in page_text(teacher) and "hidden-galaxies" in page_text(teacher)
    assert teacher.dataframe[-1].value["private figure"].notna().all()  # the teacher sees them before the reveal
    teacher.button(key="challenge_reveal").click().run()
    assert list_challenges(settings.runs_dir)[0].revealed

    at = open_page("challenge", signed_in_as=ADA)
    board = at.dataframe[-1].value
    assert board["private rank"].tolist() == [1] and board["private figure"].notna().all()


def test_a_private_folder_in_a_data_root_is_refused_with_the_reason(monkeypatch, isolated_settings):
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    monkeypatch.setenv("GALAXY_LAB_TEACHERS", "lee@school.org")
    write_private_folder(isolated_settings["data"] / "answers")
    at = open_page("challenge", signed_in_as=LEE)
    at.text_input[0].input("Spring")
    at.text_input[1].input(str(isolated_settings["data"] / "answers"))
    at.button[0].click().run()
    assert any("inside the data root" in e.value for e in at.error)
    assert not list_challenges(load_settings().runs_dir)
    student = open_page("challenge", signed_in_as=ADA)
    assert not student.exception and not student.expander  # a student has no set-up form
