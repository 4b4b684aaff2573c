"""The Architecture page's Symmetry tab: a galaxy turned through 360 degrees, and what a plain network and a p4m
network (galaxy_core.models.p4m) answer at each angle; one p4m filter in its 8 orientations, and its feature maps
turning with the galaxy."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from galaxy_core.answers.symmetry import answers_by_angle, filter_orientations, fit_to_input, orientation_maps
from galaxy_core.models import create_model
from pages.ui.display import enlarge, image_grid, plot_text
from pages.ui.identity import Viewer
from pages.ui.runs import choose_run, run_model, runs_that
from pages.ui.state import active_dataset_spec, get_settings, load_dataset

P4M_MODEL = "p4m_cnn"
ANGLES = np.arange(0, 361, 10)
ORIENTATION_NAMES = [f"{90 * (g % 4)}°" + (" + flip" if g >= 4 else "") for g in range(8)]
INTRO = (
    "A galaxy has no up: turned or mirrored, it is the same galaxy. Augmentation teaches a network that by showing it "
    "turned copies while it trains; a **p4m** network (Cohen & Welling 2016) has it built in: every filter is used "
    "in all 8 orientations of a square, so a galaxy turned by a quarter gives turned feature maps and the same "
    "answer. Below, one galaxy turned through 360 degrees: at multiples of 90 degrees the p4m network's lines are "
    "flat; between them the turned image is resampled and its corners filled with black, and the lines show how "
    "much that moves each answer."
)


@st.cache_resource(max_entries=2, show_spinner="Building an untrained network…")
def _untrained(name: str, shape: tuple, classes: int):
    return create_model(name, shape, classes)


def _network(viewer: Viewer, p4m: bool, shape: tuple, classes: int, key: str):
    """(model, what it is) of a finished run of the kind asked for, else an untrained network saying so."""
    runs, _ = runs_that(
        viewer, lambda s: s.has_model and not s.is_ensemble and not s.is_label_review and (s.model == P4M_MODEL) == p4m
    )
    if runs:
        summary = choose_run(runs, viewer, key, "p4m run" if p4m else "Plain run")
        return run_model(summary.run), f"run {summary.name} ({summary.model})"
    name = P4M_MODEL if p4m else "custom_cnn"
    st.caption(
        f"No finished {'p4m_cnn' if p4m else 'plain'} run in your menus: an untrained {name} is shown "
        "(train one on the Train page, your own settings, to see what training adds)."
    )
    return _untrained(name, shape, classes), f"untrained {name}"


def _angle_figure(answers: np.ndarray, class_names: list[str], title: str) -> go.Figure:
    figure = go.Figure()
    for index, name in enumerate(class_names):
        figure.add_trace(
            go.Scatter(x=ANGLES.tolist(), y=answers[:, index].tolist(), mode="lines+markers", name=plot_text(name))
        )
    for angle in (90, 180, 270):
        figure.add_vline(x=angle, line_dash="dot", line_color="#999")
    figure.update_layout(
        title=plot_text(title),
        xaxis_title="turned by (degrees)",
        yaxis_title="probability",
        yaxis_range=[0, 1],
        height=340,
        margin={"t": 40, "b": 40},
    )
    return figure


def _quarter_spread(answers: np.ndarray) -> float:
    """The largest difference between the answers at 0, 90, 180 and 270 degrees, over the classes."""
    quarters = answers[np.isin(ANGLES, (0, 90, 180, 270))]
    return float((quarters.max(axis=0) - quarters.min(axis=0)).max())


def symmetry_ui(viewer: Viewer) -> None:
    st.markdown(INTRO)
    dataset = load_dataset(active_dataset_spec(), get_settings())
    split = dataset.splits["test"] if len(dataset.splits["test"]) else dataset.splits["train"]
    index = st.number_input("Galaxy (test image)", 0, len(split) - 1, 0, key="symmetry_galaxy")
    galaxy, classes = split.images[int(index)], list(dataset.class_names)
    columns = st.columns(2)
    models = {}
    for column, p4m in zip(columns, (False, True), strict=True):
        with column:
            model, what = _network(viewer, p4m, galaxy.shape, len(classes), f"symmetry_{'p4m' if p4m else 'plain'}")
            if model.output.shape[-1] != len(classes):
                st.warning(f"{what} answers {model.output.shape[-1]} classes, not this dataset's {len(classes)}.")
                continue
            answers = answers_by_angle(model, fit_to_input(galaxy, model), ANGLES)
            st.plotly_chart(_angle_figure(answers, classes, what), key=f"symmetry_chart_{p4m}")
            st.caption(f"Largest change of an answer over the four quarter turns: {_quarter_spread(answers):.4f}.")
            models[p4m] = model
    if True in models:
        _p4m_insides(models[True], fit_to_input(galaxy, models[True]))


def _p4m_insides(model, galaxy: np.ndarray) -> None:
    """One filter of the lifting convolution in its 8 orientations, and its 8 feature maps for the galaxy and for
    the galaxy turned by a quarter."""
    st.subheader("Inside the p4m network")
    st.markdown("One filter of its first layer, in the 8 orientations it is used in (shared weights):")
    kernels = filter_orientations(model)
    image_grid(np.rint(kernels[..., None] * 255).astype(np.uint8), ORIENTATION_NAMES, columns=8, size=64)
    st.markdown(
        "Its 8 feature maps for the galaxy (top) and for the galaxy turned by 90 degrees (bottom): each map turns "
        "with the galaxy, and they change places, so the strongest response moves to another orientation but "
        "stays as strong."
    )
    turned = np.rot90(galaxy, 1, axes=(0, 1))
    for image in (galaxy, turned):
        maps = orientation_maps(model, image)
        st.image([enlarge(np.rint(m[..., None] * 255).astype(np.uint8), 96) for m in maps], caption=ORIENTATION_NAMES)
