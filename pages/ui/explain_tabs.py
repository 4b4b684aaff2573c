"""The Evaluate page's tabs that explain a model: where it looked (Grad-CAM beside occlusion), how it sorts the test
set (the feature map), and what its layers respond to."""

import numpy as np
import pandas as pd
import streamlit as st

from galaxy_core.answers.inference import RunAnswers
from galaxy_core.errors import GalaxyLabError
from galaxy_core.evaluation import (
    cell_members,
    confident_mistakes,
)
from pages.ui.display import (
    as_message,
    enlarge,
    image_grid,
    plain,
    plot_text,
)

EXAMPLES_PER_CLASS = 4


MAX_FEATURE_MAPS = 32


IMAGE_KEY = "evaluate_image"


AGREEING_MAPS = 0.5  # the correlation above which Grad-CAM and occlusion are said to agree


@st.cache_data(max_entries=8, show_spinner="Reading the network's features of every test image…")
def _features_2d(_model, model_file: tuple, _images: np.ndarray, images_key: tuple):
    from galaxy_core.answers.explain import embedding, project_2d

    return project_2d(embedding(_model, _images))


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
    from galaxy_core.answers.explain import default_gradcam_layer, gradcam, overlay, spatial_layer_names

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
    from galaxy_core.answers.explain import gradcam, map_agreement, occlusion, overlay

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
    from galaxy_core.answers.explain import feature_maps, first_conv_filters, spatial_layer_names

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
