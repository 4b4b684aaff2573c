"""Compare: two to four finished runs side by side: curves, figures, confusion matrices, and whether they differ."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from galaxy_core.answers.inference import (
    NotComparableError,
    comparison_warning,
    default_comparison,
    labels_curve,
    paired_predictions,
)
from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.data import describe_spec
from galaxy_core.evaluation import (
    BOOTSTRAP_RESAMPLES,
    balanced_accuracy,
    balanced_accuracy_interval,
    confusion_matrix,
    difference_in_words,
    mcnemar,
    per_class_share,
    shared_mistakes,
)
from galaxy_core.training.kinds import describe_run_model
from pages.ui.curves import RUN_COLOURS, SYMBOLS, runs_curves_figure
from pages.ui.display import as_message, confusion_figure, enlarge, label_noise_note, lazy_tabs, plain, plot_text
from pages.ui.identity import Viewer
from pages.ui.kinds.ensemble import make_ensemble_ui
from pages.ui.navigation import run_router
from pages.ui.runs import run_interval, run_label, run_metrics, run_model, runs_apart, runs_that
from pages.ui.state import get_settings, load_dataset

MAX_RUNS = 4
MAX_DISAGREEMENTS = 12
MAX_SHARED_MISTAKES = 24


def curves_tab(entries: list) -> None:
    by_time = st.toggle("By wall time instead of epoch", key="compare_by_time")
    figure = runs_curves_figure([(summary, run_metrics(summary.run)) for summary in entries], by_time)
    st.plotly_chart(figure, key="compare_curves")
    st.caption("Solid: training; dotted: validation. A widening gap between them is overfitting.")


def metrics_tab(entries: list) -> None:
    rows = []
    for summary in entries:
        evaluation = summary.run.evaluation() or {}
        interval = run_interval(summary.run)
        row = {  # the figures first; the run's short name first, its whole id last
            "name": summary.name,
            "test balanced accuracy": summary.test_balanced_accuracy,
            "95% interval": f"{interval[0]:.3f} to {interval[1]:.3f}" if interval else None,
            "balanced, 8 views": summary.test_balanced_accuracy_tta,
            "test accuracy": summary.test_accuracy,
            **{f"recall {name}": m["recall"] for name, m in evaluation.get("per_class", {}).items()},
            "model": describe_run_model(summary.config),
            "training images": summary.train_images,
            "dataset": describe_spec(summary.dataset),
            "parameters": summary.parameters,
            "epochs": summary.epochs_done,
            "training min": summary.training_minutes,
            "run": summary.id,
        }
        rows.append(row)
    table = pd.DataFrame(rows)
    formats = {c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if "acc" in c or "recall" in c}
    formats["balanced, 8 views"] = st.column_config.NumberColumn(format="%.3f")
    formats["training min"] = st.column_config.NumberColumn(format="%.1f")
    st.dataframe(table, hide_index=True, column_config=formats)
    st.caption(
        f"95% interval: where the balanced accuracy of {BOOTSTRAP_RESAMPLES:,} test splits drawn from this one falls "
        "(its galaxies resampled within each class): runs whose intervals overlap widely may not differ at all. "
        "The paired test tab tells two runs apart more sharply."
    )
    label_noise_note()


def matrices_tab(entries: list) -> None:
    normalised = st.toggle("Row-normalised", key="compare_normalised")
    columns = st.columns(len(entries))
    for column, summary in zip(columns, entries, strict=True):
        run = summary.run
        evaluation = run.evaluation()
        if evaluation is None:
            column.info(f"{run.id} has no test evaluation.")
            continue
        column.plotly_chart(
            confusion_figure(
                np.asarray(evaluation["confusion_matrix"]),
                evaluation["class_names"],
                normalised,
                title=f"{summary.model} · {run.id[-4:]}",
            ),
            key=f"compare_matrix_{run.id}",
        )


def two_paired_runs(entries: list, what: str):
    """Both runs' saved test predictions, or None after saying why `what` cannot be shown."""
    if len(entries) != 2:
        st.info(f"{what} compares exactly two runs: choose two.")
        return None
    try:
        return paired_predictions([summary.run for summary in entries])
    except ValueError as problem:
        st.warning(f"{what} is not possible: {as_message(problem)}.")
        return None


def significance_tab(entries: list) -> None:
    pair = two_paired_runs(entries, "McNemar's test")
    if pair is None:
        return
    first, second = pair
    predicted_first, predicted_second = first.probabilities.argmax(axis=1), second.probabilities.argmax(axis=1)
    result = mcnemar(predicted_first == first.labels, predicted_second == second.labels)
    names = [f"{summary.model} ({summary.id[-4:]})" for summary in entries]
    table = pd.DataFrame(
        result.table(),
        index=[f"{names[0]} right", f"{names[0]} wrong"],
        columns=[f"{names[1]} right", f"{names[1]} wrong"],
    )
    st.dataframe(table)
    st.metric("p-value (McNemar, exact)", f"{result.p_value:.3g}")
    st.markdown(result.in_words(names[0], names[1]))
    st.caption(
        "Only the images where exactly one model is right count. If the models were equally accurate, each of "
        "those would be a coin flip between them."
    )
    classes = first.probabilities.shape[1]
    difference = balanced_accuracy(confusion_matrix(first.labels, predicted_first, classes)) - balanced_accuracy(
        confusion_matrix(first.labels, predicted_second, classes)
    )
    st.metric(f"Balanced accuracy, {names[0]} minus {names[1]}", f"{difference:+.3f}")
    low, high = balanced_accuracy_interval(first.labels, predicted_first, predicted_second)
    st.markdown(difference_in_words(low, high, names[0], names[1]))
    st.caption(
        f"The interval comes from {BOOTSTRAP_RESAMPLES:,} test splits drawn from this one (its galaxies resampled "
        "within each class, the same draws for both models): how far luck alone moves the difference. McNemar's "
        "test above judges plain accuracy, where the commonest class weighs most; balanced accuracy weighs every "
        "class the same, so the two can read differently."
    )


def disagreements_tab(entries: list) -> None:
    from galaxy_core.answers.explain import gradcam, overlay

    pair = two_paired_runs(entries, "The disagreement gallery")
    if pair is None:
        return
    first, second = pair
    run_a, run_b = (summary.run for summary in entries)
    differ = np.flatnonzero(first.probabilities.argmax(axis=1) != second.probabilities.argmax(axis=1))
    st.markdown(f"The two runs disagree on **{len(differ)}** of {len(first.labels)} test images.")
    if not len(differ):
        return
    try:
        models = [run_model(run_a), run_model(run_b)]
    except ModelLoadError as error:
        st.error(f"A model cannot be loaded: {as_message(error)}")
        return
    datasets = [load_dataset(summary.dataset, get_settings()) for summary in entries]
    class_names = datasets[0].class_names
    for index in differ[:MAX_DISAGREEMENTS]:
        with st.container(border=True):
            columns = st.columns(3)
            image = datasets[0].splits["test"].images[index]
            columns[0].image(
                enlarge(image, 160),
                caption=plain(f"{first.source_ids[index]} · true {class_names[first.labels[index]]}"),
                width="stretch",
            )
            for column, model, dataset, saved, run in zip(
                columns[1:], models, datasets, (first, second), (run_a, run_b), strict=True
            ):
                pixels = dataset.splits["test"].images[index]  # each run's own preprocessing
                predicted = int(saved.probabilities[index].argmax())
                heatmap = gradcam(model, pixels, predicted)[0]
                column.image(
                    enlarge(overlay(pixels, heatmap), 160),
                    caption=f"{run.id[-4:]}: {plain(class_names[predicted])} "
                    f"{saved.probabilities[index, predicted]:.0%}",
                    width="stretch",
                )
    if len(differ) > MAX_DISAGREEMENTS:
        st.caption(f"The first {MAX_DISAGREEMENTS} of {len(differ)}.")


def shared_mistakes_tab(entries: list) -> None:
    try:
        saved = paired_predictions([summary.run for summary in entries])
    except ValueError as problem:
        st.warning(f"Shared mistakes cannot be shown: {as_message(problem)}.")
        return
    labels = saved[0].labels
    shared = shared_mistakes(labels, [predictions.probabilities for predictions in saved])
    class_names = list(entries[0].class_names)
    st.markdown(
        f"Every chosen run gets **{len(shared)}** of {len(labels)} test images wrong. Where the models differ in "
        "architecture or preprocessing and still agree on a wrong answer, look at the image before blaming the "
        "models: on crowd-labelled data such as Galaxy Zoo's volunteer votes, many of these are doubtful labels."
    )
    if not len(shared):
        return
    counts, supports, cost = per_class_share(labels, shared, len(class_names))
    st.dataframe(
        pd.DataFrame(
            {
                "class": class_names,
                "shared mistakes": counts,
                "test images": supports,
                "share": counts / np.maximum(supports, 1),
            }
        ).style.format({"share": "{:.1%}"}),
        hide_index=True,
    )
    st.caption(
        f"Together these cost every chosen run {cost:.1%} of balanced accuracy: no run here scores above "
        f"{1 - cost:.1%} unless it gets some of them right."
    )
    dataset = load_dataset(entries[0].dataset, get_settings())
    mean = np.mean([predictions.probabilities for predictions in saved], axis=0)
    columns = st.columns(4)
    for position, index in enumerate(shared[:MAX_SHARED_MISTAKES]):
        predicted = int(mean[index].argmax())
        columns[position % 4].image(
            enlarge(dataset.splits["test"].images[index], 160),
            caption=plain(
                f"{saved[0].source_ids[index]} · labelled {class_names[labels[index]]}, the runs say "
                f"{class_names[predicted]} ({mean[index, predicted]:.0%} on average)"
            ),
            width="stretch",
        )
    if len(shared) > MAX_SHARED_MISTAKES:
        st.caption(f"The {MAX_SHARED_MISTAKES} most confident of {len(shared)}.")


def labels_tab(runs: list, entries: list) -> None:
    """Test balanced accuracy against the number of training images, a line per way of starting (from scratch, from
    a run), over every run on the first chosen run's images: what pretraining buys when labels are few."""
    points = labels_curve(runs, entries[0])
    starts = list(dict.fromkeys(point["start"] for point in points))
    if len({point["training_images"] for point in points}) < 2:
        st.info(
            "This view needs runs on the same images trained on different numbers of labels: on the Train page, "
            "choose a share or a number of each class's training images, from scratch and from a run."
        )
        return
    figure = go.Figure()
    for number, start in enumerate(starts):
        mine = [point for point in points if point["start"] == start]
        intervals = [run_interval(point["run"].run) or (point["test"], point["test"]) for point in mine]
        figure.add_scatter(
            x=[point["training_images"] for point in mine],
            y=[point["test"] for point in mine],
            error_y={
                "type": "data",
                "array": [high - point["test"] for point, (_, high) in zip(mine, intervals, strict=True)],
                "arrayminus": [point["test"] - low for point, (low, _) in zip(mine, intervals, strict=True)],
            },
            name=plot_text(start),
            mode="lines+markers",
            marker={
                "symbol": SYMBOLS[number % len(SYMBOLS)],
                "size": 10,
                "color": RUN_COLOURS[number % len(RUN_COLOURS)],
            },
            text=[plot_text(point["run"].name) for point in mine],
            hovertemplate="%{text}: %{y:.3f} with %{x} training images<extra></extra>",
        )
    figure.update_xaxes(title_text="training images (log scale)", type="log")
    figure.update_yaxes(title_text="test balanced accuracy")
    figure.update_layout(height=420, margin={"t": 20}, legend={"orientation": "h", "y": -0.25})
    st.plotly_chart(figure, key="compare_labels_curve")
    st.caption(
        f"Every run on these images with test results ({len(points)}), not only the chosen ones; bars: 95% bootstrap "
        "intervals. A run started from another run reuses what that run learned: where labels are few, that is "
        "where it should help most."
    )
    label_noise_note()


def render(viewer: Viewer) -> None:
    """Draw the Compare page."""
    st.title("Compare")
    runs, others = runs_that(viewer, lambda summary: summary.has_test_results)
    if len(runs) < 2:
        classmates = ", or choose *The class's runs* in the sidebar to compare with your classmates'"
        st.info(
            "Comparing needs at least two runs with test results: train another on the Train page"
            + (classmates if viewer.only_mine else "")
            + "."
        )
        runs_apart(others, "be compared (no test results)")
        st.stop()
    by_id = {summary.id: summary for summary in runs}
    if "compare_runs" not in st.session_state:  # a new session: the runs in its URL, else the default pair
        linked = [run_id for run_id in st.query_params.get_all("compare_runs") if run_id in by_id]
        default = [summary.id for summary in default_comparison(runs)]
        st.session_state["compare_runs"] = linked[:MAX_RUNS] if len(linked) >= 2 else default
    chosen = st.multiselect(
        f"Runs (2 to {MAX_RUNS})",
        list(by_id),
        max_selections=MAX_RUNS,
        format_func=lambda run_id: run_label(by_id[run_id], viewer),
        key="compare_runs",
    )
    st.query_params["compare_runs"] = chosen
    runs_apart(others, "be compared (no test results)")
    if len(chosen) < 2:
        st.info("Choose at least two runs.")
        st.stop()
    entries = [by_id[run_id] for run_id in chosen]
    try:
        warning = comparison_warning(entries)
    except NotComparableError as error:
        st.error(f"These runs cannot be compared: {as_message(error)}. Choose runs trained on the same classes.")
        st.stop()
    make_ensemble_ui(entries, viewer.user, key="compare_make_ensemble")
    if warning:
        datasets = sorted({describe_spec(summary.dataset) for summary in entries})
        st.warning(f"Compare with care: {as_message(warning)}. Datasets: {plain('; '.join(datasets))}.")
    lazy_tabs(
        "compare_tabs",
        {
            "Figures": lambda: metrics_tab(entries),  # first: what was asked (and no chart library to load)
            "Curves": lambda: curves_tab(entries),
            "Confusion matrices": lambda: matrices_tab(entries),
            "Significance": lambda: significance_tab(entries),
            "Disagreements": lambda: disagreements_tab(entries),
            "Shared mistakes": lambda: shared_mistakes_tab(entries),
            "Labels": lambda: labels_tab(runs, entries),
        },
    )


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
