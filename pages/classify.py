"""Classify: drop galaxy pictures (or a zip of them), or pick some from the dataset, and see what a model says."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from galaxy_core.answers.export import EXPORT_FORMATS, SUFFIXES, export_run
from galaxy_core.answers.inference import run_class_names
from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.answers.uploads import (
    ImageInput,
    UploadLimits,
    predict_images,
    prediction_rows,
    read_uploads,
    without_repeats,
)
from galaxy_core.data import DatasetError, PreprocessOptions
from galaxy_core.data.images import SUPPORTED_EXTENSIONS
from galaxy_core.training import Run
from pages.ui.display import as_message, enlarge, label_noise_note, plain, plot_text
from pages.ui.identity import Viewer
from pages.ui.navigation import run_router
from pages.ui.runs import choose_run, model_key, run_model, runs_apart, runs_that
from pages.ui.state import get_settings, load_dataset, note_run_dataset

DETAILED = 12  # images shown with their input, probabilities and Grad-CAM; all of them go in the table
SAMPLE_SIZES = (1, 4, 8, 16)
UPLOAD_TYPES = [ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS] + ["zip"]
UPLOADER_GENERATION_KEY = "classify_uploader_generation"  # a new key empties the uploader


def probability_chart(class_names: list, probabilities: np.ndarray, spread: np.ndarray | None) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=probabilities,
            y=[plot_text(name) for name in class_names],
            orientation="h",
            error_x=None if spread is None else {"type": "data", "array": spread},
            text=[f"{p:.0%}" for p in probabilities],
            textposition="auto",
        )
    )
    figure.update_layout(
        height=60 + 36 * len(class_names), margin={"t": 10, "b": 10, "l": 10, "r": 10}, xaxis_range=[0, 1]
    )
    return figure


def uploaded_images(options: PreprocessOptions, settings) -> list[ImageInput]:
    generation = st.session_state.get(UPLOADER_GENERATION_KEY, 0)
    files = st.file_uploader(
        "Drop galaxy images here (jpg, png, tif, bmp, gif, webp, or a zip of them)",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"classify_uploads_{generation}",
        max_upload_size=settings.upload_limit_mb,
        help=f"Each file up to {settings.upload_limit_mb} MB. Files are read in memory and never stored.",
    )
    if not files:
        return []
    if st.button("Clear the dropped files", icon=":material/delete_sweep:"):
        st.session_state[UPLOADER_GENERATION_KEY] = generation + 1  # a new, empty uploader
        st.rerun()
    distinct, repeats = without_repeats((f.name, f.getvalue()) for f in files)
    if repeats:
        st.caption(f"{repeats} file(s) dropped again are shown once.")
    uploads = read_uploads(distinct, options, UploadLimits.from_settings(settings))
    for upload in uploads:
        if not isinstance(upload, ImageInput):
            st.warning(f"**{plain(upload.name)}** was not classified: {as_message(upload.reason)}.")
    return [upload for upload in uploads if isinstance(upload, ImageInput)]


def dataset_images(spec) -> list[ImageInput]:
    """A random handful of the run's own test images (or any split's, if it has no test split)."""
    dataset = load_dataset(spec, get_settings())
    split = dataset.splits["test"] if len(dataset.splits["test"]) else dataset.splits["train"]
    left, right = st.columns(2)
    count = left.select_slider("How many", SAMPLE_SIZES, 4, key="classify_sample_size")
    if right.button("Pick others", icon=":material/shuffle:"):
        st.session_state["classify_sample_seed"] = st.session_state.get("classify_sample_seed", 0) + 1
    rng = np.random.default_rng(st.session_state.get("classify_sample_seed", 0))
    chosen = rng.choice(len(split), size=min(count, len(split)), replace=False)
    return [
        ImageInput(
            f"{split.source_ids[i]} (true: {dataset.class_names[split.labels[i]]})",
            split.images[i],
            tuple(split.original_sizes[i]),
        )
        for i in chosen
    ]


def result_card(model, image: ImageInput, prediction, class_names: list, number: int) -> None:
    from galaxy_core.answers.explain import gradcam, overlay

    label = class_names[prediction.label_index]
    chance = prediction.probabilities[prediction.label_index]
    st.markdown(f"**{plain(image.name)}** → **{plain(label)}** ({chance:.0%})")
    for warning in image.warnings:
        st.caption(f"Note: {plain(warning)}")
    columns = st.columns([1, 1, 2])
    width, height = image.original_size
    columns[0].image(
        enlarge(image.pixels, 160), caption=f"what the model sees (from {width}x{height} px)", width="stretch"
    )
    heatmap = gradcam(model, image.pixels, prediction.label_index)[0]
    gradcam_picture = enlarge(overlay(image.pixels, heatmap), 160)
    columns[1].image(gradcam_picture, caption=f"Grad-CAM for {plain(label)}", width="stretch")
    columns[2].plotly_chart(
        probability_chart(class_names, prediction.probabilities, prediction.spread),
        key=f"classify_chart_{number}",
    )


def results_table(images: list[ImageInput], predictions: list, class_names: list) -> pd.DataFrame:
    """The rows `galaxy-lab predict --json` prints, flattened: p(class), spread(class), notes."""
    rows = []
    for row in prediction_rows(images, predictions, class_names):
        flat = {"file": row["file"], "prediction": row["label"]}
        flat.update({f"p({name})": p for name, p in row["probabilities"].items()})
        flat.update({f"spread({name})": s for name, s in row.get("spread", {}).items()})
        flat["notes"] = "; ".join(row.get("warnings", []))
        rows.append(flat)
    return pd.DataFrame(rows)


@st.cache_data(max_entries=8, show_spinner="Exporting…")
def _export_bytes(run_path: str, model_key: tuple, export_format: str) -> bytes:
    """The exported file's bytes; `model_key` (model file and time) makes a new checkpoint export afresh."""
    with tempfile.TemporaryDirectory() as folder:
        return export_run(Run(Path(run_path)), export_format, Path(folder)).read_bytes()


def export_ui(run) -> None:
    st.caption(
        "Every format takes raw 0-255 pixels of the run's input size; the JSON model card says how to crop and "
        "resize an image first and which output is which class."
    )
    labels = {
        "keras": "Keras (.keras)",
        "savedmodel": "TensorFlow SavedModel (.zip)",
        "tflite": "TFLite",
        "json": "Model card (JSON)",
    }
    export_format = st.radio("Format", EXPORT_FORMATS, format_func=labels.get, horizontal=True, key="classify_export")
    wanted = (run.id, export_format)
    if st.button("Prepare the file", key="classify_prepare"):
        st.session_state["classify_prepared"] = wanted
    if st.session_state.get("classify_prepared") == wanted:
        data = _export_bytes(str(run.path), model_key(run), export_format)
        st.download_button(
            f"Download {labels[export_format]}",
            data,
            file_name=f"{run.id}{SUFFIXES[export_format]}",
            on_click="ignore",
            icon=":material/download:",
        )


def answers_ui(run, images: list[ImageInput], class_names: tuple[str, ...], tta: bool) -> None:
    """The model's answer for each image (a card for the first few), a table of them all and its CSV."""
    try:
        model = run_model(run)  # loaded once there is something to classify: the page opens without it
    except ModelLoadError as error:
        st.error(f"This run's model cannot be used: {as_message(error)}. Your images are kept: choose another model.")
        st.stop()
    predictions = predict_images(model, images, tta=tta)
    for number, (image, prediction) in enumerate(zip(images[:DETAILED], predictions, strict=False)):
        with st.container(border=True):
            result_card(model, image, prediction, class_names, number)
    table = results_table(images, predictions, class_names)
    if len(images) > DETAILED:
        st.markdown(f"The first {DETAILED} of {len(images)} images are shown above; all are in the table.")
    st.dataframe(table, hide_index=True)
    st.download_button(
        "Download the results (CSV)",
        table.to_csv(index=False),
        file_name=f"classified-{run.id}.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
    )


def render(viewer: Viewer) -> None:
    """Draw the Classify page."""
    settings = get_settings()
    st.title("Classify")
    runs, others = runs_that(viewer, lambda summary: summary.has_model)
    if not runs:
        st.info("No trained model yet: train one on the Train page, then come back to classify your own images.")
        runs_apart(others, "classify")
        st.stop()
    runs.sort(key=lambda summary: summary.test_balanced_accuracy or -1.0, reverse=True)
    summary = choose_run(runs, viewer, key="classify_run", label="Model (the best by test balanced accuracy first)")
    label_noise_note()
    runs_apart(others, "classify")
    note_run_dataset(summary)
    run = summary.run
    try:
        class_names = run_class_names(run)
    except ValueError as error:
        st.error(f"This run's model cannot be used: {as_message(error)}")
        st.stop()
    options = summary.dataset.preprocess
    crop = (
        "the largest centred square"
        if options.crop_fraction >= 1
        else f"a centred square {options.crop_fraction:.0%} of the shorter side"
    )
    st.caption(
        f"Images are prepared as for this model: {crop}, resized to {options.image_size} px, "
        f"{'grayscale' if options.channels == 1 else 'RGB'}. "
        f"Classes: {plain(', '.join(class_names))}."
    )
    source = st.segmented_control(
        "Images", ["Upload", "From the dataset"], default="Upload", key="classify_source", required=True
    )
    try:
        images = uploaded_images(options, settings) if source == "Upload" else dataset_images(summary.dataset)
    except DatasetError as error:
        st.error(f"The run's dataset cannot be read: {as_message(error)}")
        images = []
    tta = st.toggle(
        "Also average over the 8 flips and rotations",
        key="classify_tta",
        help="Galaxies have no preferred orientation; the bars then show the mean and the spread over the 8 views.",
    )
    if images:
        answers_ui(run, images, class_names, tta)
    with st.expander("Download this model"):
        export_ui(run)


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
