"""The session's and the server's state shared by the pages: settings, the datasets in memory, the active dataset."""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial

import streamlit as st

from galaxy_core.data import (
    Dataset,
    DatasetChoice,
    DatasetError,
    DatasetSpec,
    create_dataset,
    describe_spec,
    discover_datasets,
    spec_from_link,
    spec_from_name,
    spec_to_link,
)
from galaxy_core.errors import GalaxyLabError
from galaxy_core.runtime import import_tensorflow
from galaxy_core.settings import Settings, SettingsError, load_settings
from pages.ui.display import as_message, plain

ACTIVE_DATASET_KEY = "active_dataset_spec"
DEFAULT_DATASET_PROBLEM_KEY = "default_dataset_problem"
DATASET_PARAM = "dataset"  # the URL's query parameter for the active dataset
MAX_DATASETS_IN_MEMORY = 3
REFRESH_SECONDS = 2  # how often a page redraws what changes on its own (runs training, a probe measuring)


def get_settings() -> Settings:
    """The lab's settings, or a clear error and a stopped page when they are unusable."""
    try:
        return load_settings()
    except SettingsError as error:
        st.error(f"The lab's settings cannot be used: {as_message(error)}")
        st.stop()


@st.cache_data(ttl=30, show_spinner=False)
def dataset_choices(_settings: Settings, settings_key: str) -> list[DatasetChoice]:
    """Datasets found in the data roots (re-scanned every 30 s; `settings_key` keys the cache)."""
    return discover_datasets(_settings)


@dataclass
class _DatasetsInMemory:
    """Datasets in memory for every session of this server: the few most recently used, read-only, and a lock per
    dataset so that two sessions (or a session and the start-up warm-up) never decode the same one twice at once.

    A plain LRU rather than st.cache_data, because a first load reports progress to the page, and Streamlit's
    caches cannot replay elements drawn from inside a cached function onto outside blocks.
    """

    loaded: OrderedDict = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    loading: dict = field(default_factory=dict)
    # One dataset is built at a time in the server: a session's large build cannot double the memory or the CPU
    # another session's build takes.
    building: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key, build) -> Dataset:
        with self.lock:
            key_lock = self.loading.setdefault(key, threading.Lock())
        with key_lock:
            with self.lock:
                if key in self.loaded:
                    self.loaded.move_to_end(key)
                    return self.loaded[key]
            with self.building:
                dataset = build()
            for split in dataset.splits.values():
                split.images.flags.writeable = False
            with self.lock:
                self.loaded[key] = dataset
                while len(self.loaded) > MAX_DATASETS_IN_MEMORY:
                    self.loaded.popitem(last=False)
            return dataset


@st.cache_resource(show_spinner=False)
def _datasets_in_memory() -> _DatasetsInMemory:
    return _DatasetsInMemory()


def load_dataset(spec: DatasetSpec, settings: Settings) -> Dataset:
    """The dataset for `spec`, with a progress bar while it is decoded for the first time."""

    def build() -> Dataset:
        bar = st.empty()

        def progress(done: int, total: int, message: str) -> None:
            bar.progress(min(1.0, done / total) if total else 0.0, text=message)

        try:
            return create_dataset(
                spec, cache_dir=settings.cache_dir, progress=progress, memory_limit_mb=settings.dataset_memory_mb
            )
        finally:
            bar.empty()

    return _datasets_in_memory().get((spec, str(settings.cache_dir)), build)


@st.cache_resource(show_spinner=False)
def warm_up_in_background() -> threading.Thread:
    """Once per server, in a thread: load the default dataset into memory, import every page's module (plotly,
    pandas) and TensorFlow (quietly), so that a first visit to a page does not wait for them."""
    from pages.ui.navigation import LAB_PAGES

    settings, memory = get_settings(), _datasets_in_memory()

    def warm_up() -> None:
        with contextlib.suppress(GalaxyLabError):  # a page says what is wrong with the default dataset
            spec = spec_from_name(settings.default_dataset, settings)
            build = partial(
                create_dataset, spec, cache_dir=settings.cache_dir, memory_limit_mb=settings.dataset_memory_mb
            )
            memory.get((spec, str(settings.cache_dir)), build)
        for page in LAB_PAGES:
            importlib.import_module(f"pages.{page.url_path}")
        import_tensorflow()

    thread = threading.Thread(target=warm_up, name="galaxy-lab-warm-up", daemon=True)
    thread.start()
    return thread


def spare_reruns_keras_garbage_collection() -> None:
    """Once Keras is imported in the server: its clear_session without the full garbage collection.

    Streamlit calls `keras.backend.clear_session()` after every script run of every session, fragment reruns
    included (its script runner's `_clean_problem_modules`), and Keras 3's runs `gc.collect()` over the
    server's ~400,000 objects (TensorFlow, plotly, pandas): 0.3 s of CPU on this machine for each 2-second refresh
    of each session watching a run (benchmarks/bench_classroom.py --watchers, docs/benchmarks.md). The reset of
    Keras's own names stays; freeing memory is left to Python's generational collector, as in any process."""
    backend = getattr(sys.modules.get("keras"), "backend", None)  # None too while another thread imports Keras
    clear_session = getattr(backend, "clear_session", None)
    if clear_session is None or getattr(clear_session, "spares_collection", False):
        return

    @functools.wraps(clear_session)
    def without_collection(free_memory: bool = False):
        return clear_session(free_memory=free_memory)

    without_collection.spares_collection = True
    backend.clear_session = without_collection


def _starting_dataset(settings: Settings) -> DatasetSpec:
    """A new session's dataset: the one in its URL (a reload, a shared link), else the settings' default_dataset,
    else synthetic galaxies; a problem with either is noted in the sidebar."""
    link = st.query_params.get(DATASET_PARAM)
    if link:
        try:
            return spec_from_link(link, settings)
        except GalaxyLabError as error:
            st.session_state[DEFAULT_DATASET_PROBLEM_KEY] = f"The link's dataset cannot be used: {as_message(error)}."
    try:
        return spec_from_name(settings.default_dataset, settings)
    except DatasetError as error:
        st.session_state[DEFAULT_DATASET_PROBLEM_KEY] = (
            f"The default dataset is not available: {as_message(error)}. Using synthetic galaxies."
        )
    return DatasetSpec.of("synthetic")


def active_dataset_spec() -> DatasetSpec:
    """The session's dataset (see `_starting_dataset` for a new session's)."""
    if ACTIVE_DATASET_KEY not in st.session_state:
        st.session_state[ACTIVE_DATASET_KEY] = _starting_dataset(get_settings())
    return st.session_state[ACTIVE_DATASET_KEY]


def activate(spec: DatasetSpec) -> None:
    """Make `spec` the lab's active dataset and rerun, so that the sidebar, drawn before the page, shows it."""
    st.session_state[ACTIVE_DATASET_KEY] = spec
    st.rerun()


def sidebar_status() -> None:
    """The active dataset, in the sidebar and in the URL (so that a reload or a shared link keeps it)."""
    spec = active_dataset_spec()
    st.query_params[DATASET_PARAM] = spec_to_link(spec)
    with st.sidebar:
        st.caption("Active dataset")
        st.markdown(f"**{plain(describe_spec(spec))}**")
        if DEFAULT_DATASET_PROBLEM_KEY in st.session_state:
            st.warning(st.session_state[DEFAULT_DATASET_PROBLEM_KEY])


def note_run_dataset(summary) -> None:
    """Say in the sidebar which dataset the run on this page was trained on, when it is not the active one."""
    if summary.dataset != active_dataset_spec():
        st.sidebar.info(
            f"This page shows run {summary.id[-4:]}, trained on **{plain(describe_spec(summary.dataset))}**."
        )
