"""Signing in to a lab with `auth = "roster"`: the form at /lab/sign-in (a name and the code the teacher handed out,
posted, never in a URL), and the session cookie it gives. An HTTP route of the server (serve.py mounts it beside
the app); the pages read the cookie through `st.context.cookies` and sign out through the lab's own Sign out
button, which ends the session on the server (galaxy_core.classroom.sessions). There is no sign-out address:
a link on any page cannot sign anyone out.

Wrong codes slow down where they come from (galaxy_core.classroom.throttle); the client's address is the one
Streamlit's server (uvicorn) reports, which believes a proxy's X-Forwarded-For only from the `trusted_proxies`
setting's addresses (galaxy-lab serve passes them on).

With another `auth`, the route says that this lab signs in some other way.
"""

from __future__ import annotations

import asyncio
import html
import math
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from galaxy_core.classroom.people import user_key
from galaxy_core.classroom.roster import TEACHER_NAME, Roster
from galaxy_core.classroom.sessions import SESSION_SECONDS, Sessions
from galaxy_core.classroom.throttle import KNOWN_BROWSER_SECONDS, Attempt, KnownBrowsers, SignInThrottle
from galaxy_core.settings import load_settings

COOKIE, KNOWN_BROWSER_COOKIE = "galaxy_lab_session", "galaxy_lab_known_browser"
SIGN_IN_PATH = "/lab/sign-in"
FAILURE_DELAY_SECONDS = 0.5
MAX_FIELD = 100

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · Galaxy CNN Lab</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;background:#0e1117;color:#fafafa;display:grid;place-items:center;
min-height:90vh}}form{{background:#262730;padding:2rem;border-radius:.6rem;width:min(22rem,90vw)}}
label{{display:block;margin:.8rem 0 .3rem}}input{{width:100%;padding:.5rem;border-radius:.3rem;border:1px solid #555;
background:#0e1117;color:#fafafa;box-sizing:border-box}}button{{margin-top:1.2rem;width:100%;padding:.6rem;
border:0;border-radius:.3rem;background:#ff4b4b;color:white;font-size:1rem}}.note{{color:#ffbd45}}</style>
</head><body><form method="post" action="{action}"><h2>Galaxy CNN Lab</h2>{note}
<label for="name">Your name, as on the class list</label><input id="name" name="name" autocomplete="username" required
value="{name}"><label for="code">Your code</label><input id="code" name="code" type="password"
autocomplete="current-password" required><button type="submit">Sign in</button>
<p><small>The teacher signs in as <em>teacher</em> with the teacher's secret.</small></p></form></body></html>"""


def _page(note: str = "", name: str = "", status: int = 200, headers: dict | None = None) -> HTMLResponse:
    shown = f'<p class="note">{html.escape(note)}</p>' if note else ""
    page = PAGE.format(action=SIGN_IN_PATH, note=shown, name=html.escape(name))
    return HTMLResponse(page, status_code=status, headers=headers)


def _same_origin(request: Request) -> bool:
    """A sign-in posted from this server's own page (another site cannot sign a visitor in as someone else)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def throttled_note(attempt: Attempt, seconds: float) -> str:
    """Why a sign-in was not even checked, and what helps."""
    clears = (
        "The teacher can clear it on the server: galaxy-lab roster unlock teacher."
        if attempt.name == TEACHER_NAME
        else "A new code from your teacher clears it."
    )
    return (
        f"Too many wrong codes for this name from {attempt.describe_source()}: try again in "
        f"{math.ceil(seconds)} s. {clears}"
    )


async def sign_in(request: Request) -> Response:
    settings = load_settings()
    if settings.auth != "roster":
        return _page(f"This lab does not sign in with a class list (auth = {settings.auth}).", status=404)
    if request.method == "GET":
        return _page()
    if not _same_origin(request):
        return _page("This sign-in did not come from the lab's own page.", status=403)
    form = await request.form()
    name, code = str(form.get("name", ""))[:MAX_FIELD], str(form.get("code", ""))[:MAX_FIELD]
    known, key = KnownBrowsers(settings.runs_dir), user_key(name)
    address = request.client.host if request.client else "unknown"
    attempt = Attempt(key, address, known.browser(request.cookies.get(KNOWN_BROWSER_COOKIE), key))
    throttle = SignInThrottle(settings.runs_dir)
    wait = throttle.wait(attempt)
    if wait > 0:
        headers = {"Retry-After": str(math.ceil(wait))}
        return _page(throttled_note(attempt, wait), name, 429, headers)
    user = await run_in_threadpool(Roster(settings.runs_dir).sign_in, name, code)  # scrypt: off the event loop
    if user is None:
        throttle.failed(attempt)
        await asyncio.sleep(FAILURE_DELAY_SECONDS)
        return _page("That name and code do not match the class list.", name, 401)
    throttle.succeeded(attempt)
    response = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    cookie = {"httponly": True, "samesite": "lax", "secure": secure}
    response.set_cookie(COOKIE, Sessions(settings.runs_dir).start(user), max_age=SESSION_SECONDS, **cookie)
    if attempt.browser is None:
        response.set_cookie(KNOWN_BROWSER_COOKIE, known.cookie(key), max_age=KNOWN_BROWSER_SECONDS, **cookie)
    return response


ROUTES = [Route(SIGN_IN_PATH, sign_in, methods=["GET", "POST"])]
