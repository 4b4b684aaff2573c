"""Train: queue a run on the active dataset, and watch the runs learn (they train in background processes)."""

import streamlit as st

from galaxy_core.classroom.access import owns
from galaxy_core.data import describe_spec
from galaxy_core.training.client import ServiceClient
from pages.ui.display import plain
from pages.ui.follow_runs import runs_section
from pages.ui.identity import Viewer
from pages.ui.navigation import run_router
from pages.ui.new_run import new_run_form
from pages.ui.state import REFRESH_SECONDS, active_dataset_spec, get_settings

NEW_RUN_KEY = "train_new_run"
OPENED_AT_FIRST_KEY = "train_new_run_opened_at_first"


def render(viewer: Viewer) -> None:
    """Draw the Train page."""
    settings = get_settings()
    client = ServiceClient.from_settings(settings)
    st.title("Train")
    dataset = active_dataset_spec()
    st.caption(
        f"On the active dataset: **{plain(describe_spec(dataset))}** (change it on the Dataset page). Runs train in "
        "background processes: leave this page or close the browser, they go on."
    )
    # Open at first while the person has no run of their own yet; then as they leave it (queueing a run does not
    # fold it away).
    if OPENED_AT_FIRST_KEY not in st.session_state:
        mine = (summary for summary in client.store.runs() if owns(viewer.user, summary.owner_id))
        st.session_state[OPENED_AT_FIRST_KEY] = next(mine, None) is None
    opened_at_first = st.session_state[OPENED_AT_FIRST_KEY]
    new_run = st.expander("New run", expanded=opened_at_first, key=NEW_RUN_KEY, on_change="rerun")
    if new_run.open:  # drawn only when open: a visit to watch runs measures and loads nothing for a new one
        with new_run:
            new_run_form(client, dataset, settings.max_epochs, viewer)
    active = bool(client.store.runs(active_only=True))
    st.session_state["train_runs_active"] = active
    st.fragment(run_every=REFRESH_SECONDS if active else None)(runs_section)(client, viewer)


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
