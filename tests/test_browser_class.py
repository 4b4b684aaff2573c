"""A class on one server, in real browsers: students and a teacher signed in at once (each browser its own
cookies), through the lab's own roster and through a real OpenID Connect provider process (oidc-provider-mock on
127.0.0.1, with Streamlit's st.login). Each sees who they are; a student cannot stop, rename or delete a
classmate's run (no button, and the library refuses it again); a teacher can.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from galaxy_core.people import STUDENT, TEACHER, User
from galaxy_core.roster import Roster
from tests.helpers import browser_tabs, free_port, start_server, stop_server, stop_training_service, wait_for

pytestmark = pytest.mark.browser
ADA, BOB = User("ada", "Ada", STUDENT), User("bob", "Bob", STUDENT)


def give_run(template: Path, runs: Path, owner: User, suffix: str) -> str:
    """A copy of the session's trained run, made `owner`'s."""
    run_id = f"{template.name}-{suffix}"
    shutil.copytree(template, runs / run_id)
    config = json.loads((runs / run_id / "config.json").read_text())
    owned = {"owner": owner.id, "owner_name": owner.name, "owner_role": owner.role}
    (runs / run_id / "config.json").write_text(json.dumps({**config, **owned}))
    return run_id


def lab_server(base: Path, settings: str, port: int | None = None):
    """`galaxy-lab serve` with these settings, its working directory `base` (where .streamlit/secrets.toml is read)."""
    (base / "galaxy-lab.toml").write_text(settings)
    env = {
        **os.environ,
        "GALAXY_LAB_SETTINGS": str(base / "galaxy-lab.toml"),
        "GALAXY_LAB_CACHE_DIR": str(base / "cache"),
        "GALAXY_LAB_RUNS_DIR": str(base / "runs"),
    }
    port = port or free_port()
    command = [sys.executable, "-m", "galaxy_core.cli", "serve", "--headless", "--port", str(port)]
    return start_server(command, port=port, cwd=base, env=env, log=base / "server.log")


@pytest.fixture(scope="module")
def roster_lab(tmp_path_factory, _trained_run_template):
    base = tmp_path_factory.mktemp("roster-lab")
    (base / "runs").mkdir()
    roster = Roster(base / "runs")
    codes = {"Ada": roster.add("Ada"), "Bob": roster.add("Bob"), "teacher": roster.new_teacher_secret()}
    runs = {
        name: give_run(_trained_run_template, base / "runs", user, name) for name, user in (("ada", ADA), ("bob", BOB))
    }
    process, url = lab_server(base, 'auth = "roster"\n')
    yield url, codes, runs, base
    stop_server(process)
    stop_training_service(base / "runs")


def sign_in_with_the_roster(page, url: str, name: str, code: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Your name, as on the class list").fill(name)
    page.get_by_label("Your code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("stSidebar").get_by_text("Signed in as")).to_be_visible()


def open_run(page, url: str, run_id: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/train?train_selected_run={run_id}&runs_scope=class")
    expect(page.get_by_text(f"{run_id}", exact=False).first).to_be_visible()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def test_students_and_a_teacher_sign_in_with_the_roster_each_with_their_rights(roster_lab, request):
    from playwright.sync_api import expect

    url, codes, runs, base = roster_lab
    with browser_tabs(request, 3) as (ada, bob, teacher):
        seen_urls = []
        ada.on("request", lambda r: seen_urls.append(r.url))
        ada.goto(url)
        expect(ada.get_by_text("Sign in with your name and the code your teacher gave you")).to_be_visible()
        expect(ada.get_by_role("link", name="Train")).to_have_count(0)  # nothing of the lab before signing in
        ada.goto(f"{url}/lab/sign-in")
        ada.get_by_label("Your name, as on the class list").fill("Ada")
        ada.get_by_label("Your code").fill("wrong-code")
        ada.get_by_role("button", name="Sign in").click()
        expect(ada.get_by_text("That name and code do not match the class list")).to_be_visible()
        sign_in_with_the_roster(ada, url, "ada", codes["Ada"])
        expect(ada.get_by_test_id("stSidebar").get_by_text("Ada (student)")).to_be_visible()
        ada.reload()  # the sign-in survives a reload
        expect(ada.get_by_test_id("stSidebar").get_by_text("Ada (student)")).to_be_visible()
        sign_in_with_the_roster(bob, url, "Bob", codes["Bob"])
        sign_in_with_the_roster(teacher, url, "teacher", codes["teacher"])
        expect(teacher.get_by_test_id("stSidebar").get_by_text("teacher (teacher)")).to_be_visible()

        open_run(ada, url, runs["bob"])  # a classmate's run: no Stop, no title or delete
        expect(ada.get_by_text("Title, disk, delete")).to_have_count(0)
        open_run(ada, url, runs["ada"])  # her own: she may rename it
        ada.get_by_text("Title, disk, delete").click()
        ada.get_by_label("Title").fill("# mine *all* <b>mine</b>")
        ada.get_by_role("button", name="Save the title").click()
        # Shown as typed: no heading, no emphasis, no bold, no HTML.
        header = ada.get_by_test_id("stMarkdown").filter(has_text="# mine *all* <b>mine</b>")
        expect(header.first).to_be_visible()
        expect(header.first.locator("h1, em, b, strong:has-text('mine')")).to_have_count(0)

        open_run(teacher, url, runs["bob"])  # the teacher may delete anyone's run
        teacher.get_by_text("Title, disk, delete").click()
        # A click that lands while the page's fragment redraws can be lost: click once the app is idle.
        expect(teacher.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
        teacher.get_by_role("button", name="Move to the trash").click()
        expect(teacher.get_by_text("Trash: 1 run(s)")).to_be_visible()
        wait_for(lambda: not (base / "runs" / runs["bob"]).exists(), timeout=10)

        bob.goto(f"{url}/train?runs_scope=mine")  # Bob's own run went to the trash: he may restore it
        bob.get_by_text("Trash: 1 run(s)").click()
        bob.get_by_role("button", name="Restore").click()
        wait_for(lambda: (base / "runs" / runs["bob"]).exists(), timeout=10)

        ada.get_by_test_id("stSidebar").get_by_role("link", name="Sign out").click()
        expect(ada.get_by_label("Your code")).to_be_visible()
        ada.goto(url)
        expect(ada.get_by_text("Sign in with your name and the code your teacher gave you")).to_be_visible()
        assert not any(codes["Ada"] in seen or codes["Ada"].replace("-", "") in seen for seen in seen_urls)


@pytest.fixture(scope="module")
def oidc_lab(tmp_path_factory, _trained_run_template):
    """The lab with auth = "oidc" against oidc-provider-mock, a real provider process on 127.0.0.1."""
    import subprocess

    base = tmp_path_factory.mktemp("oidc-lab")
    (base / "runs").mkdir()
    provider_port = free_port()
    people = [("ada@school.org", "Ada"), ("lee@school.org", "Ms Lee"), ("eve@other.org", "Eve")]
    claims = [json.dumps({"sub": email, "email": email, "name": name}) for email, name in people]
    provider = subprocess.Popen(
        [str(Path(sys.executable).parent / "oidc-provider-mock"), "--port", str(provider_port)]
        + [argument for claim in claims for argument in ("--user-claims", claim)],
        stdout=(base / "provider.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    ada, lee = User("ada@school.org", "Ada", STUDENT), User("lee@school.org", "Ms Lee", TEACHER)
    runs = {"ada": give_run(_trained_run_template, base / "runs", ada, "ada")}
    runs["lee"] = give_run(_trained_run_template, base / "runs", lee, "lee")
    port = free_port()
    (base / ".streamlit").mkdir()
    (base / ".streamlit" / "secrets.toml").write_text(
        f'[auth]\nredirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a cookie secret for this test only, long enough"\n'
        'client_id = "galaxy-lab"\nclient_secret = "a client secret for this test only"\n'
        f'server_metadata_url = "http://127.0.0.1:{provider_port}/.well-known/openid-configuration"\n'
    )
    settings = 'auth = "oidc"\nteachers = ["lee@school.org"]\nsign_in_domains = ["school.org"]\n'
    process, url = lab_server(base, settings, port=port)
    yield url, runs
    stop_server(process)
    stop_training_service(base / "runs")
    provider.terminate()
    provider.wait(10)


def sign_in_with_the_school(page, url: str, email: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in with your school account").click()
    page.get_by_role("button", name=email).click()  # the provider's form


def test_students_and_a_teacher_sign_in_with_the_schools_provider(oidc_lab, request):
    from playwright.sync_api import expect

    url, runs = oidc_lab
    with browser_tabs(request, 3) as (ada, lee, eve):
        sign_in_with_the_school(ada, url, "ada@school.org")
        expect(ada.get_by_test_id("stSidebar").get_by_text("Ada (student)")).to_be_visible()
        ada.reload()
        expect(ada.get_by_test_id("stSidebar").get_by_text("Ada (student)")).to_be_visible()
        sign_in_with_the_school(lee, url, "lee@school.org")
        expect(lee.get_by_test_id("stSidebar").get_by_text("Ms Lee (teacher)")).to_be_visible()
        sign_in_with_the_school(eve, url, "eve@other.org")
        expect(eve.get_by_text("this lab is for @school.org accounts; you signed in as eve@other.org")).to_be_visible()
        expect(eve.get_by_role("link", name="Train")).to_have_count(0)

        open_run(ada, url, runs["lee"])  # the teacher's run: hers to change, not Ada's
        expect(ada.get_by_text("Title, disk, delete")).to_have_count(0)
        open_run(lee, url, runs["ada"])  # the teacher may change a student's run
        expect(lee.get_by_text("Title, disk, delete")).to_be_visible()
        ada.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
        ada.get_by_role("button", name="End session").click()  # the provider ends its own session too
        expect(ada.get_by_role("button", name="Sign in with your school account")).to_be_visible()
