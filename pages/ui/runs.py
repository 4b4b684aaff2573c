"""Runs in menus and their models, loaded once per server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from galaxy_core.answers.inference import balanced_accuracy_interval_of
from galaxy_core.data import describe_spec
from galaxy_core.errors import GalaxyLabError
from galaxy_core.training import Run, RunState, RunStore, RunSummary
from pages.ui.display import as_message, plain
from pages.ui.identity import Viewer
from pages.ui.state import get_settings

VIEWED_RUN_KEY = "viewed_run"  # the run this session looked at last, on whichever page
PRESSED_AT_KEY = "train_pressed_at"  # when a button that queues a run was last pressed (time.monotonic)
DOUBLE_PRESS_SECONDS = 5.0
_QUEUEING = threading.Lock()  # one press queued at a time on this server: a press checks what the last one did
# (runs folder, user id) -> the last run that user queued there: its settings, when (time.monotonic), its id. Kept by
# the server, not in the session's state: a double click's two presses can run in two script threads at once, and
# the second did not always see what the first wrote to the session (seen under load in the browser test).
_LAST_QUEUED: dict[tuple[str, str], dict] = {}
FAMILY_LABELS = {"report": "Report", "modern": "Modern", "custom": "Custom"}


def model_label(name: str) -> str:
    """'Report: Practice 1 ...' / 'Modern: Small ResNet': a model's family and title, for menus."""
    from galaxy_core.models import model_info

    info = model_info(name)
    return f"{FAMILY_LABELS[info.family]}: {info.title}"


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _cached_model(path: str, modified: float):
    """A loaded model, shared by every session; `modified` makes a rewritten file load afresh."""
    from galaxy_core.answers.prediction import load_model_file

    return load_model_file(Path(path))


def model_key(run, checkpoint: str = "best") -> tuple[str, float]:
    """(path, modification time) of a run's model file: what caches of that model's answers are keyed by."""
    path = run.model_path(checkpoint)
    return str(path), path.stat().st_mtime


def run_model(run, checkpoint: str = "best"):
    """The run's model (best checkpoint, final, or a label review's "fold-N"), loaded once per server. Raises
    ModelLoadError."""
    return _cached_model(*model_key(run, checkpoint))


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_metrics(path: str, version: tuple[int, int]) -> list[dict]:
    return Run(Path(path)).metrics()


def run_metrics(run) -> list[dict]:
    """The run's metrics records, read once per change of its file for all sessions (a class watching a run shares
    each read every 2 s). Shared: not to be changed by the caller."""
    version = run.metrics_version()
    return _shared_metrics(str(run.path), version) if version else []


@st.cache_data(max_entries=64, show_spinner=False)
def _cached_interval(_run, predictions_key: tuple[str, float]) -> tuple[float, float] | None:
    """A run's test interval, computed once per predictions file (`predictions_key`: its path and time)."""
    return balanced_accuracy_interval_of(_run)


def run_interval(run) -> tuple[float, float] | None:
    """The 95% bootstrap interval of a run's test balanced accuracy (None without saved predictions), computed once:
    the Train page redraws a run every 2 s while others train."""
    path = run.predictions_path
    try:
        modified = path.stat().st_mtime
    except OSError:  # none saved, or the run folder was deleted meanwhile
        return None
    return _cached_interval(run, (str(path), modified))


def run_row(summary: RunSummary, viewer: Viewer, queue_position: int | None = None) -> dict:
    """The run as one row of the Train page's runs table (a queued run with its place in the queue)."""
    from galaxy_core.training.kinds import describe_run_model

    running = summary.state is RunState.RUNNING
    reviewed = " (reviewed labels)" if summary.config.get("label_changes") else ""
    return {
        "run": summary.id,
        "title": summary.title,
        "owner": viewer.owner_label(summary),
        "state": summary.state.value,
        # what moves while it trains comes first: a wide table shows its first columns
        "epochs": summary.epochs_text(),
        "time left": f"{summary.eta_seconds / 60:.1f} min" if running and summary.eta_seconds is not None else "",
        "what happened": summary.message + (f" ({ordinal(queue_position)} in the queue)" if queue_position else ""),
        "model": describe_run_model(summary.config),
        "dataset": describe_spec(summary.dataset) + reviewed,
        "val balanced acc": summary.best_val_balanced_accuracy,
        "test balanced acc": summary.test_balanced_accuracy,
        "where": summary.node or "",
    }


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def run_label(summary, viewer: Viewer) -> str:
    """'20261128-…-inception_small-ab12 · its title · Ada · finished · gz1-3class, 64 px, RGB · test 84.7%' for
    menus (plain text: a menu never renders what someone typed); the owner on a lab with sign-in."""
    text = summary.id + (f" · {summary.title}" if summary.title else "")
    if viewer.sign_in:
        text += f" · {viewer.owner_label(summary)}"
    text += f" · {summary.state.value} · {describe_spec(summary.dataset)}"
    if summary.has_test_results:
        text += f" · test balanced {summary.test_balanced_accuracy:.1%}"
    return text


def runs_that(viewer: Viewer, can_answer: Callable[[RunSummary], bool]) -> tuple[list[RunSummary], list[RunSummary]]:
    """(the runs that can answer the page's question, the others), each newest first: the viewer's own, or the
    class's, as the sidebar says."""
    runs, others = [], []
    for summary in RunStore(get_settings().runs_dir).runs():
        if viewer.lists(summary):
            (runs if can_answer(summary) else others).append(summary)
    return runs, others


def choose_run(summaries: list, viewer: Viewer, key: str, label: str = "Run"):
    """A run picker over the runs that can answer the page's question, kept in the URL (`key` names it there);
    returns the chosen run's summary. It opens on the link's run, else on the run the person last looked at on
    any page (if it can answer here), else on the newest. A run looked at last that cannot answer here (one still
    training, say) stays the one the other pages open on, unless the person chooses another here."""
    by_id = {summary.id: summary for summary in summaries}
    viewed = st.session_state.get(VIEWED_RUN_KEY)
    # Not bind="query-params": that leaves a default value out of the URL, and the default (the newest run)
    # changes as runs are added, so a link would move on to another run.
    if key not in st.session_state:
        linked = st.query_params.get(key)
        if linked and linked not in by_id:
            _say_why_the_link_is_not_shown(linked, viewer)
        for wanted in (linked, viewed):
            if wanted in by_id:
                st.session_state[key] = wanted
                break
    chosen = st.selectbox(
        label,
        list(by_id),
        format_func=lambda run_id: run_label(by_id[run_id], viewer),
        key=key,
        on_change=_remember_choice,
        args=(key,),
    )
    st.query_params[key] = chosen
    if viewed is None or viewed in by_id:
        st.session_state[VIEWED_RUN_KEY] = chosen
    return by_id[chosen]


def _say_why_the_link_is_not_shown(run_id: str, viewer: Viewer) -> None:
    """A link's run that the page's menu does not offer: why, instead of showing another run without a word."""
    try:
        summary = RunStore(get_settings().runs_dir).get(run_id).summary()
    except (LookupError, OSError, ValueError):
        st.warning(f"The link names run {plain(run_id)}, which is not in the lab (deleted, or in the trash).")
        return
    if not viewer.lists(summary):
        why = "the menus list only your runs: choose the class's runs in the sidebar to see it"
    else:
        why = f"it {as_message(summary.message)}"
    st.warning(f"The link's run {plain(summary.name)} cannot be shown on this page: {why}.")


def _remember_choice(key: str) -> None:
    st.session_state[VIEWED_RUN_KEY] = st.session_state[key]


def train_button(label: str, key: str | None = None, *, in_form: bool = False, **options) -> bool:
    """A button that queues a run (a form's submit button with `in_form`). Its press is timed as it happens: the
    callback runs before the page's script, so `queue_once` knows a double click's second press however long a
    busy server takes to draw the page down to the button."""
    button = st.form_submit_button if in_form else st.button
    return button(label, key=key, on_click=_note_the_press, **options)


def _note_the_press() -> None:
    st.session_state[PRESSED_AT_KEY] = time.monotonic()


def queue_once(client, config, user):
    """Queue `config` as `user`'s run, once per press: the same settings pressed again within a few seconds of the
    first press's queueing (the second click of a double click, which Streamlit delivers as a second press, even to
    a second script thread while the first still runs) return the run the first press queued. Returns (the run,
    whether it was queued now)."""
    settings = config.to_dict()
    pressed = st.session_state.get(PRESSED_AT_KEY, time.monotonic())
    whose = (str(client.store.root), user.id)
    with _QUEUEING:
        last = _LAST_QUEUED.get(whose)
        if last and last["config"] == settings and pressed - last["at"] < DOUBLE_PRESS_SECONDS:
            return client.store.get(last["run"]), False
        run = client.submit(config, user)
        _LAST_QUEUED[whose] = {"config": settings, "at": time.monotonic(), "run": run.id}
    st.session_state[VIEWED_RUN_KEY] = run.id
    return run, True


def queue_pressed(client, config, user) -> bool:
    """Queue `config` for a press of Train (once per press: `queue_once`) and say where it went or why it was
    refused; whether a run was queued by this press."""
    try:
        run, queued_now = queue_once(client, config, user)
    except GalaxyLabError as error:  # a full queue, a base that cannot be one, a runs folder that cannot be written
        st.error(f"The run was not queued: {as_message(error)}.")
        return False
    seed = run.config().get("seed")
    st.success(
        f"Queued run {run.id} (seed {seed})." if queued_now else f"Run {run.id} was queued by this press already."
    )
    return queued_now


def runs_apart(others: list, cannot: str) -> None:
    """The runs that cannot answer the page's question, listed apart from its menu, each with why."""
    if others:
        with st.expander(f"{len(others)} other run(s) cannot {cannot}"):
            lines = [f"- `{summary.id}` ({summary.model}): {as_message(summary.message)}" for summary in others]
            st.markdown("\n".join(lines))
