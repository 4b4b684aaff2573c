"""Dataset: choose a dataset and its preprocessing, then look at it from every side."""

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from galaxy_core.data import (
    SPLIT_NAMES,
    AugmentOptions,
    Dataset,
    DatasetError,
    DatasetSpec,
    augment_images,
    dataset_source,
    open_image,
    resolve_in_data_roots,
    to_grayscale,
)
from galaxy_core.data.folder import folder_spec
from galaxy_core.data.images import ImageDecodeError
from galaxy_core.data.sources import SourceOption
from galaxy_core.data.stats import class_mean_images, imbalance, pixel_histograms
from pages.ui.display import as_message, enlarge, image_grid, lazy_tabs, plain
from pages.ui.identity import Viewer
from pages.ui.navigation import run_router
from pages.ui.state import activate, active_dataset_spec, dataset_choices, get_settings, load_dataset

IMAGE_SIZES = [32, 48, 50, 64, 69, 96, 128, 160, 224]
PAGE_SIZE = 24
OTHER_FOLDER = "Another folder in a data root…"
SELECTED_IMAGE_KEY = "dataset_selected_image"


def identity(spec: DatasetSpec) -> tuple:
    """Which data a spec reads (its source and path), whatever its options and preprocessing."""
    return spec.source, spec.path


def option_widget(option: SourceOption, value, column):
    """A widget for one of a source's options, drawn from its registered type, range and help."""
    if option.choices:
        return column.selectbox(
            option.name.replace("_", " ").capitalize(),
            option.choices,
            index=option.choices.index(value),
            help=option.help,
        )
    return column.number_input(
        option.name.replace("_", " ").capitalize(),
        option.kind(option.minimum),
        option.kind(option.maximum),
        option.kind(value),
        option.kind(option.step or 1),
        help=option.help,
    )


def dataset_picker_ui(settings) -> DatasetSpec:
    """The dataset and preprocessing the user chose; also becomes the lab's active dataset."""
    active = active_dataset_spec()
    choices = dataset_choices(settings, repr(settings))
    labels = [c.label for c in choices] + [OTHER_FOLDER]
    known = [identity(c.spec) for c in choices]
    index = known.index(identity(active)) if identity(active) in known else len(labels) - 1
    label = st.selectbox(
        "Dataset",
        labels,
        index=index,
        help="Synthetic galaxies are built in; folders and Galaxy10 files come from the data roots.",
    )
    base = other_folder_ui(settings, active) if label == OTHER_FOLDER else choices[labels.index(label)].spec
    if identity(base) != identity(active):
        activate(base)
    preprocess_form(active)
    return active


def other_folder_ui(settings, active: DatasetSpec) -> DatasetSpec:
    """A folder typed by the user, checked to be inside a data root (the page stops with the reason if not)."""
    typed = st.text_input(
        "Folder inside a data root",
        value=active.path or "",
        placeholder="gz1-3class or /full/path/inside/a/data/root",
    )
    if not typed:
        st.info(
            "Type the name of a folder of class folders in the lab's data folders (its data roots), or its path "
            "inside them."
        )
        st.stop()
    try:
        return folder_spec(resolve_in_data_roots(typed, settings.data_roots), settings)
    except DatasetError as error:
        st.error(as_message(error))
        st.stop()


def preprocess_form(active: DatasetSpec) -> None:
    """The active dataset's preprocessing and its source's options; Load makes them the active dataset."""
    with st.form(key=f"preprocess-{identity(active)}"):
        size_col, crop_col, channel_col = st.columns(3)
        preprocess = active.preprocess
        image_size = size_col.selectbox(
            "Image size (px)",
            IMAGE_SIZES,
            index=IMAGE_SIZES.index(preprocess.image_size) if preprocess.image_size in IMAGE_SIZES else 3,
        )
        crop = crop_col.slider(
            "Centre crop (fraction of the side)",
            0.1,
            1.0,
            float(preprocess.crop_fraction),
            0.05,
            help="Real survey cutouts show the galaxy in the middle; cropping keeps its detail.",
        )
        channels = channel_col.radio(
            "Colour",
            [3, 1],
            index=[3, 1].index(preprocess.channels),
            horizontal=True,
            format_func=lambda c: "RGB" if c == 3 else "Grayscale",
        )
        knobs = [option for option in dataset_source(active.source).options if option.on_page]
        columns = st.columns(3) if knobs else []
        chosen = {
            option.name: option_widget(option, active.option(option.name, option.default), columns[i % 3])
            for i, option in enumerate(knobs)
        }
        if st.form_submit_button("Load"):
            activate(
                active.with_options(**chosen).with_preprocess(
                    image_size=image_size, crop_fraction=round(crop, 2), channels=channels
                )
            )


def overview_ui(dataset: Dataset) -> None:
    counts = dataset.class_counts()
    columns = st.columns(5)
    columns[0].metric("Classes", dataset.num_classes)
    columns[1].metric("Image", " x ".join(map(str, dataset.splits["train"].images.shape[1:])))
    for column, split in zip(columns[2:], SPLIT_NAMES, strict=True):
        column.metric(split.capitalize(), f"{int(counts[split].sum()):,}")
    # A table with share bars, not a chart: a chart library's first load in a new browser session costs a visitor
    # 0.7-1.5 s on the page every session opens on (docs/benchmarks.md, "First page renders").
    table = pd.DataFrame({"class": dataset.class_names})
    for split in SPLIT_NAMES:
        table[split] = counts[split]
        table[f"{split} share"] = counts[split] / max(1, counts[split].sum())
    share = {"format": "percent", "min_value": 0.0, "max_value": 1.0}
    st.dataframe(
        table,
        hide_index=True,
        column_config={f"{split} share": st.column_config.ProgressColumn(**share) for split in SPLIT_NAMES},
    )
    dominant = imbalance(dataset)
    if dominant:
        st.warning(
            f"The classes are imbalanced: **{plain(dominant.majority)}** is {dominant.share:.0%} of the training "
            f"images. A network that always answers {plain(dominant.majority)} scores {dominant.share:.0%} accuracy "
            f"but only {dominant.balanced_accuracy:.0%} balanced accuracy (the mean of the per-class recalls), so "
            "judge models by balanced accuracy and per-class recall."
        )
    if dataset.skipped:
        with st.expander(f"{len(dataset.skipped)} file(s) were skipped", icon=":material/warning:"):
            st.dataframe(pd.DataFrame([{"file": s.name, "reason": s.reason} for s in dataset.skipped]), hide_index=True)
    st.caption(as_message(dataset.description))


def browse_ui(dataset: Dataset) -> None:
    """A paged grid of one class, and a closer look at one image (remembered for the augmentation tab)."""
    split_col, class_col, page_col = st.columns(3)
    split_name = split_col.selectbox("Split", SPLIT_NAMES)
    class_index = class_col.selectbox("Class", range(dataset.num_classes), format_func=lambda i: dataset.class_names[i])
    split = dataset.splits[split_name]
    members = np.flatnonzero(split.labels == class_index)
    if not len(members):
        st.info(f"The {split_name} split has no {plain(dataset.class_names[class_index])} images.")
        return
    pages = (len(members) + PAGE_SIZE - 1) // PAGE_SIZE
    page = page_col.number_input(f"Page (of {pages})", 1, pages, 1)
    shown = members[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    image_grid(split.images[shown], [f"#{i}" for i in shown])
    chosen = st.selectbox("Look closer at", shown, format_func=lambda i: f"#{i}  {split.source_ids[i]}")
    closer_ui(dataset, split_name, int(chosen))
    st.session_state[SELECTED_IMAGE_KEY] = (identity(dataset.spec), split_name, int(chosen))


def selected_image(dataset: Dataset) -> np.ndarray:
    """The image last looked at closely in this dataset, else the first training image."""
    remembered = st.session_state.get(SELECTED_IMAGE_KEY)
    if remembered and remembered[0] == identity(dataset.spec):
        _, split_name, index = remembered
        if index < len(dataset.splits[split_name]):
            return dataset.splits[split_name].images[index]
    return dataset.splits["train"].images[0]


def closer_ui(dataset: Dataset, split_name: str, index: int) -> None:
    split = dataset.splits[split_name]
    width, height = split.original_sizes[index]
    left, right = st.columns(2)
    left.image(enlarge(split.images[index], 320), caption="What the network sees", width="content")
    source = Path(dataset.root) / str(split.source_ids[index]) if dataset.root else None
    if source is not None and source.is_file():
        try:
            original, _ = open_image(source)
            right.image(original, caption=f"Original file, {width} x {height} px", width="content")
        except ImageDecodeError as error:
            right.warning(f"The original file cannot be shown: {as_message(error)}")
    st.markdown(
        f"**Source id** {plain(split.source_ids[index])} · "
        f"**class** {plain(dataset.class_names[split.labels[index]])} · "
        f"**split** {split_name} · **original size** {width} x {height} px"
    )


def augmentation_ui(dataset: Dataset) -> None:
    st.markdown(
        "The random transforms applied to each training batch. Galaxies have no preferred orientation, "
        "so flips and rotations keep the label. The image is the one chosen under Browse."
    )
    image = selected_image(dataset)
    defaults = AugmentOptions()
    columns = st.columns(5)
    options = AugmentOptions(
        flip=columns[0].checkbox("Flips", defaults.flip),
        rotate=columns[1].checkbox("Rotations", defaults.rotate),
        zoom=columns[2].slider("Zoom ±", 0.0, 0.5, defaults.zoom, 0.05),
        brightness=columns[3].slider("Brightness ±", 0.0, 0.5, defaults.brightness, 0.05),
    )
    seed = columns[4].number_input("Seed", 0, 10**6, 0)
    with st.spinner("Loading TensorFlow for the augmentation layers…"):
        augmented = augment_images(np.repeat(image[None], 11, axis=0), options, seed=int(seed))
    image_grid(np.concatenate([image[None], augmented]), ["original"] + [f"random {i}" for i in range(1, 12)])


def grayscale_ui(dataset: Dataset) -> None:
    st.markdown(
        "The student's open question: do the classes differ in **shape** or in **colour**? "
        "Compare the same galaxies in RGB and in grayscale, then train one network on each."
    )
    split = dataset.splits["train"]
    if dataset.preprocess.channels == 1:
        st.info("This dataset is loaded in grayscale; choose RGB above to compare.")
        return
    for class_index, name in enumerate(dataset.class_names):
        picks = np.flatnonzero(split.labels == class_index)[:6]
        if not len(picks):
            continue
        st.markdown(f"**{plain(name)}**")
        gray = np.repeat(to_grayscale(split.images[picks]), 3, axis=-1)
        image_grid(
            np.concatenate([split.images[picks], gray]),
            [f"#{i} RGB" for i in picks] + [f"#{i} gray" for i in picks],
            columns=len(picks) * 2,
        )


def statistics_ui(dataset: Dataset) -> None:
    split = dataset.splits["train"]
    st.markdown("**Mean image per class** (training split, each stretched to full brightness)")
    means = class_mean_images(split, dataset.class_names)
    image_grid(
        np.stack([mean for _, _, mean in means]),
        [f"{name} ({count:,})" for name, count, _ in means],
        columns=max(6, len(means)),
    )

    choice = st.selectbox("Pixel histogram of", ["all classes", *dataset.class_names])
    images = (
        split.images if choice == "all classes" else split.images[split.labels == dataset.class_names.index(choice)]
    )
    table = (
        pd.DataFrame(pixel_histograms(images))
        .rename_axis("pixel value")
        .reset_index()
        .melt(id_vars="pixel value", var_name="channel", value_name="pixels")
    )
    figure = px.line(
        table,
        x="pixel value",
        y="pixels",
        color="channel",
        log_y=True,
        color_discrete_map={"red": "#d62728", "green": "#2ca02c", "blue": "#1f77b4", "gray": "#555"},
        title="Per-channel pixel values (log scale: the dark sky dominates)",
    )
    st.plotly_chart(figure)


def render(viewer: Viewer) -> None:
    """Draw the Dataset page."""
    settings = get_settings()
    st.title("Dataset")
    spec = dataset_picker_ui(settings)
    try:
        dataset = load_dataset(spec, settings)
    except (DatasetError, ValueError, OSError) as error:
        st.error(f"This dataset cannot be loaded: {as_message(error)}")
        st.stop()

    # Only the open tab runs, so TensorFlow loads only when the augmentation preview is opened.
    lazy_tabs(
        "dataset_tab",
        {
            "Overview": lambda: overview_ui(dataset),
            "Browse": lambda: browse_ui(dataset),
            "Augmentation": lambda: augmentation_ui(dataset),
            "RGB vs grayscale": lambda: grayscale_ui(dataset),
            "Statistics": lambda: statistics_ui(dataset),
        },
    )


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
