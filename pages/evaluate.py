"""Evaluate: what a finished run got right and wrong on its test images, and where it looked."""

import numpy as np
import pandas as pd
import streamlit as st

from galaxy_core.data import DatasetError
from galaxy_core.errors import GalaxyLabError
from galaxy_core.evaluation import (
    answers_changed,
    balanced_accuracy_interval,
    cell_members,
    confident_mistakes,
    summarize,
)
from galaxy_core.inference import RunAnswers, run_answers
from galaxy_core.prediction import ModelLoadError, predict_probabilities
from galaxy_core.training import RunState
from pages.ui.display import (
    as_message,
    confusion_figure,
    enlarge,
    image_grid,
    interval_note,
    label_noise_note,
    lazy_tabs,
    plain,
    plot_text,
)
from pages.ui.identity import Viewer
from pages.ui.members import ensemble_view, member_choice_ui, members_tab
from pages.ui.navigation import run_router
from pages.ui.runs import choose_run, model_key, run_model, runs_apart, runs_that
from pages.ui.start_from_run import base_run_note
from pages.ui.state import get_settings, load_dataset, note_run_dataset

GALLERY_PAGE = 24
MISTAKES_STEP = 6
EXAMPLES_PER_CLASS = 4
MAX_FEATURE_MAPS = 32
CELL_TRUE_KEY, CELL_PREDICTED_KEY = "evaluate_cell_true", "evaluate_cell_predicted"
IMAGE_KEY = "evaluate_image"
AGREEING_MAPS = 0.5  # the correlation above which Grad-CAM and occlusion are said to agree


@st.cache_data(max_entries=8, show_spinner="Predicting the test images…")
def _predict(_model, model_file: tuple, _images: np.ndarray, images_key: tuple, tta: bool) -> np.ndarray:
    return predict_probabilities(_model, _images, tta=tta)


@st.cache_data(max_entries=8, show_spinner="Reading the network's features of every test image…")
def _features_2d(_model, model_file: tuple, _images: np.ndarray, images_key: tuple):
    from galaxy_core.explain import embedding, project_2d

    return project_2d(embedding(_model, _images))


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
        f"**{len(members)}** test images are **{plain(true_name)}** and were predicted **{plain(predicted_name)}**."
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


def image_picker(data: RunAnswers) -> int:
    """A test image chosen by number; the first misclassified one by default."""
    if st.session_state.get(IMAGE_KEY) not in range(len(data.labels)):  # the first visit, or another run
        mistakes = confident_mistakes(data.labels, data.probabilities)
        st.session_state[IMAGE_KEY] = int(mistakes[0]) if len(mistakes) else 0
    return st.selectbox(
        "Test image",
        range(len(data.labels)),
        format_func=lambda i: f"#{i} {data.source_ids[i]} · {data.caption(i)}",
        key=IMAGE_KEY,
    )


def gradcam_tab(data: RunAnswers, whole_ensemble: bool = False) -> None:
    from galaxy_core.explain import default_gradcam_layer, gradcam, overlay, spatial_layer_names

    left, right = st.columns(2)
    with left:
        index = image_picker(data)
    if whole_ensemble:
        layer = None
        right.caption(
            "An ensemble's Grad-CAM: each member's map (at its own last convolutional layer) for the ensemble's "
            "class, averaged with the members' weights. Look at one member above to choose its layer."
        )
    else:
        layers = spatial_layer_names(data.model)
        layer = right.selectbox(
            "Layer", layers, index=layers.index(default_gradcam_layer(data.model)), key="evaluate_layer"
        )
    predicted = int(data.predictions[index])
    classes = st.multiselect(
        "Explain the classes",
        data.class_names,
        default=[data.class_names[predicted]],
        key=f"evaluate_classes_{index}",
        help="Grad-CAM shows where the evidence for a class lies; compare the predicted class with others.",
    )
    explained_image(data, index, classes, layer)
    st.subheader("What the network looks at, per class")
    st.caption(f"The {EXAMPLES_PER_CLASS} most confident correct test images of each class, for its own class.")
    for class_index, name in enumerate(data.class_names):
        examples = cell_members(data.labels, data.probabilities, class_index, class_index)[:EXAMPLES_PER_CLASS]
        if not len(examples):
            st.caption(f"{plain(name)}: no correctly classified test image.")
            continue
        heatmaps = gradcam(data.model, data.images[examples], class_index, layer)
        painted = np.stack([overlay(data.images[i], h) for i, h in zip(examples, heatmaps, strict=True)])
        st.markdown(f"**{plain(name)}**")
        image_grid(painted, [data.caption(i) for i in examples], columns=EXAMPLES_PER_CLASS, size=160)


def explained_image(data: RunAnswers, index: int, classes: list, layer: str | None = None) -> None:
    """One test image with, for each chosen class, its Grad-CAM map above its occlusion map, and whether they
    agree."""
    from galaxy_core.explain import gradcam, map_agreement, occlusion, overlay

    image = data.images[index]
    width = max(4, 1 + len(classes))
    gradcam_row, occlusion_row = st.columns(width), st.columns(width)
    gradcam_row[0].image(enlarge(image, 192), caption=f"input · true {plain(data.class_names[data.labels[index]])}")
    occlusion_row[0].caption(
        "Below each Grad-CAM map, **occlusion**: a grey patch (8 px, every 4 px) hides part of the galaxy, and the "
        "map shows how much the class's probability drops (red = hiding this hurts most)."
    )
    verdicts = []
    for gradcam_column, occlusion_column, name in zip(gradcam_row[1:], occlusion_row[1:], classes, strict=False):
        class_index = data.class_names.index(name)
        heatmap = gradcam(data.model, image, class_index, layer)[0]
        occluded = occlusion(data.model, image, class_index)[0]
        probability = data.probabilities[index, class_index]
        shown = plain(name)
        gradcam_column.image(
            enlarge(overlay(image, heatmap), 192), caption=f"Grad-CAM · {shown}: p = {probability:.2f}"
        )
        occlusion_column.image(enlarge(overlay(image, occluded), 192), caption=f"occlusion · {shown}")
        agreement = map_agreement(heatmap, occluded)
        if agreement is None:
            verdicts.append(f"{shown}: one map is empty (no evidence found that way)")
        else:
            verdicts.append(
                f"{shown}: they {'agree' if agreement >= AGREEING_MAPS else 'disagree'} (r = {agreement:.2f})"
            )
    if verdicts:
        st.caption(
            "; ".join(verdicts) + ". Grad-CAM reads the gradients of one layer; occlusion asks the whole model. Where "
            "they agree, the evidence is there. Where they disagree, the model may use something spread over the "
            "galaxy that no single patch hides, the grey patch may itself look like a feature to it, or the layer "
            "Grad-CAM reads is too coarse: trust neither map alone."
        )


def feature_map_tab(data: RunAnswers, model_file: tuple) -> None:
    import plotly.express as px

    try:
        coordinates, shares = _features_2d(
            data.model, model_file, data.images, (len(data.images), tuple(data.class_names))
        )
    except GalaxyLabError as error:  # too few test images, or a model without a classifier layer to read
        st.info(f"No feature map for this run: {as_message(error)}.")
        return
    st.markdown(
        "Each test galaxy as the network sums it up just before its classifier (the features of its last layer), "
        "projected to two dimensions by principal component analysis. Galaxies the network finds alike lie close; "
        "well-separated colours mean the classes are easy to tell apart from these features. "
        "Click a point to see that galaxy and where the network looked."
    )
    predictions = data.predictions
    table = pd.DataFrame(
        {
            "component 1": coordinates[:, 0],
            "component 2": coordinates[:, 1],
            "true class": [plot_text(data.class_names[label]) for label in data.labels],
            "answer": np.where(predictions == data.labels, "right", "wrong"),
            "predicted": [plot_text(data.class_names[p]) for p in predictions],
            "probability": data.probabilities[np.arange(len(predictions)), predictions].round(2),
            "image": [plot_text(source_id) for source_id in data.source_ids],
            "index": np.arange(len(predictions)),
        }
    )
    figure = px.scatter(
        table,
        x="component 1",
        y="component 2",
        color="true class",
        symbol="answer",
        symbol_map={"right": "circle", "wrong": "x"},
        color_discrete_sequence=px.colors.qualitative.D3,  # the theme's blues are too alike
        category_orders={"true class": [plot_text(name) for name in data.class_names], "answer": ["right", "wrong"]},
        hover_data={"image": True, "predicted": True, "probability": True, "index": False},
        custom_data=["index"],
        labels={
            "component 1": f"component 1 ({shares[0]:.0%} of the variance)",
            "component 2": f"component 2 ({shares[1]:.0%})",
        },
    )
    figure.update_traces(marker={"size": 7, "opacity": 0.75})
    event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="evaluate_embedding")
    points = event.selection.points if event else []
    clicked = int(points[0]["customdata"][0]) if points else None
    if clicked is not None and clicked != st.session_state.get("evaluate_clicked_point"):
        st.session_state[IMAGE_KEY] = clicked
    st.session_state["evaluate_clicked_point"] = clicked
    st.caption(
        f"{int((predictions != data.labels).sum())} of {len(predictions)} answers are wrong (x). The hover names the "
        "image and the answer; plotly's hover cannot show pictures, so a click shows the galaxy below."
    )
    index = image_picker(data)
    explained_image(data, index, [data.class_names[predictions[index]]])


def inside_tab(data: RunAnswers) -> None:
    from galaxy_core.explain import feature_maps, first_conv_filters, spatial_layer_names

    layers = spatial_layer_names(data.model)
    if not layers:  # an ensemble: its layers are its members'
        st.info("An ensemble has no layers of its own: look at one of its members above to see inside it.")
        return
    st.markdown("**Feature maps**: what each filter of a layer responds to in one image (bright = strong).")
    left, right = st.columns(2)
    with left:
        index = image_picker(data)
    layer = right.selectbox("Layer", layers, key="evaluate_feature_layer")
    maps = feature_maps(data.model, data.images[index], layer)
    count = min(MAX_FEATURE_MAPS, maps.shape[-1])
    tiles = np.rint(np.moveaxis(maps[..., :count], -1, 0) * 255).astype(np.uint8)[..., None]
    st.caption(f"{layer}: {maps.shape[0]}x{maps.shape[1]} maps, the first {count} of {maps.shape[-1]} channels.")
    image_grid(tiles, [f"channel {c}" for c in range(count)], columns=8, size=96)
    name, filters = first_conv_filters(data.model)
    st.markdown(
        f"**First-layer filters** ({name}): the {filters.shape[0]} kernels the network slides over the image, "
        "each scaled to its own range. Trained ones often look like edge and colour detectors."
    )
    image_grid(filters, [str(i) for i in range(len(filters))], columns=16, size=48)


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
