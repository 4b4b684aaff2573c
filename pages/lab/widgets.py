"""Streamlit pieces shared by the pages: settings, the active dataset, image grids. No page logic here."""

from __future__ import annotations

import runpy
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from galaxy_core.data import (
    Dataset,
    DatasetChoice,
    DatasetError,
    DatasetSpec,
    create_dataset,
    describe_spec,
    discover_datasets,
    spec_from_name,
)
from galaxy_core.settings import Settings, SettingsError, load_settings

ROUTER = Path(__file__).resolve().parents[2] / "app.py"
FAMILY_LABELS = {"report": "Report", "modern": "Modern", "custom": "Custom"}
ACTIVE_DATASET_KEY = "active_dataset_spec"
DEFAULT_DATASET_PROBLEM_KEY = "default_dataset_problem"
MAX_DATASETS_IN_MEMORY = 3


def run_router() -> None:
    """Run app.py. Streamlit runs a script found directly in pages/ by itself when a session starts on its URL
    (/dataset, say); the scripts there call this so that every URL still goes through the router."""
    runpy.run_path(str(ROUTER))


def get_settings() -> Settings:
    """The lab's settings, or a clear error and a stopped page when they are unusable."""
    try:
        return load_settings()
    except SettingsError as error:
        st.error(f"The lab's settings cannot be used: {error}")
        st.stop()


@st.cache_data(ttl=30, show_spinner=False)
def dataset_choices(_settings: Settings, settings_key: str) -> list[DatasetChoice]:
    """Datasets found in the data roots (re-scanned every 30 s; `settings_key` keys the cache)."""
    return discover_datasets(_settings)


@st.cache_resource(show_spinner=False)
def _loaded_datasets() -> tuple[OrderedDict, threading.Lock]:
    """Datasets in memory for every session of this server: the few most recently used, read-only.

    A plain LRU rather than st.cache_data, because a first load reports progress to the page, and
    Streamlit's caches cannot replay elements drawn from inside a cached function onto outside blocks.
    """
    return OrderedDict(), threading.Lock()


def load_dataset(spec: DatasetSpec, settings: Settings) -> Dataset:
    """The dataset for `spec`, with a progress bar while it is decoded for the first time."""
    key = (spec, str(settings.cache_dir))
    loaded, lock = _loaded_datasets()
    with lock:
        if key in loaded:
            loaded.move_to_end(key)
            return loaded[key]
    bar = st.empty()

    def progress(done: int, total: int, message: str) -> None:
        bar.progress(min(1.0, done / total) if total else 0.0, text=message)

    try:
        dataset = create_dataset(spec, cache_dir=settings.cache_dir, progress=progress)
    finally:
        bar.empty()
    for split in dataset.splits.values():
        split.images.flags.writeable = False
    with lock:
        loaded[key] = dataset
        while len(loaded) > MAX_DATASETS_IN_MEMORY:
            loaded.popitem(last=False)
    return dataset


def active_dataset_spec() -> DatasetSpec:
    """The session's dataset: a new session starts on the settings' default_dataset (synthetic when that is
    missing, with a note in the sidebar)."""
    if ACTIVE_DATASET_KEY not in st.session_state:
        settings = get_settings()
        try:
            spec = spec_from_name(settings.default_dataset, settings)
        except DatasetError as error:
            st.session_state[DEFAULT_DATASET_PROBLEM_KEY] = (
                f"The default dataset ({settings.source}) is not available: {error}. Using synthetic galaxies."
            )
            spec = DatasetSpec.of("synthetic")
        st.session_state[ACTIVE_DATASET_KEY] = spec
    return st.session_state[ACTIVE_DATASET_KEY]


def sidebar_status() -> None:
    with st.sidebar:
        st.caption("Active dataset")
        st.markdown(f"**{describe_spec(active_dataset_spec())}**")
        if DEFAULT_DATASET_PROBLEM_KEY in st.session_state:
            st.warning(st.session_state[DEFAULT_DATASET_PROBLEM_KEY])


def lazy_tabs(key: str, tabs: dict) -> None:
    """Tabs of which only the open one runs: `tabs` maps each label to a function drawing its content."""
    containers = st.tabs(list(tabs), key=key, on_change="rerun")
    for container, draw in zip(containers, tabs.values(), strict=True):
        if container.open:
            with container:
                draw()


def enlarge(image: np.ndarray, size: int = 128) -> np.ndarray:
    """Nearest-neighbour upscale for display, so that small images stay sharp; (H, W, 1) becomes (H, W)."""
    factor = max(1, size // image.shape[0])
    enlarged = image.repeat(factor, axis=0).repeat(factor, axis=1)
    return enlarged[..., 0] if enlarged.shape[-1] == 1 else enlarged


def image_grid(images: np.ndarray, captions: list[str], columns: int = 6, size: int = 128) -> None:
    for start in range(0, len(images), columns):
        for column, index in zip(st.columns(columns), range(start, min(start + columns, len(images))), strict=False):
            column.image(enlarge(images[index], size), caption=captions[index], width="stretch")


def model_label(name: str) -> str:
    """'Report: Practice 1 ...' / 'Modern: Small ResNet': a model's family and title, for menus."""
    from galaxy_core.models import model_info

    info = model_info(name)
    return f"{FAMILY_LABELS[info.family]}: {info.title}"


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _cached_model(path: str, modified: float):
    """A loaded model, shared by every session; `modified` makes a rewritten file load afresh."""
    from galaxy_core.prediction import load_model_file

    return load_model_file(Path(path))


def run_model(run, checkpoint: str = "best"):
    """The run's model (best checkpoint or final), loaded once per server. Raises ModelLoadError."""
    path = run.model_path(checkpoint)
    return _cached_model(str(path), path.stat().st_mtime)


def run_label(summary) -> str:
    """'20261128-…-inception_small-ab12 · finished · gz1-3class, 64 px, RGB · test 84.7%' for menus."""
    text = f"{summary.id} · {summary.state.value} · {describe_spec(summary.dataset)}"
    if summary.has_test_results:
        text += f" · test balanced {summary.test_balanced_accuracy:.1%}"
    return text


def choose_run(summaries: list, key: str, label: str = "Run"):
    """A run picker over run summaries; returns the chosen one."""
    by_id = {summary.id: summary for summary in summaries}
    chosen = st.selectbox(label, list(by_id), format_func=lambda run_id: run_label(by_id[run_id]), key=key)
    return by_id[chosen]


def confusion_figure(matrix: np.ndarray, class_names: list, normalised: bool, title: str | None = None) -> go.Figure:
    """The confusion matrix as a heatmap, with one clickable square marker per cell (Streamlit selects points,
    not heatmap cells)."""
    rows = matrix.sum(axis=1, keepdims=True)
    values = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0) if normalised else matrix
    text = [[f"{v:.0%}" if normalised else str(int(v)) for v in row] for row in values]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=class_names,
            y=class_names,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            hoverinfo="skip",
        )
    )
    cells = [(true, predicted) for true in class_names for predicted in class_names]
    figure.add_scatter(
        x=[predicted for _, predicted in cells],
        y=[true for true, _ in cells],
        mode="markers",
        marker={"symbol": "square", "size": 40, "opacity": 0.01},
        hovertemplate="true %{y}, predicted %{x}<extra></extra>",
        showlegend=False,
    )
    figure.update_layout(
        xaxis_title="predicted class",
        yaxis_title="true class",
        yaxis_autorange="reversed",
        height=140 + 60 * len(class_names),
        margin={"t": 40 if title else 20},
        title=title,
        clickmode="event+select",
    )
    return figure
