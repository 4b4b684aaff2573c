"""Manage runs (the Train page): a run's title and its move to the trash, the trash, and emptying it; the teacher's
choice of the run the class starts from."""

from __future__ import annotations

import streamlit as st

from galaxy_core.classroom.access import Action, may
from galaxy_core.classroom.lesson import lesson_base_id, set_lesson_base
from galaxy_core.classroom.people import User
from galaxy_core.errors import GalaxyLabError
from galaxy_core.training import RunSummary
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.store import MAX_TITLE
from pages.ui.display import as_message
from pages.ui.runs import VIEWED_RUN_KEY


def manage_ui(client: ServiceClient, summary: RunSummary, user: User) -> None:
    """Its title, and its move to the trash: for its owner and the teacher."""
    with st.expander("Title, disk, delete"):
        with st.form(f"rename_{summary.id}", border=False):
            title = st.text_input("Title", summary.title, max_chars=MAX_TITLE, placeholder="deeper net, no dropout")
            if st.form_submit_button("Save the title"):
                client.rename(summary.id, title, user)
                st.rerun(scope="app")
        st.caption(f"It takes {summary.run.disk_bytes() / 1e6:,.1f} MB on disk.")
        if st.button("Move to the trash", key=f"delete_{summary.id}", icon=":material/delete:"):
            client.delete(summary.id, user)
            st.session_state.pop(VIEWED_RUN_KEY, None)
            st.rerun(scope="app")


def lesson_ui(client: ServiceClient, summary: RunSummary, user: User) -> None:
    """For a teacher, on a run that kept a model: make it the run the class starts from, or stop."""
    if not (may(user, Action.SET_LESSON) and summary.has_model) or summary.is_label_review or summary.is_ensemble:
        return
    if lesson_base_id(client.store.root) == summary.id:
        st.caption("The class starts from this run: each student's Train page opens on a new head for it.")
        if st.button("Stop starting the class from it", key=f"lesson_clear_{summary.id}"):
            set_lesson_base(client.store, None, user)
            st.rerun(scope="app")
    elif st.button(
        "Start the class from this run",
        key=f"lesson_{summary.id}",
        icon=":material/school:",
        help="Every student's Train page then opens on *Start from a run* with this run chosen: a new head on its "
        "network in seconds (the cut, few labels and fine-tuning are theirs to choose), and the class board shows "
        "it beside their results.",
    ):
        try:
            set_lesson_base(client.store, summary.id, user)
        except GalaxyLabError as error:
            st.error(f"The class cannot start from this run: {as_message(error)}.")
            return
        st.rerun(scope="app")


def trash_ui(client: ServiceClient, user: User) -> None:
    """The runs in the trash this user may restore; the teacher may empty it."""
    trashed = client.trashed(user)
    if not trashed:
        return
    with st.expander(f"Trash: {len(trashed)} run(s), restorable until it is emptied"):
        for summary in trashed:
            left, right = st.columns([4, 1])
            left.text(f"{summary.name} · {summary.owner_name} · {summary.message}")
            if right.button("Restore", key=f"restore_{summary.id}"):
                client.restore(summary.id, user)
                st.rerun()
        if may(user, Action.EMPTY_TRASH):
            empty_trash_ui(client, user, len(trashed))


def empty_trash_ui(client: ServiceClient, user: User, count: int) -> None:
    """Empty the trash, once asked to confirm (nothing brings its runs back), away from the Restore buttons."""
    st.divider()
    if not st.session_state.get("empty_trash_asked"):
        if st.button("Empty the trash…", key="empty_trash"):
            st.session_state["empty_trash_asked"] = True
            st.rerun()
        return
    st.warning(f"Delete the {count} run(s) in the trash for good? Nothing brings them back.")
    left, right = st.columns(2)
    if left.button(f"Delete {count} run(s) for good", key="empty_trash_confirmed", type="primary"):
        st.session_state["empty_trash_asked"] = False
        st.toast(f"{client.empty_trash(user)} run(s) deleted for good.")
        st.rerun()
    if right.button("Keep them", key="empty_trash_cancelled"):
        st.session_state["empty_trash_asked"] = False
        st.rerun()
