"""Loss and accuracy curves, side by side, built one way: one run's on the Train page (train against validation, by
epoch or by batch), several runs' on Compare (a colour and a symbol per run)."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from galaxy_core.training.records import epoch_records, next_network_epochs
from pages.ui.display import plot_text

LOSS, ACCURACY = 1, 2  # the figure's two columns
# One colour per series of a run, the legend's too: train loss, val loss, train accuracy, val accuracy, val balanced.
SERIES_COLOURS = {
    "loss": "#1f77b4",
    "val_loss": "#ff7f0e",
    "accuracy": "#2ca02c",
    "val_accuracy": "#d62728",
    "val_balanced_accuracy": "#9467bd",
}
RUN_COLOURS = qualitative.Plotly
SYMBOLS = ("circle", "diamond", "square", "triangle-up")  # a run of one epoch is a point: symbols keep it in sight


@dataclass(frozen=True)
class Curve:
    x: list
    y: list
    name: str  # in the legend (shown as text)
    column: int  # LOSS or ACCURACY
    colour: str
    dash: str = "solid"
    mode: str = "lines+markers"
    group: str | None = None  # curves of one group share a legend entry
    symbol: str | None = None
    size: int | None = None


def curves_figure(curves: list[Curve], x_title: str, networks_start: list[float] = ()) -> go.Figure:
    """Loss on the left, accuracy (0 to 1) on the right; a dotted line at each epoch where a seed ensemble's next
    network starts."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for curve in curves:
        figure.add_scatter(
            x=curve.x,
            y=curve.y,
            name=plot_text(curve.name),
            legendgroup=curve.group,
            showlegend=curve.group is None or curve.column == LOSS,
            mode=curve.mode,
            line={"color": curve.colour, "dash": curve.dash},
            marker={"symbol": curve.symbol, "size": curve.size} if curve.symbol else None,
            row=1,
            col=curve.column,
        )
    for number, epoch in enumerate(networks_start, start=2):
        figure.add_vline(
            x=epoch, line={"dash": "dot", "color": "grey"}, annotation_text=f"network {number}", row=1, col="all"
        )
    figure.update_xaxes(title_text=x_title)
    figure.update_yaxes(range=[0, 1.02], row=1, col=ACCURACY)
    figure.update_layout(height=400, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.28})
    return figure


def run_curves_figure(metrics: list[dict], by_batch: bool) -> go.Figure:
    """One run's curves, train against validation; the training side by batch (one continuous line from the first
    batch on), or by epoch."""
    epochs = epoch_records(metrics)
    if by_batch:
        train = [m for m in metrics if m.get("kind") == "batch" and m.get("steps_per_epoch")]
        train_x = [b["step"] / b["steps_per_epoch"] for b in train]
        mode, suffix = "lines", " (batches)"
    else:
        train, mode, suffix = epochs, "lines+markers", ""
        train_x = [e["epoch"] for e in epochs]
    epoch_x = [e["epoch"] for e in epochs]

    def curve(x, records, key, name, column, line_mode="lines+markers", dash="solid") -> Curve:
        return Curve(x, [r.get(key) for r in records], name, column, SERIES_COLOURS[key], dash, line_mode)

    curves = [
        curve(train_x, train, "loss", f"train loss{suffix}", LOSS, mode),
        curve(train_x, train, "accuracy", f"train accuracy{suffix}", ACCURACY, mode),
        curve(epoch_x, epochs, "val_loss", "val loss", LOSS),
        curve(epoch_x, epochs, "val_accuracy", "val accuracy", ACCURACY),
        curve(epoch_x, epochs, "val_balanced_accuracy", "val balanced accuracy", ACCURACY, dash="dot"),
    ]
    return curves_figure(curves, "epoch", next_network_epochs(metrics))


def runs_curves_figure(runs: list, by_time: bool) -> go.Figure:
    """Several runs' curves, (summary, metrics) each: a colour and a symbol per run, solid training, dotted
    validation; by epoch or by minutes since each run started."""
    curves = []
    for number, (summary, metrics) in enumerate(runs):
        epochs = epoch_records(metrics)
        start = summary.started or (epochs[0]["time"] if epochs else 0)
        x = [(e["time"] - start) / 60 for e in epochs] if by_time else [e["epoch"] for e in epochs]
        colour, symbol = RUN_COLOURS[number % len(RUN_COLOURS)], SYMBOLS[number % len(SYMBOLS)]
        for column, key in ((LOSS, "loss"), (ACCURACY, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                name = f"{summary.name} {'val' if prefix else 'train'}"
                y = [e.get(prefix + key) for e in epochs]
                curves.append(
                    Curve(x, y, name, column, colour, dash, group=summary.id, symbol=symbol, size=11 - 2 * number)
                )
    return curves_figure(curves, "minutes since the start" if by_time else "epoch")
