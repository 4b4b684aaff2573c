"""Signing in to a lab with `auth = "roster"`: the form at /lab/sign-in (a name and the code the teacher handed out,
posted, never in a URL), the session cookie it gives, and /lab/sign-out. These are HTTP routes of the server
(serve.py mounts them beside the app); the pages read the cookie through `st.context.cookies` (pages/ui/identity).

With another `auth`, the routes say that this lab signs in some other way.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import defaultdict, deque
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from galaxy_core.people import user_key
from galaxy_core.roster import SESSION_SECONDS, Roster, Sessions
from galaxy_core.settings import load_settings

COOKIE = "galaxy_lab_session"
SIGN_IN_PATH, SIGN_OUT_PATH = "/lab/sign-in", "/lab/sign-out"
FAILED_ATTEMPTS, ATTEMPT_WINDOW_SECONDS, FAILURE_DELAY_SECONDS = 5, 300.0, 0.5
_failures: dict[str, deque] = defaultdict(deque)  # name -> times of its recent failed sign-ins

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


def _page(note: str = "", name: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return HTMLResponse(PAGE.format(action=SIGN_IN_PATH, note=shown, name=html.escape(name)), status_code=status)


def _same_origin(request: Request) -> bool:
    """A sign-in posted from this server's own page (another site cannot sign a visitor in as someone else)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def _too_many_failures(key: str, now: float) -> bool:
    recent = _failures[key]
    while recent and now - recent[0] > ATTEMPT_WINDOW_SECONDS:
        recent.popleft()
    return len(recent) >= FAILED_ATTEMPTS


async def sign_in(request: Request) -> Response:
    settings = load_settings()
    if settings.auth != "roster":
        return _page(f"This lab does not sign in with a class list (auth = {settings.auth}).", status=404)
    if request.method == "GET":
        return _page()
    if not _same_origin(request):
        return _page("This sign-in did not come from the lab's own page.", status=403)
    form = await request.form()
    name, code = str(form.get("name", ""))[:100], str(form.get("code", ""))[:100]
    key, now = user_key(name), time.monotonic()
    if _too_many_failures(key, now):
        return _page("Too many wrong codes for this name: wait a few minutes, or ask the teacher.", name, 429)
    user = Roster(settings.runs_dir).sign_in(name, code)
    if user is None:
        _failures[key].append(now)
        await asyncio.sleep(FAILURE_DELAY_SECONDS)
        return _page("That name and code do not match the class list.", name, 401)
    _failures.pop(key, None)
    response = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    token = Sessions(settings.runs_dir).issue(user)
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="lax", secure=secure)
    return response


async def sign_out(request: Request) -> Response:
    response = RedirectResponse(SIGN_IN_PATH if load_settings().auth == "roster" else "/", status_code=303)
    response.delete_cookie(COOKIE)
    return response


ROUTES = [Route(SIGN_IN_PATH, sign_in, methods=["GET", "POST"]), Route(SIGN_OUT_PATH, sign_out)]
