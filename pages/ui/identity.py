"""Who is using this page, as the platform vouches for them (settings `auth`):

- "none": the teacher of the machine, the one user of a laptop or a projector;
- "oidc": Streamlit's own sign-in (`st.login`, `st.user`) against the school's OpenID Connect provider, configured in
  `.streamlit/secrets.toml`; who that is, galaxy_core.classroom.identity says from the provider's claims;
- "roster": the lab's class list (galaxy_core.classroom.roster): the session cookie the sign-in form gave
  (galaxy_core.classroom.sign_in), alive while its session is on the server (galaxy_core.classroom.sessions).

Never from the URL or a widget. The router asks `signed_in_user()` once before any page runs, and shows the sign-in
instead when nobody is signed in; it hands the page a `Viewer` (the user and what they chose to see), and no widget
helper looks the user up again.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from galaxy_core.classroom.access import owns
from galaxy_core.classroom.identity import oidc_user
from galaxy_core.classroom.names import board_shows_names, visible_name
from galaxy_core.classroom.people import MACHINE_TEACHER, User
from galaxy_core.classroom.sessions import Sessions
from galaxy_core.classroom.sign_in import COOKIE, SIGN_IN_PATH
from galaxy_core.settings import Settings
from galaxy_core.training import RunStore
from pages.ui.display import plain
from pages.ui.state import get_settings

SCOPE_KEY = "runs_scope"
FOLLOWED_LINKS_KEY = "followed_run_links"
MINE, CLASS = "mine", "class"


def _oidc_user(settings: Settings) -> tuple[User | None, str]:
    """(the signed-in user, or None with why)."""
    if not st.user.get("is_logged_in"):
        return None, ""
    return oidc_user(st.user.to_dict(), settings)


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
        st.warning(f"You cannot use this lab: {plain(refusal)}.")
    if settings.auth == "oidc":
        st.write("Sign in with your school account to train, evaluate and compare networks with your class.")
        if not _provider_configured():
            st.error(
                'This lab signs in with the school\'s OpenID Connect provider (auth = "oidc"), and its settings are '
                "missing: an [auth] section in .streamlit/secrets.toml (docs/admin.md, 'Serving a class')."
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
    classmates_run = _new_link_to_a_classmates_run(user, settings)
    if classmates_run is not None and st.session_state.get(SCOPE_KEY, _default_scope(user)) == MINE:
        st.session_state[SCOPE_KEY] = CLASS
        st.info(
            f"This link opens run {plain(classmates_run)}, which is not yours: the menus now list the class's runs "
            "(the sidebar switches back to yours)."
        )
    with st.sidebar:
        st.caption("Signed in as")
        st.text(user.describe())  # typed by someone: shown as text, never as Markdown or HTML
        st.radio(
            "Runs in menus and tables",
            [MINE, CLASS],
            index=[MINE, CLASS].index(_default_scope(user)),
            format_func={MINE: "My runs", CLASS: "The class's runs"}.get,
            key=SCOPE_KEY,
            horizontal=True,
        )
        st.button("Sign out", on_click=st.logout if settings.auth == "oidc" else _end_session, key="sign_out")


def _default_scope(user: User) -> str:
    return CLASS if user.is_teacher else MINE


def _new_link_to_a_classmates_run(user: User, settings: Settings) -> str | None:
    """The id of a run not `user`'s that the URL names (a page's `..._run` or `..._runs` parameter) and this
    session has not followed yet; None if there is none. Followed once: a person who then chooses "My runs" keeps
    it."""
    named = [
        run_id for key in st.query_params if key.endswith(("_run", "_runs")) for run_id in st.query_params.get_all(key)
    ]
    followed = st.session_state.setdefault(FOLLOWED_LINKS_KEY, set())
    store = RunStore(settings.runs_dir)
    for run_id in named:
        if run_id in followed:
            continue
        followed.add(run_id)
        try:
            owner = store.get(run_id).summary().owner_id
        except (LookupError, OSError, ValueError):
            continue  # no such run: the page says so
        if not owns(user, owner):
            return run_id
    return None


def _end_session() -> None:
    """Sign out of a roster session: it ends on the server, so a copy of its cookie stops working too."""
    Sessions(get_settings().runs_dir).end(st.context.cookies.get(COOKIE))


@dataclass(frozen=True)
class Viewer:
    """Who looks at a page, resolved once per rerun by the router and handed to the page: the signed-in user, and
    what they see: only their own runs in menus and tables or the class's, and whether the teacher shows every
    name."""

    user: User
    sign_in: bool  # a lab with sign-in: runs are named with their owners
    only_mine: bool
    names_shown: bool

    def owner_label(self, summary) -> str:
        """A run's owner as this viewer may see them: on the class board and in every menu and table alike."""
        unnamed = "the teacher" if summary.owner_is_teacher else "a classmate"
        return visible_name(summary.owner_id, summary.owner_name, self.user, self.names_shown, unnamed)

    def lists(self, summary) -> bool:
        """Whether the viewer's menus and tables list this run."""
        return not self.only_mine or owns(self.user, summary.owner_id)


def viewer_of(user: User) -> Viewer:
    """The viewer `user` is on this rerun (after the sidebar's choice of whose runs to list)."""
    settings = get_settings()
    sign_in = settings.auth != "none"
    only_mine = sign_in and st.session_state.get(SCOPE_KEY) == MINE
    return Viewer(user, sign_in, only_mine, board_shows_names(settings.runs_dir))
