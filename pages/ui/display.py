"""Drawing pieces the pages share: tabs that run only when open, image grids, the confusion matrix."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from galaxy_core.evaluation import BOOTSTRAP_RESAMPLES, LABEL_NOISE_NOTE


def label_noise_note() -> None:
    st.caption(LABEL_NOISE_NOTE)


def interval_note(interval: tuple[float, float]) -> None:
    """Under a test balanced accuracy: its 95% bootstrap interval, and what it means for comparing runs."""
    low, high = interval
    st.caption(
        f"Test balanced accuracy's 95% interval: {low:.1%} to {high:.1%}, where it falls on "
        f"{BOOTSTRAP_RESAMPLES:,} test splits drawn from this one (its galaxies resampled within each class). Two "
        "runs closer than that may not really differ: Compare's paired test tells."
    )


MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~$:")


def plain(text: str) -> str:
    """Text someone typed (a title, a name), made safe to put inside Markdown: every character Markdown or
    Streamlit would read as formatting (emphasis, links, headings, emoji and colour directives, maths) is escaped,
    so it is shown as typed."""
    return "".join(f"\\{c}" if c in MARKDOWN_SPECIALS else c for c in text)


def lazy_tabs(key: str, tabs: dict) -> None:
    """Tabs of which only the open one runs, the open one kept in the URL (`key` names it there): `tabs` maps each
    label to a function drawing its content."""
    containers = st.tabs(list(tabs), key=key, on_change="rerun", bind="query-params")
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
            textfont={"size": 18},  # large, and in a colour against each cell's shade (plotly picks it)
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
