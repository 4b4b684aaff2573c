"""Who is using this page, as the platform vouches for them (settings `auth`):

- "none": the teacher of the machine, the one user of a laptop or a projector;
- "oidc": Streamlit's own sign-in (`st.login`, `st.user`) against the school's OpenID Connect provider, configured in
  `.streamlit/secrets.toml`; the settings' `teachers` are teachers, and `sign_in_domains` may restrict who signs in;
- "roster": the lab's class list (galaxy_core.roster): the session cookie the sign-in form gave (pages/ui/sign_in).

Never from the URL or a widget. The router asks `signed_in_user()` before any page runs, and shows the sign-in
instead when nobody is signed in.
"""

from __future__ import annotations

import streamlit as st

from galaxy_core.people import MACHINE_TEACHER, STUDENT, TEACHER, User, printable, user_key
from galaxy_core.roster import Sessions
from galaxy_core.settings import Settings
from pages.ui.sign_in import COOKIE, SIGN_IN_PATH, SIGN_OUT_PATH
from pages.ui.state import get_settings

SCOPE_KEY = "runs_scope"
MINE, CLASS = "mine", "class"


def _oidc_user(settings: Settings) -> tuple[User | None, str]:
    """(the signed-in user, or None with why)."""
    if not st.user.get("is_logged_in"):
        return None, ""
    email = user_key(str(st.user.get("email") or ""))
    domain = email.rpartition("@")[2]
    if not email:
        return None, "your school account did not tell this lab your e-mail address"
    if settings.sign_in_domains and domain not in settings.sign_in_domains:
        allowed = ", ".join(f"@{domain}" for domain in settings.sign_in_domains)
        return None, f"this lab is for {allowed} accounts; you signed in as {email}"
    name = printable(str(st.user.get("name") or email))
    return User(email, name, TEACHER if email in settings.teachers else STUDENT), ""


def _signed_in(settings: Settings) -> tuple[User | None, str]:
    if settings.auth == "oidc":
        return _oidc_user(settings)
    if settings.auth == "roster":
        return Sessions(settings.runs_dir).user(st.context.cookies.get(COOKIE)), ""
    return MACHINE_TEACHER, ""


def signed_in_user(*, stop: bool = True) -> User | None:
    """The user of this session. For nobody (on a lab with sign-in): the sign-in screen, and a stopped page (None
    instead with `stop=False`, for the router)."""
    settings = get_settings()
    user, refusal = _signed_in(settings)
    if user is None:
        _sign_in_screen(settings, refusal)
        if stop:
            st.stop()
    return user


def _provider_configured() -> bool:
    """Whether Streamlit's secrets have the [auth] section st.login needs (no secrets file at all: no)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # Streamlit's StreamlitSecretNotFoundError
        return False


def _sign_in_screen(settings: Settings, refusal: str) -> None:
    st.title("Galaxy CNN Lab")
    if refusal:
        st.warning(f"You cannot use this lab: {refusal}.")
    if settings.auth == "oidc":
        st.write("Sign in with your school account to train, evaluate and compare networks with your class.")
        if not _provider_configured():
            st.error(
                'This lab signs in with the school\'s OpenID Connect provider (auth = "oidc"), and its settings are '
                "missing: an [auth] section in .streamlit/secrets.toml (README, Serving a class)."
            )
        elif refusal:
            st.button("Sign out", on_click=st.logout)
        else:
            st.button("Sign in with your school account", type="primary", on_click=st.login)
    else:
        st.write("Sign in with your name and the code your teacher gave you.")
        # In this tab (a link button opens a new one); the lab's own fixed HTML, nothing anyone typed.
        st.html(f'<a href="{SIGN_IN_PATH}" target="_self" class="lab-sign-in">Sign in</a>')


def user_sidebar(user: User) -> None:
    """Who is signed in and their role, the choice of whose runs the menus list, and Sign out."""
    settings = get_settings()
    if settings.auth == "none":
        return
    if SCOPE_KEY not in st.session_state and st.query_params.get(SCOPE_KEY) in (MINE, CLASS):
        st.session_state[SCOPE_KEY] = st.query_params[SCOPE_KEY]  # a link's choice
    with st.sidebar:
        st.caption("Signed in as")
        st.text(user.describe())  # typed by someone: shown as text, never as Markdown or HTML
        st.radio(
            "Runs in menus and tables",
            [MINE, CLASS],
            index=0 if not user.is_teacher else 1,
            format_func={MINE: "My runs", CLASS: "The class's runs"}.get,
            key=SCOPE_KEY,
            horizontal=True,
        )
        if settings.auth == "oidc":
            st.button("Sign out", on_click=st.logout, key="sign_out")
        else:
            st.html(f'<a href="{SIGN_OUT_PATH}" target="_self">Sign out</a>')


def shows_only_mine() -> bool:
    """Whether this session's menus and tables list only the signed-in user's runs."""
    return st.session_state.get(SCOPE_KEY) == MINE


def owner_label(summary) -> str:
    """A run's owner as this session's user may see them (galaxy_core.board.visible_name): on the class board and in
    every menu and table alike."""
    from galaxy_core.board import board_shows_names, visible_name

    settings = get_settings()
    shown = board_shows_names(settings.runs_dir)
    return visible_name(summary.owner_id, summary.owner_name, signed_in_user(), shown, "a classmate")
