"""Evaluate: what a finished run got right and wrong on its test images, and where it looked."""

import numpy as np
import pandas as pd
import streamlit as st

from galaxy_core.answers.inference import RunAnswers, run_answers
from galaxy_core.answers.prediction import ModelLoadError, predict_probabilities
from galaxy_core.data import DatasetError
from galaxy_core.evaluation import (
    answers_changed,
    balanced_accuracy_interval,
    cell_members,
    confident_mistakes,
    summarize,
)
from galaxy_core.training import RunState
from pages.ui.display import (
    as_message,
    confusion_figure,
    image_grid,
    interval_note,
    label_noise_note,
    lazy_tabs,
    plain,
)
from pages.ui.explain_tabs import feature_map_tab, gradcam_tab, inside_tab
from pages.ui.identity import Viewer
from pages.ui.kinds.ensemble import ensemble_view, member_choice_ui, members_tab
from pages.ui.kinds.transfer import base_run_note
from pages.ui.navigation import run_router
from pages.ui.runs import choose_run, model_key, run_model, runs_apart, runs_that
from pages.ui.state import get_settings, load_dataset, note_run_dataset

GALLERY_PAGE = 24
MISTAKES_STEP = 6
CELL_TRUE_KEY, CELL_PREDICTED_KEY = "evaluate_cell_true", "evaluate_cell_predicted"


@st.cache_data(max_entries=8, show_spinner="Predicting the test images…")
def _predict(_model, model_file: tuple, _images: np.ndarray, images_key: tuple, tta: bool) -> np.ndarray:
    return predict_probabilities(_model, _images, tta=tta)


def load_answers(run, checkpoint: str, tta: bool) -> RunAnswers:
    """The chosen model's answers on the run's test split: saved predictions when they fit, computed otherwise
    (cached per model file and dataset)."""
    dataset = load_dataset(run.summary().dataset, get_settings())
    images_key = (dataset.spec, len(dataset.splits["test"]))

    def predict(images: np.ndarray) -> np.ndarray:
        return _predict(run_model(run, checkpoint), model_key(run, checkpoint), images, images_key, tta)

    return run_answers(
        run, dataset, checkpoint=checkpoint, tta=tta, load_model=lambda: run_model(run, checkpoint), predict=predict
    )


def metrics_tab(data: RunAnswers) -> None:
    summary = summarize(data.labels, data.predictions, data.class_names)
    columns = st.columns(3)
    columns[0].metric("Accuracy", f"{summary['accuracy']:.1%}")
    columns[1].metric(
        "Balanced accuracy", f"{summary['balanced_accuracy']:.1%}", help="The mean of the per-class recalls."
    )
    columns[2].metric("Macro F1", f"{summary['macro_f1']:.3f}")
    interval_note(balanced_accuracy_interval(data.labels, data.predictions))
    table = pd.DataFrame(summary["per_class"]).T.rename_axis("class").reset_index()
    st.dataframe(
        table,
        hide_index=True,
        column_config={name: st.column_config.NumberColumn(format="%.3f") for name in ("precision", "recall", "f1")},
    )
    st.caption(
        "Recall: of the galaxies of this class, the share found. Precision: of those called this class, the share "
        "right. F1: their harmonic mean. Support: test images of the class."
    )
    label_noise_note()


def matrix_tab(data: RunAnswers) -> None:
    matrix = summarize(data.labels, data.predictions, data.class_names)["confusion_matrix"]
    normalised = st.toggle("Row-normalised (share of each true class)", key="evaluate_normalised", bind="query-params")
    event = st.plotly_chart(
        confusion_figure(np.asarray(matrix), data.class_names, normalised),
        on_select="rerun",
        selection_mode="points",
        key="evaluate_matrix",
    )
    points = event.selection.points if event else []
    # The chart keeps reporting its selection on every rerun: apply a click once, so the menus stay free.
    cell = points[0].get("customdata") if points else None
    clicked = (data.class_names[int(cell[0])], data.class_names[int(cell[1])]) if cell else None
    if clicked and clicked != st.session_state.get("evaluate_clicked_cell"):
        st.session_state[CELL_TRUE_KEY], st.session_state[CELL_PREDICTED_KEY] = clicked
    st.session_state["evaluate_clicked_cell"] = clicked
    st.caption("Click a cell, or choose it here, to see its images.")
    left, right = st.columns(2)
    true_name = left.selectbox("True class", data.class_names, key=CELL_TRUE_KEY, bind="query-params")
    predicted_name = right.selectbox("Predicted class", data.class_names, key=CELL_PREDICTED_KEY, bind="query-params")
    members = cell_members(
        data.labels, data.probabilities, data.class_names.index(true_name), data.class_names.index(predicted_name)
    )
    st.markdown(
        f"**{len(members)}** test {'image is' if len(members) == 1 else 'images are'} **{plain(true_name)}** and "
        f"{'was' if len(members) == 1 else 'were'} predicted **{plain(predicted_name)}**."
    )
    shown = members
    if len(members) > GALLERY_PAGE:
        pages = (len(members) + GALLERY_PAGE - 1) // GALLERY_PAGE
        page = st.number_input(f"Page (of {pages}), the most confident first", 1, pages, 1, key="evaluate_cell_page")
        shown = members[(page - 1) * GALLERY_PAGE : page * GALLERY_PAGE]
        st.caption(
            f"Images {(page - 1) * GALLERY_PAGE + 1}-{(page - 1) * GALLERY_PAGE + len(shown)} of {len(members)}."
        )
    image_grid(data.images[shown], [data.caption(i) for i in shown])


def mistakes_tab(data: RunAnswers) -> None:
    mistakes = confident_mistakes(data.labels, data.probabilities)
    if not len(mistakes):
        st.success("No test image is misclassified.")
        return
    st.markdown(
        f"**{len(mistakes)}** of {len(data.labels)} test images are misclassified; the most confident mistakes "
        "first (true → predicted, confidence). Confident mistakes are often label noise or odd images."
    )
    shown = len(mistakes)
    if shown > MISTAKES_STEP:  # a slider needs more than one position
        shown = st.slider(
            "How many", MISTAKES_STEP, min(shown, 120), min(GALLERY_PAGE, shown), MISTAKES_STEP, key="evaluate_n"
        )
    image_grid(data.images[mistakes[:shown]], [data.caption(i) for i in mistakes[:shown]])


def tta_tab(run, checkpoint: str) -> None:
    st.markdown(
        "Galaxies have no preferred orientation: each of the 8 flips and quarter turns of an image is an equally "
        "good picture of it. Averaging the model's answers over the 8 views (test-time augmentation) usually "
        "makes it steadier."
    )
    plain = load_answers(run, checkpoint, tta=False)
    averaged = load_answers(run, checkpoint, tta=True)
    figures = {
        label: summarize(part.labels, part.predictions, part.class_names)
        for label, part in (("one view", plain), ("8 views averaged", averaged))
    }
    rows = {
        label: {
            "accuracy": f["accuracy"],
            "balanced accuracy": f["balanced_accuracy"],
            "macro F1": f["macro_f1"],
            **{f"recall {name}": m["recall"] for name, m in f["per_class"].items()},
        }
        for label, f in figures.items()
    }
    st.dataframe(pd.DataFrame(rows).T.style.format("{:.3f}"))
    fixed, broken = answers_changed(plain.labels, plain.predictions, averaged.predictions)
    st.markdown(f"Averaging corrects **{fixed}** test images and gets **{broken}** wrong that one view got right.")
    label_noise_note()


def render(viewer: Viewer) -> None:
    """Draw the Evaluate page."""
    st.title("Evaluate")
    runs, others = runs_that(viewer, lambda summary: summary.has_model)
    if not runs:
        st.info("No run with a model yet: train one on the Train page, then come back here.")
        runs_apart(others, "be evaluated")
        st.stop()
    summary = choose_run(runs, viewer, key="evaluate_run")
    base_run_note(summary, run_picker_key="evaluate_run", pickable={run.id for run in runs})
    runs_apart(others, "be evaluated")
    note_run_dataset(summary)
    run = summary.run
    if summary.state is not RunState.FINISHED:
        st.warning(f"This run {as_message(summary.message)}. Its best checkpoint so far is shown.")
    left, right = st.columns(2)
    checkpoint = left.radio(
        "Model",
        run.checkpoints(),
        format_func={"best": "best checkpoint (best validation epoch)", "final": "final model (last epoch)"}.get,
        horizontal=True,
        key="evaluate_checkpoint",
        bind="query-params",
    )
    tta = right.toggle("Average over 8 flips and rotations (TTA)", key="evaluate_tta", bind="query-params")
    try:
        try:
            answers = load_answers(run, checkpoint, tta)
        except (DatasetError, ValueError) as error:
            st.error(f"This run cannot be evaluated: {as_message(error)}")
            st.stop()
        show_tabs(summary, checkpoint, answers, tta)
    except ModelLoadError as error:  # with saved predictions, only the tabs that explain the model need it
        st.error(f"The model cannot be loaded: {as_message(error)}")


def show_tabs(summary, checkpoint: str, answers: RunAnswers, tta: bool) -> None:
    """The tabs, of the whole model or, for an ensemble, of the network chosen above them (plus its Members)."""
    run, view = summary.run, ensemble_view(summary)
    shown, member = (answers, None) if view is None else member_choice_ui(summary, view, answers, tta)
    tabs = {
        "Metrics": lambda: metrics_tab(shown),
        "Confusion matrix": lambda: matrix_tab(shown),
        "Mistakes": lambda: mistakes_tab(shown),
        "Grad-CAM": lambda: gradcam_tab(shown, whole_ensemble=view is not None and member is None),
        "Inside the network": lambda: inside_tab(shown),
        "Feature map": lambda: feature_map_tab(shown, (*model_key(run, checkpoint), member)),
        "Test-time augmentation": lambda: tta_tab(run, checkpoint),
    }
    if view is not None:
        tabs["Members"] = lambda: members_tab(summary, view, answers)
    lazy_tabs("evaluate_tabs", tabs)


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
