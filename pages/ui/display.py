"""Drawing pieces the pages share: tabs that run only when open, image grids, the confusion matrix."""

from __future__ import annotations

import html
import re

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
# An absolute path in a message: the folders before its last part are the server's business, not a student's.
SERVER_FOLDERS = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"]+/)+")


def plain(text: object) -> str:
    """Text someone brought (a title, a name, a file's or a class folder's name), made safe to put inside Markdown
    (st.markdown, captions, alerts, labels, image captions, radio options): every character Markdown or Streamlit
    would read as formatting (emphasis, links, headings, emoji and colour directives, maths) is escaped, so it is
    shown as typed."""
    return "".join(f"\\{c}" if c in MARKDOWN_SPECIALS else c for c in str(text))


def plot_text(text: object) -> str:
    """Text someone brought, made safe for a Plotly figure (tick labels, names, hover text), which reads a few HTML
    tags (<b>, <a href>, <br>): shown as typed."""
    return html.escape(str(text), quote=False)


def as_message(error: object) -> str:
    """A message of the library's (an error, a warning, a description) as a page shows it: as text inside Markdown,
    and without the server's folders (a path keeps its last part: "gz1-3class", not where it lies)."""
    return plain(SERVER_FOLDERS.sub("", str(error)))


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
    """Images in rows of `columns`, each with its caption shown as text (a class or file name may be anything)."""
    for start in range(0, len(images), columns):
        for column, index in zip(st.columns(columns), range(start, min(start + columns, len(images))), strict=False):
            column.image(enlarge(images[index], size), caption=plain(captions[index]), width="stretch")


def confusion_figure(matrix: np.ndarray, class_names: list, normalised: bool, title: str | None = None) -> go.Figure:
    """The confusion matrix as a heatmap, with one clickable square marker per cell (Streamlit selects points,
    not heatmap cells); a clicked point's customdata is (true class index, predicted class index)."""
    rows = matrix.sum(axis=1, keepdims=True)
    values = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0) if normalised else matrix
    text = [[f"{v:.0%}" if normalised else str(int(v)) for v in row] for row in values]
    names = [plot_text(name) for name in class_names]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 18},  # large, and in a colour against each cell's shade (plotly picks it)
            colorscale="Blues",
            hoverinfo="skip",
        )
    )
    cells = [(true, predicted) for true in range(len(names)) for predicted in range(len(names))]
    figure.add_scatter(
        x=[names[predicted] for _, predicted in cells],
        y=[names[true] for true, _ in cells],
        customdata=cells,
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
        title=plot_text(title) if title else None,
        clickmode="event+select",
    )
    return figure
