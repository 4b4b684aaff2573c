"""The transfer kind on the pages: starting from a trained run (the Train page's form), and a transfer run's link to
its base wherever the run is shown."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import streamlit as st

from galaxy_core.data import DatasetSpec, describe_spec
from galaxy_core.errors import GalaxyLabError
from galaxy_core.training import RunStore, RunSummary, TrainConfig
from galaxy_core.training.kinds.transfer import TRANSFER_SETTINGS, base_layers, transfer_config, transfer_plan
from galaxy_core.training.records import short_run_id
from pages.ui.display import plain
from pages.ui.identity import Viewer
from pages.ui.kinds.train import few_labels_ui
from pages.ui.navigation import LAB_PAGES
from pages.ui.runs import VIEWED_RUN_KEY, run_label, runs_that, train_button
from pages.ui.state import get_settings

EVALUATE_PAGE = next(page for page in LAB_PAGES if page.url_path == "evaluate")
FROZEN = "nothing: the base stays frozen"
# benchmarks/bench_transfer.py on gz1-3class (docs/benchmarks.md, "Transfer from a trained run")
SIMULATION_TO_REAL = (
    "Measured on gz1-3class: a base trained on synthetic galaxies does not help with real ones. Frozen, it scores at "
    "or below training from scratch; fine-tuned whole, it ties at 5% of the labels and falls behind with more: its "
    "features are the simulation's. A base trained on other real galaxies lifted 106 labelled galaxies from 0.43 to "
    "0.82 balanced accuracy."
)
LESSON_MARK = "The class's starting run: "
ROLE_COLOURS = {"frozen": "#9ecae1", "fine-tuned": "#fdae6b", "cut off": "#d9d9d9", "new": "#a1d99b"}


def _bases(viewer: Viewer, lesson: RunSummary | None) -> list[RunSummary]:
    """The runs a new run can start from: ended training runs that kept a model, the lesson's first (whoever's runs
    the menus list)."""
    runs, _ = runs_that(viewer, lambda summary: summary.has_model and not summary.is_label_review)
    if lesson is None:
        return runs
    return [lesson, *(summary for summary in runs if summary.id != lesson.id)]


def transfer_ui(dataset: DatasetSpec, max_epochs: int, viewer: Viewer, lesson: RunSummary | None) -> TrainConfig | None:
    """The base run (the class's starting run, `lesson`, offered first), where to cut it, what to fine-tune, the
    labels and Train; returns the config when pressed."""
    base = _base_ui(viewer, lesson)
    if base is None:
        return None
    layers = base_layers(base.run.model_path("best"))
    if not layers:
        st.error(f"Run {plain(base.name)}'s model file cannot be read: start from another run.")
        return None
    spec = transfer_config(base, dataset).dataset
    size_note = f" (the Dataset page's {dataset.preprocess.image_size} px does not apply)"
    st.caption(
        f"On the active dataset, **{plain(describe_spec(spec))}**, read at the base's input size"
        + (size_note if spec.preprocess != dataset.preprocess else "")
        + "."
    )
    if base.dataset.source == "synthetic" and spec.source != "synthetic":
        st.caption(SIMULATION_TO_REAL)
    cut, unfreeze = _layers_ui(layers)
    labels = few_labels_ui("transfer")
    epochs = st.number_input(
        "Epochs of the head (at most)",
        1,
        max_epochs,
        min(TRANSFER_SETTINGS["epochs"], max_epochs),
        key="train_transfer_epochs",
    )
    config = transfer_config(base, dataset, epochs=int(epochs), base_cut=cut, unfreeze_from=unfreeze, **labels)
    return config if train_button("Train from this run", type="primary", key="train_from_run") else None


def _base_ui(viewer: Viewer, lesson: RunSummary | None) -> RunSummary | None:
    """The run to start from, chosen among those that can be one: the class's starting run (`lesson`) if the
    teacher marked one, else the run looked at last, first."""
    bases = _bases(viewer, lesson)
    if not bases:
        st.info(
            "No run has kept a model yet: train one first (the Quick recipe takes a few minutes), then start "
            "from it here."
        )
        return None
    by_id = {summary.id: summary for summary in bases}
    viewed = st.session_state.get(VIEWED_RUN_KEY)
    first = lesson.id if lesson is not None else viewed
    chosen = st.selectbox(
        "Start from",
        list(by_id),
        index=list(by_id).index(first) if first in by_id else 0,
        format_func=lambda run_id: (
            LESSON_MARK * (lesson is not None and run_id == lesson.id) + run_label(by_id[run_id], viewer)
        ),
        key="train_base_run",
        help="Its network up to the cut is copied into the new run, frozen; a new head learns this dataset's "
        "classes on the base's features (computed once, then cached): seconds, not minutes.",
    )
    return by_id[chosen]


def _layers_ui(layers: list[tuple[str, str]]) -> tuple[str, str]:
    """Where to cut the base and where to fine-tune it from, with the table of what each layer does; returns
    (base_cut, unfreeze_from) as the config takes them ("": the default cut; nothing unfrozen)."""
    names = [name for name, _ in layers]
    classifier = names.index("logits") if "logits" in names else len(names)
    cuts = names[1:classifier]
    left, right = st.columns(2)
    cut = left.selectbox(
        "Cut after",
        cuts,
        index=len(cuts) - 1,
        key="train_base_cut",
        help="The layer whose output feeds the new head; the layers after it are left out.",
    )
    unfreeze = right.selectbox(
        "Then fine-tune from",
        [FROZEN, *reversed(names[1 : names.index(cut) + 1])],
        key="train_unfreeze_from",
        help="Unfrozen layers train on the images at a low rate once the head has trained "
        "(batch normalisation stays frozen, as Keras' transfer-learning guide advises).",
    )
    cut, unfreeze = ("" if cut == cuts[-1] else cut), ("" if unfreeze == FROZEN else unfreeze)
    plan = pd.DataFrame(transfer_plan(layers, cut, unfreeze))
    with st.expander("What each layer does in the new run", expanded=bool(unfreeze)):
        st.dataframe(
            plan.style.map(lambda role: f"background-color: {ROLE_COLOURS.get(role, '')}", subset=["role"]),
            hide_index=True,
        )
    return cut, unfreeze


def base_run_note(summary: RunSummary, run_picker_key: str | None = None, pickable: Collection[str] = ()) -> None:
    """The run a transfer run started from, for a transfer run (nothing for another): a link to evaluate it, or, on
    a page with a run picker (`run_picker_key`, offering the `pickable` runs), a button that picks it there."""
    if summary.base_run is None:
        return
    try:
        base = RunStore(get_settings().runs_dir).get(summary.base_run).summary()
    except (GalaxyLabError, OSError, ValueError):
        st.caption(
            f"Started from run {short_run_id(summary.base_run)}, since deleted: this run keeps its own copy of that "
            "network."
        )
        return
    cut, unfreeze = summary.options.get("base_cut"), summary.options.get("unfreeze_from")
    how = f"cut after {cut}" if cut else "cut where its classifier was"
    how += f", fine-tuned from {unfreeze}" if unfreeze else ", frozen"
    label = f"Started from run {plain(base.name)} ({base.model} on {plain(describe_spec(base.dataset))}; {how})"
    if run_picker_key is None:
        st.page_link(
            EVALUATE_PAGE.streamlit_page(),
            label=label,
            icon=":material/call_split:",
            query_params={"evaluate_run": base.id},
        )
    elif base.id not in pickable:  # not in this page's menu (another's run, with "my runs only")
        st.caption(label)
    else:
        st.button(
            label,
            icon=":material/call_split:",
            type="tertiary",
            on_click=lambda: st.session_state.update({run_picker_key: base.id}),
            key=f"{run_picker_key}_base",
            help="Show the run this one started from",
        )
