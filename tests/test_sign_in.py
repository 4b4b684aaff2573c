"""Signing in without letting anyone keep someone else out or in: the throttle of wrong codes (by source, never by
name), known browsers, the sign-in route over HTTP from several addresses, identities from an OpenID Connect
provider's claims, and what `galaxy-lab serve` warns about."""

import time
from types import SimpleNamespace

import pytest

from galaxy_core.classroom.identity import oidc_user
from galaxy_core.classroom.people import STUDENT, TEACHER
from galaxy_core.classroom.roster import Roster
from galaxy_core.classroom.serving import exposure_warnings, is_loopback
from galaxy_core.classroom.sessions import Sessions
from galaxy_core.classroom.throttle import (
    FORGET_AFTER,
    FREE_PER_ADDRESS,
    FREE_PER_NAME,
    LONGEST_WAIT,
    Attempt,
    KnownBrowsers,
    SignInThrottle,
)

NOW = 1_000_000.0
STUDENT_LAPTOP, TEACHER_LAPTOP = "10.0.0.66", "10.0.0.2"


def fail(throttle: SignInThrottle, attempt: Attempt, times: int, now: float = NOW) -> None:
    for _ in range(times):
        throttle.failed(attempt, now=now)


def test_wrong_codes_slow_their_source_for_that_name_and_no_one_else(isolated_settings):
    throttle = SignInThrottle(isolated_settings["runs"])
    mischief = Attempt("teacher", STUDENT_LAPTOP)
    fail(throttle, mischief, FREE_PER_NAME)
    assert throttle.wait(mischief, now=NOW) == 0  # a few typos cost nothing
    fail(throttle, mischief, 1)
    assert throttle.wait(mischief, now=NOW) == 1.0  # then 1 s, 2 s, 4 s... after the last wrong code
    fail(throttle, mischief, 2)
    assert throttle.wait(mischief, now=NOW) == 4.0
    assert throttle.wait(mischief, now=NOW + 3) == 1.0  # the wait runs from the last wrong code
    assert throttle.wait(Attempt("ada", STUDENT_LAPTOP), now=NOW) == 0  # the student's own name is not slowed
    fail(throttle, mischief, 20)
    assert throttle.wait(mischief, now=NOW) == LONGEST_WAIT
    # The name is not locked: the teacher, from another address, gets in at once.
    assert throttle.wait(Attempt("teacher", TEACHER_LAPTOP), now=NOW) == 0
    assert throttle.wait(mischief, now=NOW + FORGET_AFTER + 1) == 0  # an hour later it is forgotten


def test_an_address_guessing_across_names_waits_and_a_known_browser_there_does_not(isolated_settings):
    throttle = SignInThrottle(isolated_settings["runs"])
    for number in range(FREE_PER_ADDRESS + 2):  # one wrong code for each of many names
        throttle.failed(Attempt(f"student {number}", STUDENT_LAPTOP), now=NOW)
    assert throttle.wait(Attempt("cy", STUDENT_LAPTOP), now=NOW) == 2.0  # 22 from the address: 2 over, 2 s
    # Behind the school's one address: a browser that signed in as Cy before is counted on its own.
    assert throttle.wait(Attempt("cy", STUDENT_LAPTOP, browser="cy's laptop"), now=NOW) == 0


def test_unlock_a_new_code_and_the_right_code_clear_a_name(isolated_settings):
    runs = isolated_settings["runs"]
    throttle, roster = SignInThrottle(runs), Roster(runs)
    roster.add("Ada")
    at_teacher, at_ada, at_bob = (Attempt(name, STUDENT_LAPTOP) for name in ("teacher", "ada", "bob"))
    for attempt in (at_teacher, at_ada, at_bob):
        fail(throttle, attempt, FREE_PER_NAME + 3, now=time.time())
    assert all(throttle.wait(attempt) > 0 for attempt in (at_teacher, at_ada, at_bob))
    assert throttle.unlock("teacher") == FREE_PER_NAME + 3  # galaxy-lab roster unlock teacher
    assert throttle.wait(at_teacher) == 0 and throttle.wait(at_ada) > 0
    roster.new_code("Ada")  # a new code clears its name
    assert throttle.wait(at_ada) == 0 and throttle.wait(at_bob) > 0
    throttle.succeeded(at_bob)  # the right code clears that source's wrong codes for the name
    assert throttle.wait(at_bob) == 0
    fail(throttle, at_bob, FREE_PER_NAME + 3, now=time.time())
    assert throttle.unlock() == FREE_PER_NAME + 3 and throttle.wait(at_bob) == 0  # roster unlock, no name: all


def test_a_known_browser_cookie_is_signed_for_one_name_and_dated(isolated_settings):
    known = KnownBrowsers(isolated_settings["runs"])
    cookie = known.cookie("teacher", now=NOW)
    browser = known.browser(cookie, "teacher", now=NOW + 10)
    assert browser is not None and len(browser) == 16
    assert known.browser(cookie, "ada", now=NOW) is None  # another name's
    payload = cookie.split(".")[0]
    forged = KnownBrowsers(isolated_settings["data"]).cookie("teacher", now=NOW)  # signed with another key
    for bad in (forged, payload + ".x", "", None, "a.b.c", cookie + "x"):
        assert known.browser(bad, "teacher", now=NOW) is None, bad
    assert known.browser(cookie, "teacher", now=NOW + 181 * 86400) is None  # expired


@pytest.fixture
def roster_class(isolated_settings, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_AUTH", "roster")
    roster = Roster(isolated_settings["runs"])
    return {"Ada": roster.add("Ada"), "teacher": roster.new_teacher_secret(), "runs": isolated_settings["runs"]}


def sign_in_client(address: str):
    """An HTTP client of the sign-in route, seen from `address`."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from galaxy_core.classroom.sign_in import ROUTES

    return TestClient(Starlette(routes=ROUTES), client=(address, 50000), follow_redirects=False)


def post(client, name: str, code: str):
    return client.post("/lab/sign-in", data={"name": name, "code": code})


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_a_student_posting_wrong_codes_keeps_nobody_out(roster_class):
    from galaxy_core.classroom.sign_in import COOKIE

    mischief, teacher, ada = sign_in_client(STUDENT_LAPTOP), sign_in_client(TEACHER_LAPTOP), sign_in_client("10.0.0.3")
    for _ in range(FREE_PER_NAME + 2):
        post(mischief, "teacher", "wrong-guess")
        post(mischief, "Ada", "wrong-guess")
    refused = post(mischief, "teacher", roster_class["teacher"])  # even the right secret waits, from there
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "try again in" in refused.text and "galaxy-lab roster unlock teacher" in refused.text
    assert "A new code from your teacher clears it" in post(mischief, "Ada", roster_class["Ada"]).text
    signed_in = post(teacher, "teacher", roster_class["teacher"])
    assert signed_in.status_code == 303
    assert Sessions(roster_class["runs"]).user(signed_in.cookies[COOKIE]).role == TEACHER
    assert post(ada, "Ada", roster_class["Ada"]).status_code == 303
    SignInThrottle(roster_class["runs"]).unlock("teacher")
    assert post(mischief, "teacher", roster_class["teacher"]).status_code == 303


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_a_browser_that_signed_in_before_is_not_slowed_by_its_shared_address(roster_class):
    from galaxy_core.classroom.sign_in import KNOWN_BROWSER_COOKIE

    school = "203.0.113.9"  # every browser of the school behind one address
    teacher, mischief = sign_in_client(school), sign_in_client(school)
    assert post(teacher, "teacher", roster_class["teacher"]).status_code == 303
    assert KNOWN_BROWSER_COOKIE in teacher.cookies
    for _ in range(FREE_PER_NAME + 4):
        post(mischief, "teacher", "wrong-guess")
    assert post(mischief, "teacher", roster_class["teacher"]).status_code == 429
    assert post(teacher, "teacher", roster_class["teacher"]).status_code == 303  # the known browser gets in


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_a_sign_out_address_does_not_exist(roster_class):
    client = sign_in_client(TEACHER_LAPTOP)
    assert client.get("/lab/sign-out").status_code == 404


LEE = {"iss": "https://idp.school.org", "sub": "f3a1", "email": "lee@school.org", "name": "Ms Lee"}
SETTINGS = SimpleNamespace(teachers=("lee@school.org",), sign_in_domains=(), trust_unverified_email=False)


def test_an_unverified_address_is_nobodys_teacher_and_each_account_is_its_own_user():
    impostor, why = oidc_user({**LEE, "sub": "9c0d", "email_verified": False, "name": "Eve"}, SETTINGS)
    assert why == "" and impostor.role == STUDENT and impostor.name == "Eve"
    lee, _ = oidc_user({**LEE, "email_verified": True}, SETTINGS)
    assert lee.role == TEACHER and lee.id == "https://idp.school.org#f3a1"
    assert impostor.id != lee.id  # two accounts with one address are two users
    assert oidc_user(LEE, SETTINGS)[0].role == STUDENT  # no email_verified claim: not verified
    relaxed = SimpleNamespace(**{**vars(SETTINGS), "trust_unverified_email": True})
    assert oidc_user(LEE, relaxed)[0].role == TEACHER
    assert oidc_user({**LEE, "iss": ""}, SETTINGS) == (None, oidc_user({**LEE, "iss": ""}, SETTINGS)[1])
    assert "no issuer and subject" in oidc_user({"email": "lee@school.org"}, SETTINGS)[1]


def test_a_sign_in_domain_needs_a_verified_address():
    school_only = SimpleNamespace(**{**vars(SETTINGS), "sign_in_domains": ("school.org",)})
    user, why = oidc_user({**LEE, "email_verified": False}, school_only)
    assert user is None and "has not verified your e-mail address" in why
    user, why = oidc_user({**LEE, "email": "eve@other.org", "email_verified": True}, school_only)
    assert user is None and why == "this lab is for @school.org accounts; you signed in as eve@other.org"
    assert oidc_user({**LEE, "email_verified": True}, school_only)[0].role == TEACHER


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("", False),
        (None, False),
        ("10.0.0.5", False),
        ("::", False),
        ("lab.school.org", False),
    ],
)
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


def test_a_lab_without_sign_in_served_beyond_this_machine_says_so(isolated_settings):
    none = SimpleNamespace(auth="none", trust_unverified_email=False, runs_dir=isolated_settings["runs"])
    assert exposure_warnings(none, "127.0.0.1") == []
    (warning,) = exposure_warnings(none, None)
    assert "anyone who can open it is the teacher" in warning
    oidc = SimpleNamespace(auth="oidc", trust_unverified_email=True, runs_dir=isolated_settings["runs"])
    assert "can sign in as a teacher" in exposure_warnings(oidc, "0.0.0.0")[0]
    roster = SimpleNamespace(auth="roster", trust_unverified_email=False, runs_dir=isolated_settings["runs"])
    assert exposure_warnings(roster, None) == [
        "The roster has no teacher secret yet: galaxy-lab roster teacher makes one."
    ]


def test_serve_says_who_signs_in_and_warns_of_an_open_lab(isolated_settings):
    from galaxy_core.classroom.serving import sign_in_summary

    runs = isolated_settings["runs"]
    Roster(runs).add("Ada")
    roster = SimpleNamespace(
        auth="roster", trust_unverified_email=False, runs_dir=runs, source="lab.toml", trusted_proxies=("10.0.0.1",)
    )
    lines = sign_in_summary(roster, None, 8501)
    assert lines[0] == "serving on every address of this machine, port 8501"
    assert "sign-in: roster, 1 student(s); the teacher signs in as 'teacher' (secret not set)" in lines
    assert "client addresses from X-Forwarded-For of: 10.0.0.1" in lines
    assert lines[-1].startswith("WARNING: The roster has no teacher secret yet")
    none = SimpleNamespace(**{**vars(roster), "auth": "none"})
    assert [line for line in sign_in_summary(none, "0.0.0.0", 80) if line.startswith("WARNING")] == [
        f"WARNING: {exposure_warnings(none, '0.0.0.0')[0]}"
    ]
    oidc = SimpleNamespace(**{**vars(roster), "auth": "oidc", "teachers": ("lee@school.org",), "sign_in_domains": ()})
    assert "teachers (by verified e-mail): lee@school.org" in sign_in_summary(oidc, None, 80)
