"""Convolution playground: a kernel slid over a galaxy, with stride, padding and pooling, and the output size
worked out. Numpy only: no TensorFlow is imported to open this page."""

from dataclasses import replace

import numpy as np
import plotly.express as px
import streamlit as st

from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.answers.uploads import ImageInput, UploadLimits, read_uploads
from galaxy_core.convolution import (
    KERNELS,
    PADDINGS,
    POOLINGS,
    convolve,
    output_size_in_words,
    parse_kernel,
    pool,
)
from galaxy_core.data import DatasetError, to_grayscale
from galaxy_core.data.images import SUPPORTED_EXTENSIONS, preprocess_array
from galaxy_core.errors import GalaxyLabError
from pages.ui.display import as_message, enlarge, image_grid, plain
from pages.ui.identity import Viewer
from pages.ui.navigation import run_router
from pages.ui.runs import choose_run, run_model, runs_that
from pages.ui.state import active_dataset_spec, get_settings, load_dataset

TYPED = "type your own"
MAX_TRAINED_FILTERS = 16
BOX_COLOUR = np.array([255, 64, 64], np.uint8)


def galaxy_ui(dataset) -> np.ndarray:
    """A training galaxy of the active dataset by number, or a dropped image prepared as the dataset's images are
    (uint8)."""
    dropped = st.file_uploader(
        "Or drop an image of your own",
        type=[ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS],
        key="playground_upload",
        max_upload_size=get_settings().upload_limit_mb,
        help="It is cropped and resized as the active dataset's images are; it is never stored.",
    )
    if dropped is not None:
        uploads = read_uploads(
            [(dropped.name, dropped.getvalue())], dataset.spec.preprocess, UploadLimits.from_settings(get_settings())
        )
        usable = next((upload for upload in uploads if isinstance(upload, ImageInput)), None)
        if usable is not None:
            if len(uploads) > 1:  # an archive under an image's name
                st.caption(
                    f"{plain(dropped.name)} holds {len(uploads)} files: the first image, {plain(usable.name)}, is used."
                )
            return usable.pixels
        st.warning(
            f"**{plain(dropped.name)}** cannot be used: {as_message(uploads[0].reason)}. A galaxy of the dataset is "
            "shown instead."
        )
    train = dataset.splits["train"]
    index = st.number_input(f"Galaxy (of {len(train)} training images)", 0, len(train) - 1, 0, key="playground_image")
    return train.images[index]


@st.cache_resource(max_entries=4, show_spinner="Building the model…")
def _built_model(name: str, input_shape: tuple):
    from galaxy_core.models import create_model

    return create_model(name, input_shape, 3)


def with_box(image: np.ndarray, start: float, end: float, size: int = 256) -> np.ndarray:
    """The image enlarged, RGB, with the square [start, end] (input pixels, both sides) outlined where it lies on
    the image."""
    big = enlarge(np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image, size)
    factor = big.shape[0] // image.shape[0]
    low = int(np.clip(np.floor(start * factor), 0, big.shape[0] - 1))
    high = int(np.clip(np.ceil((end + 1) * factor) - 1, 0, big.shape[0] - 1))
    width = max(1, factor // 2)
    for edge in (low, high - width + 1):
        big[edge : edge + width, low : high + 1] = BOX_COLOUR
        big[low : high + 1, edge : edge + width] = BOX_COLOUR
    return big


def receptive_field_ui(galaxy: np.ndarray) -> None:
    """How much of the galaxy one unit of a chosen layer of a chosen model sees, drawn on it."""
    st.subheader("What one unit sees: the receptive field")
    if not st.toggle("Show the receptive field of a layer", key="playground_field"):
        st.caption(
            "Each layer looks at a wider part of the image than the one before. Building a model imports "
            "TensorFlow: a few seconds the first time."
        )
        return
    from galaxy_core.answers.explain import default_gradcam_layer, receptive_field, spatial_layer_names
    from galaxy_core.models import list_models, model_info
    from galaxy_core.training.config import DEFAULT_MODEL

    side = galaxy.shape[0]
    names = [name for name in list_models() if model_info(name).min_input_size <= side]
    left, right = st.columns(2)
    model_name = left.selectbox(
        "Model",
        names,
        index=names.index(DEFAULT_MODEL) if DEFAULT_MODEL in names else 0,
        format_func=lambda name: model_info(name).title,
        key="playground_field_model",
    )
    model = _built_model(model_name, (side, side, galaxy.shape[-1]))
    layers = spatial_layer_names(model)
    layer = right.selectbox(
        "Layer",
        layers,
        index=layers.index(default_gradcam_layer(model)),  # a deep layer: it sees most of the galaxy
        key=f"playground_field_layer_{model_name}",
    )
    try:
        field = receptive_field(model, layer)
    except GalaxyLabError as error:
        st.error(f"This cannot be worked out: {as_message(error)}.")
        return
    start, end = field.box()
    picture, words = st.columns([1, 2])
    picture.image(with_box(galaxy, start, end), caption=f"the middle unit of {layer}")
    shown = min(end, side - 1) - max(start, 0) + 1
    if field.size >= 2 * side - 1:
        reach = "the whole image, from wherever the unit is"
    elif field.size > side:
        reach = "more than the image from the middle unit: past its edges, padding"
    else:
        reach = f"{shown**2 / side**2:.0%} of it"
    words.markdown(
        f"Each unit of **{layer}** sees a **{field.size}x{field.size} px** square of the {side} px input ({reach})"
        + f". Its map is {field.map_size}x{field.map_size}: neighbouring units look {field.jump} px apart. "
        "Each convolution widens the square by (kernel - 1) times that step, and each stride or pooling "
        "multiplies the step: that is how a deep layer comes to see the whole galaxy while the first sees a few "
        "pixels."
    )


def trained_layer_ui(galaxy: np.ndarray, viewer: Viewer) -> None:
    """The first convolution of a trained run, its kernels and their feature maps on the same galaxy (resized and
    coloured as the run's images were)."""
    st.subheader("A trained network's first layer")
    if not st.toggle("Show the first convolution of a trained run on this galaxy", key="playground_trained"):
        st.caption("Loading a model imports TensorFlow: it takes a few seconds the first time.")
        return
    runs, _ = runs_that(viewer, lambda summary: summary.has_model)
    if not runs:
        st.info("No run with a model yet: train one on the Train page.")
        return
    summary = choose_run(runs, viewer, key="playground_run")
    try:
        model = run_model(summary.run)
    except ModelLoadError as error:
        st.error(f"The model cannot be loaded: {as_message(error)}")
        return
    from galaxy_core.answers.explain import feature_maps, first_conv_filters

    rgb = galaxy if galaxy.shape[-1] == 3 else np.repeat(galaxy, 3, axis=-1)
    pixels = preprocess_array(rgb[None], replace(summary.dataset.preprocess, crop_fraction=1.0))[0]
    name, kernels = first_conv_filters(model)
    maps = feature_maps(model, pixels, name)
    count = min(MAX_TRAINED_FILTERS, maps.shape[-1])
    st.markdown(
        f"**{name}**: {maps.shape[-1]} kernels of {kernels.shape[1]}x{kernels.shape[2]} learned by {summary.model}, "
        f"the first {count} shown with what each makes of this galaxy ({pixels.shape[0]} px in, "
        f"{maps.shape[0]} px out). Compare them with the kernels above: trained ones are often edge, blob and "
        "colour detectors."
    )
    image_grid(kernels[:count], [f"kernel {i}" for i in range(count)], columns=8, size=48)
    tiles = np.rint(np.moveaxis(maps[..., :count], -1, 0) * 255).astype(np.uint8)[..., None]
    image_grid(tiles, [f"map {i}" for i in range(count)], columns=8, size=96)


def kernel_ui() -> np.ndarray:
    choice = st.selectbox("Kernel", [*KERNELS, TYPED], key="playground_kernel", bind="query-params")
    if choice != TYPED:
        st.code("\n".join(" ".join(f"{value:6.2f}" for value in row) for row in KERNELS[choice]), language=None)
        return KERNELS[choice]
    text = st.text_area("Kernel (3x3 or 5x5: rows on lines, numbers apart)", "0 -1 0\n-1 5 -1\n0 -1 0")
    try:
        return parse_kernel(text)
    except GalaxyLabError as error:
        st.error(f"This is not a kernel: {as_message(error)}.")
        st.stop()


def map_figure(values: np.ndarray, title: str):
    """A feature map as a heatmap with its own colour scale (a kernel's output may be negative)."""
    figure = px.imshow(values, color_continuous_scale="gray", title=title, aspect="equal")
    figure.update_layout(height=360, margin={"t": 40, "b": 0, "l": 0, "r": 0}, coloraxis_showscale=False)
    return figure


def render(viewer: Viewer) -> None:
    """Draw the Convolution page."""
    st.title("Convolution")
    st.markdown(
        "A convolutional layer slides a small grid of numbers, the **kernel**, over the image: each output pixel is "
        "the sum of the kernel times the pixels under it. The **stride** is the step between positions; "
        "**padding** adds zeros around the image so that the edges get an output too; **pooling** then keeps the "
        "largest (or the mean) value of each 2x2 block, halving the map. A trained network learns its kernels."
    )
    try:
        dataset = load_dataset(active_dataset_spec(), get_settings())
    except (DatasetError, OSError) as error:
        st.error(f"The active dataset cannot be loaded: {as_message(error)}")
        st.stop()
    left, right = st.columns([1, 2])
    with left:
        galaxy = galaxy_ui(dataset)
        image = (to_grayscale(galaxy) if galaxy.shape[-1] == 3 else galaxy)[..., 0].astype(np.float32)
        kernel = kernel_ui()
        stride = st.select_slider("Stride", [1, 2, 3], 1, key="playground_stride", bind="query-params")
        padding = st.radio("Padding", PADDINGS, horizontal=True, key="playground_padding", bind="query-params")
        pooling = st.radio("Pooling (2x2)", POOLINGS, horizontal=True, key="playground_pooling", bind="query-params")
    try:
        feature_map = convolve(image, kernel, stride, padding)
        pooled = pool(feature_map, pooling)
    except GalaxyLabError as error:
        right.error(f"This cannot be computed: {as_message(error)}.")
        st.stop()
    side = kernel.shape[0]
    with right:
        st.markdown(
            f"**Output size**: {output_size_in_words(image.shape[0], side, stride, padding)} px"
            + (f", then 2x2 {pooling} pooling: {pooled.shape[0]} px" if pooling != "none" else "")
        )
        columns = st.columns(3 if pooling != "none" else 2)
        columns[0].image(enlarge(image.astype(np.uint8)[..., None], 256), caption=f"input, {image.shape[0]} px")
        columns[1].plotly_chart(map_figure(feature_map, f"feature map, {feature_map.shape[0]} px"))
        if pooling != "none":
            columns[2].plotly_chart(map_figure(pooled, f"after {pooling} pooling, {pooled.shape[0]} px"))
    st.caption(
        "Bright: a strong positive answer, dark: a negative one. Like every deep-learning library, the kernel is "
        "not flipped (strictly, this is cross-correlation)."
    )
    trained_layer_ui(galaxy, viewer)
    receptive_field_ui(galaxy)


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
