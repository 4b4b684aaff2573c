"""Follow runs (the Train page's runs): the runs table and the chosen run, read afresh together: where it is, its
live curves, its results, Stop and its log."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from galaxy_core.answers.review import has_review
from galaxy_core.classroom.access import Action, may
from galaxy_core.data import describe_spec
from galaxy_core.training import Run, RunState, RunSummary
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.fair_share import queue_positions
from galaxy_core.training.kinds import describe_run_model
from galaxy_core.training.records import epoch_records
from pages.ui.curves import run_curves_figure
from pages.ui.display import as_message, interval_note, label_noise_note, plain
from pages.ui.identity import Viewer
from pages.ui.kinds.transfer import base_run_note
from pages.ui.manage_runs import lesson_ui, manage_ui, trash_ui
from pages.ui.navigation import LAB_PAGES
from pages.ui.runs import (
    VIEWED_RUN_KEY,
    ordinal,
    queue_pressed,
    run_interval,
    run_metrics,
    run_row,
    train_button,
)

REVIEW_PAGE = next(page for page in LAB_PAGES if page.url_path == "review")


SELECTED_RUN_KEY = "train_selected_run"
AGAIN_HELP = (
    "A new run of yours with this run's recipe, dataset and seed: the same network again (on this machine's "
    "software). A new seed instead: the recipe on New run above, where each run draws its own."
)


def runs_table_ui(summaries: list[RunSummary], positions: dict[str, int], viewer: Viewer) -> RunSummary | None:
    """The runs, newest first (a queued one with its place in the queue); returns the run chosen in the table (the
    one this session looked at last, else the newest)."""
    rows = [run_row(summary, viewer, positions.get(summary.id)) for summary in summaries]
    if not rows:
        st.info("No runs yet: choose a model above and press Train.")
        return None
    table = pd.DataFrame(rows)
    event = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="runs_table",
        column_config={
            # wide enough for "3/8, batch 12/70" and a title from the start: a grid sizes its columns to their first
            # values, and cuts what is longer
            "title": st.column_config.TextColumn(width="medium"),
            "epochs": st.column_config.TextColumn(width="medium"),
            "val balanced acc": st.column_config.NumberColumn(format="%.3f"),
            "test balanced acc": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    selected = event.selection.rows if event is not None else []
    if selected:
        st.session_state[VIEWED_RUN_KEY] = table["run"].iloc[selected[0]]
    shown = set(table["run"])
    # The run this session looked at last, here or on another page; else a link's (a reload, a shared link).
    wanted = (st.session_state.get(VIEWED_RUN_KEY), st.query_params.get(SELECTED_RUN_KEY))
    chosen = next((run_id for run_id in wanted if run_id in shown), table["run"].iloc[0])
    st.query_params[SELECTED_RUN_KEY] = chosen  # a reload or a shared link shows the same run
    st.session_state[VIEWED_RUN_KEY] = chosen
    return next(summary for summary in summaries if summary.id == chosen)


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_curves(path: str, version: tuple[int, int], by_batch: bool) -> go.Figure:
    return run_curves_figure(run_metrics(Run(Path(path))), by_batch)


def run_curves(run, by_batch: bool) -> go.Figure:
    """The run's curves, drawn once per change of its metrics for all sessions watching it (Streamlit copies a
    figure to send it, so sharing it is safe)."""
    return _shared_curves(str(run.path), run.metrics_version(), by_batch)


def runs_section(client: ServiceClient, viewer: Viewer) -> None:
    """The runs table and the chosen run, read afresh together (every 2 s while runs are queued or running), so
    the table, the progress bar and the curves always tell the same moment of the same run."""
    summaries, damaged = client.store.scan()
    active = any(summary.state.active for summary in summaries)
    if st.session_state.get("train_runs_active") and not active:
        st.session_state["train_runs_active"] = False
        st.rerun(scope="app")  # the last run just ended: stop polling
    st.session_state["train_runs_active"] = active
    service_ui(client, summaries)
    shown = [summary for summary in summaries if viewer.lists(summary)]
    positions = queue_positions(summaries, time.time())
    chosen = runs_table_ui(shown, positions, viewer)
    if damaged:
        with st.expander(f"{len(damaged)} damaged run folder(s), left out"):
            st.markdown("\n".join(f"- `{run.id}`: damaged: {plain(run.reason)}" for run in damaged))
    if chosen:
        # A container per run: nothing of the run shown before stays on screen under another run's header.
        with st.container(key=f"run_view_{chosen.id}"):
            run_view(client, chosen, viewer, positions.get(chosen.id))
    trash_ui(client, viewer.user)


def run_view(client: ServiceClient, summary: RunSummary, viewer: Viewer, queue_position: int | None) -> None:
    """The selected run: state (a queued run's place in the queue), live curves, stop, log."""
    run, state, user = summary.run, summary.state, viewer.user
    head = st.columns([3, 1])
    owner = f" · {plain(viewer.owner_label(summary))}'s" if viewer.sign_in else ""
    head[0].markdown(
        f"**{run.id}**"
        + (f" · {plain(summary.title)}" if summary.title else "")
        + owner
        + f": {state.value} · {describe_run_model(summary.config)} on {plain(describe_spec(summary.dataset))}"
        + (f" · seed {summary.seed}" if summary.seed is not None else "")
        + (f" · {summary.device}" if summary.device else "")
        + (f" · on {summary.node}" if summary.node else "")
    )
    base_run_note(summary)
    may_stop = may(user, Action.STOP, summary.owner_id)
    if state.active and may_stop and head[1].button("Stop", key=f"stop_{run.id}", icon=":material/stop_circle:"):
        client.stop(run.id, user)
        st.toast("Stop requested: the run ends after its current batch and keeps what it learned.")
    may_again = may(user, Action.TRAIN_AGAIN, summary.owner_id) and summary.seed is not None
    if not state.active and may_again and train_again_button(head[1], run.id):
        queue_pressed(client, client.config_to_train_again(run.id, user), user)
    metrics = run_metrics(run)
    run_state_ui(summary, epoch_records(metrics), queue_position)
    run_results_ui(summary, metrics)
    lesson_ui(client, summary, user)
    if may(user, Action.RENAME, summary.owner_id) or may(user, Action.DELETE, summary.owner_id):
        manage_ui(client, summary, user)
    with st.expander("Log"):
        st.code(run.log_tail(40) or "(empty)", language=None)
        if summary.traceback:
            st.code(summary.traceback, language="python")
        st.caption(f"Its TensorBoard event files, on the server's machine: `galaxy-lab tensorboard {run.id}`")


def train_again_button(place, run_id: str) -> bool:
    with place:
        return train_button("Train again", key=f"again_{run_id}", icon=":material/replay:", help=AGAIN_HELP)


def run_state_ui(summary: RunSummary, epochs: list[dict], queue_position: int | None) -> None:
    """Where the run is (queued, its progress while it trains) or how it ended."""
    state = summary.state
    if state is RunState.QUEUED:
        place = f", {ordinal(queue_position)} in the queue" if queue_position else ""
        st.info(f"Queued: {as_message(summary.message)}{place}. It starts by itself when a training slot is free.")
    elif state is RunState.RUNNING:
        text = f"{summary.message}"
        if summary.run.stop_requested():
            text = f"stopping ({text})"
        text += f" · {summary.epoch_line()}"
        if epochs:
            text += f" · {epochs[-1]['images_per_second']:.0f} images/s"
        if summary.eta_seconds is not None:
            text += f" · about {summary.eta_seconds / 60:.1f} min left"
        st.progress(summary.progress, text=text)
    elif state is RunState.FAILED:
        st.error(f"The run {as_message(summary.message)}")
    elif state is RunState.INTERRUPTED:
        st.warning(f"The run was {as_message(summary.message)}. Everything it wrote before is kept.")
    else:
        st.success(f"The run {as_message(summary.message)}.")


def run_results_ui(summary: RunSummary, metrics: list[dict]) -> None:
    """A review's link to its page, the test figures, and the live curves."""
    run = summary.run
    if has_review(summary):
        st.page_link(REVIEW_PAGE.streamlit_page(), label="Review its doubted labels", icon=REVIEW_PAGE.icon)
    if summary.has_test_results:
        cols = st.columns(3)
        cols[0].metric("Test accuracy", f"{summary.test_accuracy:.1%}")
        cols[1].metric("Test balanced accuracy", f"{summary.test_balanced_accuracy:.1%}")
        best = summary.best_val_balanced_accuracy
        cols[2].metric("Best val balanced accuracy", f"{best:.1%}" if best is not None else "-")
        interval = run_interval(run)
        if interval:
            interval_note(interval)
        label_noise_note()
    if metrics and not summary.is_label_review and summary.epochs_planned != 0:  # an ensemble has no curves
        if epoch_records(metrics):
            by_batch = st.toggle("Training curve by batch", True, key=f"by_batch_{run.id}")
        else:
            by_batch = True
            st.caption("Until the first epoch ends, the training curve is drawn batch by batch.")
        st.plotly_chart(run_curves(run, by_batch), key=f"curves_{run.id}")


def service_ui(client: ServiceClient, summaries: list[RunSummary]) -> None:
    """Start the training service if runs wait for it, and say what keeps queued runs waiting, if anything."""
    client.ensure_service(summaries)
    service = client.service()
    if service.problem and any(summary.state is RunState.QUEUED for summary in summaries):
        st.warning(
            f"Training service: {as_message(service.describe())}. Queued runs are kept and start once this is fixed."
        )
