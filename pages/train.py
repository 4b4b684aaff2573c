"""Train: queue a run on the active dataset, and watch the runs learn (they train in background processes)."""

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from galaxy_core.classroom.access import Action, may
from galaxy_core.classroom.people import User
from galaxy_core.data import DatasetSpec, describe_spec
from galaxy_core.data.augment import AugmentOptions
from galaxy_core.errors import GalaxyLabError
from galaxy_core.models import list_models, model_info
from galaxy_core.review import ACTIONS, CLASS_MAJORITY, class_decisions, has_review, load_review, review_decisions
from galaxy_core.training import Run, RunState, RunSummary, TrainConfig, estimate
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.config import (
    DEFAULT_MODEL,
    DEFAULT_PRESET,
    MONITORS,
    OPTIMIZERS,
    PRESETS,
    REVIEW_PRESET,
    SCHEDULES,
    VALIDATION_SOURCES,
    label_review_config,
    preset_config,
    recommended_config,
)
from galaxy_core.training.fair_share import queue_positions
from galaxy_core.training.kinds import describe_run_model, run_kind
from galaxy_core.training.kinds.label_review import MAX_FOLDS, MIN_FOLDS, check_folds
from galaxy_core.training.kinds.seed_ensemble import MAX_NETWORKS
from galaxy_core.training.records import epoch_records, next_network_epochs
from galaxy_core.training.store import MAX_TITLE
from pages.ui.display import as_message, interval_note, label_noise_note, plain
from pages.ui.identity import Viewer
from pages.ui.navigation import LAB_PAGES, run_router
from pages.ui.runs import (
    VIEWED_RUN_KEY,
    model_label,
    ordinal,
    queue_once,
    run_interval,
    run_metrics,
    run_row,
    runs_that,
)
from pages.ui.start_from_run import base_run_note, few_labels_ui, transfer_ui
from pages.ui.state import active_dataset_spec, get_settings, load_dataset

REVIEW_PAGE = next(page for page in LAB_PAGES if page.url_path == "review")
SELECTED_RUN_KEY = "train_selected_run"
NEW_RUN_KEY = "train_new_run"
REFRESH_SECONDS = 2
OWN_RECIPE = "own"
REVIEW_RECIPE = "review"
TRANSFER_RECIPE = "from_run"
AS_GIVEN = "as given"


def recipe_label(name: str) -> str:
    if name == OWN_RECIPE:
        return "Your own: choose the model and settings"
    if name == REVIEW_RECIPE:
        return "Review the labels: find the training images whose label the data doubts"
    if name == TRANSFER_RECIPE:
        return "Start from a run: a new head on a trained network, in seconds"
    preset = PRESETS[name]
    return (
        f"{preset.title}: {model_info(preset.model).title}, {preset.image_size} px, {preset.settings['epochs']} epochs"
    )


def expected_duration_ui(config: TrainConfig, *, per_epoch: bool = False) -> None:
    """How long the run will take on this machine, from its recipe's pace: the newest run's of the same step cost
    (the whole pipeline, measured), else a probe's (started in the background the first time, never while a run
    is queued or trains; the caption counts its seconds and the page redraws when it is in)."""
    settings = get_settings()
    try:
        sizes = {name: len(split) for name, split in load_dataset(active_dataset_spec(), settings).splits.items()}
    except (GalaxyLabError, ValueError):
        return  # the Dataset page and the run itself say what is wrong with the dataset
    summaries = ServiceClient.from_settings(settings).store.runs()
    throughput = estimate.pace_of_runs(config, summaries) or estimate.cached_throughput(config, settings.cache_dir)
    if throughput is None:
        measuring = estimate.measure(config, settings.cache_dir, settings.runs_dir)
        if measuring is not None and measuring.held:
            st.caption(
                "How long this recipe takes here is measured once no run is queued or training: measuring now "
                "would slow the runs down and time a busy machine."
            )
        elif measuring is not None:
            st.fragment(run_every=REFRESH_SECONDS)(_measuring_ui)(config, settings)
        return
    pace = f"{throughput.train_images_per_second:.0f} training images/s" + (
        f", as run {throughput.run_id} trained" if throughput.run_id else ""
    )
    if per_epoch:
        epoch = estimate.epoch_seconds(config, throughput, sizes)
        st.caption(
            f"On this machine: about **{epoch:.0f} s an epoch** at batch {config.batch_size} and "
            f"{config.input_shape[0]} px ({pace})."
        )
        return
    seconds = estimate.expected_seconds(config, throughput, sizes)
    planned = run_kind(config.kind).planned_epochs(config)
    st.caption(
        f"Expected duration on this machine: about **{_duration(seconds)}** for {planned} epochs ({pace}; early "
        "stopping can end it sooner, other runs training at the same time make it longer)."
    )


def _measuring_ui(config: TrainConfig, settings) -> None:
    measuring = estimate.measure(config, settings.cache_dir, settings.runs_dir)
    if measuring is None or measuring.held:  # measured, failed (the page says nothing) or a run was queued
        st.rerun(scope="app")
    elif measuring.waiting:
        st.caption("Measuring how fast this machine trains this recipe once another recipe's measurement ends…")
    else:
        st.caption(
            f"Measuring how fast this machine trains this recipe: {measuring.seconds_so_far:.0f} s so far, about "
            f"{measuring.expected_seconds:.0f} s in all…"
        )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def preset_ui(dataset: DatasetSpec, preset: str, max_epochs: int, overrides: dict) -> TrainConfig | None:
    """A preset's summary, its expected duration (with `overrides`: few labels, several networks) and a Train
    button; returns its config when pressed."""
    chosen = PRESETS[preset]
    config = preset_config(dataset, preset, **overrides)
    if config.epochs > max_epochs:
        config = replace(config, epochs=max_epochs)
    st.markdown(chosen.description)
    size = dataset.preprocess.image_size
    if size != chosen.image_size:
        st.caption(
            f"Presets train at their own input size ({chosen.image_size} px); the Dataset page's {size} px applies "
            "to your own settings."
        )
    expected_duration_ui(config)
    return config if st.button("Train", type="primary", key=f"train_{preset}") else None


def new_run_ui(dataset: DatasetSpec, max_epochs: int, viewer: Viewer) -> TrainConfig | None:
    """The recipe choice, then a preset's button or the training form; returns a config when Train is pressed."""
    recipe = st.radio(
        "Recipe",
        [*PRESETS, OWN_RECIPE, TRANSFER_RECIPE, REVIEW_RECIPE],
        index=list(PRESETS).index(DEFAULT_PRESET),
        format_func=recipe_label,
        key="train_recipe",
        bind="query-params",
    )
    if recipe == REVIEW_RECIPE:
        return label_review_ui(dataset)
    labels = training_labels_ui(dataset, viewer)
    if recipe == TRANSFER_RECIPE:
        config = transfer_ui(dataset, max_epochs, viewer)
    else:
        labels.update(few_labels_ui(recipe))
        labels.update(networks_ui(recipe))
        config = (
            preset_ui(dataset, recipe, max_epochs, labels)
            if recipe != OWN_RECIPE
            else own_settings_ui(dataset, max_epochs)
        )
    return replace(config, **labels) if config is not None and labels else config


def networks_ui(key: str) -> dict:
    """How many networks the run trains: one, or several of other seeds answering as one; returns the config
    fields that say so."""
    count = st.number_input(
        "Networks",
        1,
        MAX_NETWORKS,
        1,
        key=f"{key}_networks",
        help="More than one: one run trains that many networks of this recipe one after another, each from its own "
        "seed (initial weights, batch order, augmentation), and its model averages their answers: an ensemble, "
        "with the Members tab on the Evaluate page. Each network takes a run's time.",
    )
    return {"kind": "seed_ensemble", "ensemble_size": int(count)} if count > 1 else {}


def label_review_ui(dataset: DatasetSpec) -> TrainConfig | None:
    """A label review run's settings (its number of folds), its expected duration and its button."""
    st.markdown(
        f"Trains k models of the {PRESETS[REVIEW_PRESET].title.lower()} recipe, each on all but one k-th of the "
        "training split, and lets each predict the galaxies it did not see; confident learning (cleanlab) then "
        "ranks the labels those predictions doubt. Review them on the Label review page."
    )
    folds = st.number_input(
        "Folds (k)",
        MIN_FOLDS,
        MAX_FOLDS,
        5,
        key="train_review_folds",
        help="More folds: each model trains on more images, and the review takes longer.",
    )
    config = label_review_config(dataset, int(folds))
    try:
        check_folds(load_dataset(dataset, get_settings()), config.folds)
    except (GalaxyLabError, ValueError) as error:
        st.warning(f"This dataset cannot be reviewed in {config.folds} folds: {as_message(error)}.")
        return None
    expected_duration_ui(config)
    return config if st.button("Review the labels", type="primary", key="train_review") else None


def decision_sets(summary: RunSummary, user: User) -> dict[str, str]:
    """{decision set: its name} of a review that `user` may train on: their own decisions; a teacher's also the
    class's majority and each reviewer's. Only sets that accept a suggestion (the others change nothing)."""
    sets = {user.id: "your decisions"}
    if may(user, Action.SEE_REVIEWERS):
        sets[CLASS_MAJORITY] = "the class's majority"
        people = class_decisions(summary.run, user).items()
        sets.update({person: f"{entry['name']}'s decisions" for person, entry in people if person != user.id})
    sets = {key: name for key, name in sets.items() if key == user.id or may(user, Action.TRAIN_ON_DECISIONS, key)}
    return {key: name for key, name in sets.items() if "accepted" in review_decisions(summary.run, user, key).values()}


def training_labels_ui(dataset: DatasetSpec, viewer: Viewer) -> dict:
    """The training labels to train on: as given, or changed by a finished label review of the same images (the
    suggestions a decision set accepts, relabelled or left out); returns the config fields that say so."""
    user = viewer.user
    reviews, _ = runs_that(viewer, lambda summary: has_review(summary) and summary.dataset.same_images(dataset))
    choices = {
        (summary.id, key): f"reviewed by {summary.id}: {name}"
        for summary in reviews
        for key, name in decision_sets(summary, user).items()
    }
    if not choices:
        return {}
    left, right = st.columns([2, 1])
    chosen = left.selectbox(
        "Training labels",
        [AS_GIVEN, *choices],
        format_func=lambda value: value if value == AS_GIVEN else choices[value],
        key="train_labels",
        help="Only the training split changes: validation and test images keep their labels.",
    )
    if chosen == AS_GIVEN:
        return {}
    action = right.radio("Accepted suggestions", list(ACTIONS), format_func=ACTIONS.get, key="train_labels_action")
    review_id, decision_set = chosen
    summary = next(summary for summary in reviews if summary.id == review_id)
    changes = load_review(summary, user, decision_set).label_changes(action)
    st.caption(f"{len(changes)} training images {ACTIONS[action]}.")
    origin = f"{choices[chosen]}, accepted suggestions {ACTIONS[action]}"
    return {"label_changes": changes, "label_changes_from": origin}


def own_settings_ui(dataset: DatasetSpec, max_epochs: int) -> TrainConfig | None:
    """The training form; returns a config when the user presses Train."""
    names = list_models()
    model = st.selectbox(
        "Model",
        names,
        index=names.index(DEFAULT_MODEL),
        format_func=model_label,
        key="train_model",
        help=f"The recommended default is {model_label(DEFAULT_MODEL)}.",
    )
    info = model_info(model)
    size = dataset.preprocess.image_size
    if size < info.min_input_size:
        st.warning(
            f"{info.title} needs images of at least {info.min_input_size} px; the active dataset has {size} "
            "px. Choose a larger image size on the Dataset page, or another model."
        )
        return None
    defaults = recommended_config(dataset, model)
    expected_duration_ui(defaults, per_epoch=True)
    with st.form(f"train_form_{model}"):
        settings = optimisation_settings_ui(defaults, max_epochs)
        settings.update(data_settings_ui(defaults))
        if not st.form_submit_button("Train", type="primary"):
            return None
    return TrainConfig(dataset=dataset, model=model, model_options=defaults.model_options, **settings)


def optimisation_settings_ui(defaults: TrainConfig, max_epochs: int) -> dict:
    """The form's epochs, batch, learning rate, optimizer, schedule, averaging and early stopping."""
    left, middle, right = st.columns(3)
    epochs = left.number_input(
        "Epochs (at most)",
        1,
        max_epochs,
        min(defaults.epochs, max_epochs),
        help=f"This server allows at most {max_epochs} epochs per run.",
    )
    batch_size = left.select_slider("Batch size", [8, 16, 32, 64, 128, 256], defaults.batch_size)
    learning_rate = middle.select_slider(
        "Learning rate",
        [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2],
        defaults.learning_rate,
        format_func=lambda v: f"{v:g}",
    )
    optimizer = middle.selectbox("Optimizer", OPTIMIZERS, OPTIMIZERS.index(defaults.optimizer))
    schedule = middle.selectbox("Learning-rate schedule", SCHEDULES, SCHEDULES.index(defaults.schedule))
    weight_averaging = middle.select_slider(
        "Weight averaging",
        sorted({0.0, 0.9, 0.98, 0.99, 0.995, defaults.weight_averaging}),
        defaults.weight_averaging,
        format_func=lambda v: f"momentum {v:g}" if v else "off",
        help="Validate, checkpoint and keep a moving average of the weights over the last steps (about "
        "1 / (1 - momentum) of them) instead of the last step's: steadier curves, often a point better.",
    )
    return {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "optimizer": optimizer,
        "schedule": schedule,
        "weight_averaging": float(weight_averaging),
        "early_stopping": right.toggle("Early stopping", defaults.early_stopping),
        "monitor": right.selectbox(
            "Watch",
            MONITORS,
            MONITORS.index(defaults.monitor),
            help="Early stopping and the best checkpoint follow this validation figure.",
        ),
        "patience": int(right.number_input("Patience (epochs)", 1, 100, defaults.patience)),
    }


def data_settings_ui(defaults: TrainConfig) -> dict:
    """The form's augmentation, class weights, validation images and seed."""
    st.markdown("**Augmentation** (random, every batch) and **imbalance**")
    aug = st.columns(5)
    augment = AugmentOptions(
        flip=aug[0].checkbox("Flips", True),
        rotate=aug[1].checkbox("Rotations", True),
        zoom=aug[2].slider("Zoom ±", 0.0, 0.5, 0.1, 0.05),
        brightness=aug[3].slider("Brightness ±", 0.0, 0.5, 0.1, 0.05),
    )
    class_weighting = aug[4].toggle(
        "Class weights",
        defaults.class_weighting,
        help="Weigh rare classes up so that each class counts as much in the loss.",
    )
    source_col, seed_col = st.columns(2)
    validation = source_col.selectbox(
        "Validation images",
        VALIDATION_SOURCES,
        format_func={"val_split": "the dataset's val split", "from_train": "10% held out of train"}.get,
    )
    seed = seed_col.number_input("Seed", 0, 10**6, 0, help="The same seed and settings reproduce the same curve.")
    return {"augment": augment, "class_weighting": class_weighting, "validation": validation, "seed": int(seed)}


def runs_table_ui(summaries: list[RunSummary], positions: dict[str, int], viewer: Viewer) -> RunSummary | None:
    """The runs, newest first (a queued one with its place in the queue); returns the run chosen in the table (the
    one this session looked at last, else the newest)."""
    rows = [run_row(summary, viewer, positions.get(summary.id)) for summary in summaries]
    if not rows:
        st.info("No runs yet: choose a model above and press Train.")
        return None
    table = pd.DataFrame(rows)
    event = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="runs_table",
        column_config={
            # wide enough for "3/8, batch 12/70" from the start: a grid sizes its columns to their first values
            "epochs": st.column_config.TextColumn(width="medium"),
            "val balanced acc": st.column_config.NumberColumn(format="%.3f"),
            "test balanced acc": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    selected = event.selection.rows if event is not None else []
    if selected:
        st.session_state[VIEWED_RUN_KEY] = table["run"].iloc[selected[0]]
    shown = set(table["run"])
    # The run this session looked at last, here or on another page; else a link's (a reload, a shared link).
    wanted = (st.session_state.get(VIEWED_RUN_KEY), st.query_params.get(SELECTED_RUN_KEY))
    chosen = next((run_id for run_id in wanted if run_id in shown), table["run"].iloc[0])
    st.query_params[SELECTED_RUN_KEY] = chosen  # a reload or a shared link shows the same run
    st.session_state[VIEWED_RUN_KEY] = chosen
    return next(summary for summary in summaries if summary.id == chosen)


# One colour per series, the legend's too: train loss, val loss, train accuracy, val accuracy, val balanced.
COLOURS = {
    "loss": "#1f77b4",
    "val_loss": "#ff7f0e",
    "accuracy": "#2ca02c",
    "val_accuracy": "#d62728",
    "val_balanced_accuracy": "#9467bd",
}


def curves_figure(metrics: list[dict], by_batch: bool) -> go.Figure:
    """Loss and accuracy, train against validation; the training side by batch (one continuous line from the first
    batch on), or by epoch; a dotted line where a seed ensemble's next network starts."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    epochs = epoch_records(metrics)
    if by_batch:
        train = [m for m in metrics if m.get("kind") == "batch" and m.get("steps_per_epoch")]
        train_x = [b["step"] / b["steps_per_epoch"] for b in train]
        mode, suffix = "lines", " (batches)"
    else:
        train, mode, suffix = epochs, "lines+markers", ""
        train_x = [e["epoch"] for e in epochs]
    epoch_x = [e["epoch"] for e in epochs]
    lines = [
        (train_x, train, "loss", f"train loss{suffix}", 1, mode, None),
        (train_x, train, "accuracy", f"train accuracy{suffix}", 2, mode, None),
        (epoch_x, epochs, "val_loss", "val loss", 1, "lines+markers", None),
        (epoch_x, epochs, "val_accuracy", "val accuracy", 2, "lines+markers", None),
        (epoch_x, epochs, "val_balanced_accuracy", "val balanced accuracy", 2, "lines+markers", "dot"),
    ]
    for x, records, key, name, column, line_mode, dash in lines:
        figure.add_scatter(
            x=x,
            y=[r.get(key) for r in records],
            name=name,
            row=1,
            col=column,
            mode=line_mode,
            line={"color": COLOURS[key], "dash": dash},
        )
    for number, epoch in enumerate(next_network_epochs(metrics), start=2):  # a seed ensemble's networks
        figure.add_vline(
            x=epoch, line={"dash": "dot", "color": "grey"}, annotation_text=f"network {number}", row=1, col="all"
        )
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    figure.update_layout(height=380, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return figure


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_curves(path: str, version: tuple[int, int], by_batch: bool) -> go.Figure:
    return curves_figure(run_metrics(Run(Path(path))), by_batch)


def run_curves(run, by_batch: bool) -> go.Figure:
    """The run's curves, drawn once per change of its metrics for all sessions watching it (Streamlit copies a
    figure to send it, so sharing it is safe)."""
    return _shared_curves(str(run.path), run.metrics_version(), by_batch)


def runs_section(client: ServiceClient, viewer: Viewer) -> None:
    """The runs table and the chosen run, read afresh together (every 2 s while runs are queued or running), so
    the table, the progress bar and the curves always tell the same moment of the same run."""
    summaries, damaged = client.store.scan()
    active = any(summary.state.active for summary in summaries)
    if st.session_state.get("train_runs_active") and not active:
        st.session_state["train_runs_active"] = False
        st.rerun(scope="app")  # the last run just ended: stop polling
    st.session_state["train_runs_active"] = active
    service_ui(client, summaries)
    shown = [summary for summary in summaries if viewer.lists(summary)]
    positions = queue_positions(summaries, time.time())
    chosen = runs_table_ui(shown, positions, viewer)
    if damaged:
        with st.expander(f"{len(damaged)} damaged run folder(s), left out"):
            st.markdown("\n".join(f"- `{run.id}`: damaged: {plain(run.reason)}" for run in damaged))
    if chosen:
        # A container per run: nothing of the run shown before stays on screen under another run's header.
        with st.container(key=f"run_view_{chosen.id}"):
            run_view(client, chosen, viewer, positions.get(chosen.id))
    trash_ui(client, viewer.user)


def run_view(client: ServiceClient, summary: RunSummary, viewer: Viewer, queue_position: int | None) -> None:
    """The selected run: state (a queued run's place in the queue), live curves, stop, log."""
    run, state, user = summary.run, summary.state, viewer.user
    head = st.columns([3, 1])
    owner = f" · {plain(viewer.owner_label(summary))}'s" if viewer.sign_in else ""
    head[0].markdown(
        f"**{run.id}**"
        + (f" · {plain(summary.title)}" if summary.title else "")
        + owner
        + f": {state.value} · {describe_run_model(summary.config)} on {plain(describe_spec(summary.dataset))}"
        + (f" · {summary.device}" if summary.device else "")
        + (f" · on {summary.node}" if summary.node else "")
    )
    base_run_note(summary)
    may_stop = may(user, Action.STOP, summary.owner_id)
    if state.active and may_stop and head[1].button("Stop", key=f"stop_{run.id}", icon=":material/stop_circle:"):
        client.stop(run.id, user)
        st.toast("Stop requested: the run ends after its current batch and keeps what it learned.")
    metrics = run_metrics(run)
    run_state_ui(summary, epoch_records(metrics), queue_position)
    run_results_ui(summary, metrics)
    if may(user, Action.RENAME, summary.owner_id) or may(user, Action.DELETE, summary.owner_id):
        manage_ui(client, summary, user)
    with st.expander("Log"):
        st.code(run.log_tail(40) or "(empty)", language=None)
        if summary.traceback:
            st.code(summary.traceback, language="python")
        st.caption(f"Its TensorBoard event files, on the server's machine: `galaxy-lab tensorboard {run.id}`")


def run_state_ui(summary: RunSummary, epochs: list[dict], queue_position: int | None) -> None:
    """Where the run is (queued, its progress while it trains) or how it ended."""
    state = summary.state
    if state is RunState.QUEUED:
        place = f", {ordinal(queue_position)} in the queue" if queue_position else ""
        st.info(f"Queued: {as_message(summary.message)}{place}. It starts by itself when a training slot is free.")
    elif state is RunState.RUNNING:
        text = f"{summary.message}"
        if summary.run.stop_requested():
            text = f"stopping ({text})"
        text += f" · epoch {summary.epochs_done + 1} of at most {summary.epochs_planned or '?'}"
        text += summary.batch_progress()
        if epochs:
            text += f" · {epochs[-1]['images_per_second']:.0f} images/s"
        if summary.eta_seconds is not None:
            text += f" · about {summary.eta_seconds / 60:.1f} min left"
        st.progress(summary.progress, text=text)
    elif state is RunState.FAILED:
        st.error(f"The run {as_message(summary.message)}")
    elif state is RunState.INTERRUPTED:
        st.warning(f"The run was {as_message(summary.message)}. Everything it wrote before is kept.")
    else:
        st.success(f"The run {as_message(summary.message)}.")


def run_results_ui(summary: RunSummary, metrics: list[dict]) -> None:
    """A review's link to its page, the test figures, and the live curves."""
    run = summary.run
    if has_review(summary):
        st.page_link(REVIEW_PAGE.streamlit_page(), label="Review its doubted labels", icon=REVIEW_PAGE.icon)
    if summary.has_test_results:
        cols = st.columns(3)
        cols[0].metric("Test accuracy", f"{summary.test_accuracy:.1%}")
        cols[1].metric("Test balanced accuracy", f"{summary.test_balanced_accuracy:.1%}")
        best = summary.best_val_balanced_accuracy
        cols[2].metric("Best val balanced accuracy", f"{best:.1%}" if best is not None else "-")
        interval = run_interval(run)
        if interval:
            interval_note(interval)
        label_noise_note()
    if metrics and not summary.is_label_review and summary.epochs_planned != 0:  # an ensemble has no curves
        if epoch_records(metrics):
            by_batch = st.toggle("Training curve by batch", True, key=f"by_batch_{run.id}")
        else:
            by_batch = True
            st.caption("Until the first epoch ends, the training curve is drawn batch by batch.")
        st.plotly_chart(run_curves(run, by_batch), key=f"curves_{run.id}")


def new_run_form(client: ServiceClient, dataset: DatasetSpec, max_epochs: int, viewer: Viewer) -> bool:
    """The recipe, its settings and Train; whether a run of the viewer's was queued."""
    try:
        config = new_run_ui(dataset, max_epochs, viewer)
    except ValueError as error:
        st.error(f"These settings cannot train: {as_message(error)}")
        return False
    if config is None:
        return False
    try:
        run, queued_now = queue_once(client, config, viewer.user)
    except GalaxyLabError as error:  # a full queue, a base that cannot be one, a runs folder that cannot be written
        st.error(f"The run was not queued: {as_message(error)}.")
        return False
    st.success(f"Queued run {run.id}." if queued_now else f"Run {run.id} was queued by this press already.")
    return queued_now


def manage_ui(client: ServiceClient, summary: RunSummary, user: User) -> None:
    """Its title, and its move to the trash: for its owner and the teacher."""
    with st.expander("Title, disk, delete"):
        with st.form(f"rename_{summary.id}", border=False):
            title = st.text_input("Title", summary.title, max_chars=MAX_TITLE, placeholder="deeper net, no dropout")
            if st.form_submit_button("Save the title"):
                client.rename(summary.id, title, user)
                st.rerun(scope="app")
        st.caption(f"It takes {summary.run.disk_bytes() / 1e6:,.1f} MB on disk.")
        if st.button("Move to the trash", key=f"delete_{summary.id}", icon=":material/delete:"):
            client.delete(summary.id, user)
            st.session_state.pop(VIEWED_RUN_KEY, None)
            st.rerun(scope="app")


def trash_ui(client: ServiceClient, user: User) -> None:
    """The runs in the trash this user may restore; the teacher may empty it."""
    trashed = client.trashed(user)
    if not trashed:
        return
    with st.expander(f"Trash: {len(trashed)} run(s), restorable until it is emptied"):
        for summary in trashed:
            left, right = st.columns([4, 1])
            left.text(f"{summary.name} · {summary.owner_name} · {summary.message}")
            if right.button("Restore", key=f"restore_{summary.id}"):
                client.restore(summary.id, user)
                st.rerun()
        if may(user, Action.EMPTY_TRASH):
            empty_trash_ui(client, user, len(trashed))


def empty_trash_ui(client: ServiceClient, user: User, count: int) -> None:
    """Empty the trash, once asked to confirm (nothing brings its runs back), away from the Restore buttons."""
    st.divider()
    if not st.session_state.get("empty_trash_asked"):
        if st.button("Empty the trash…", key="empty_trash"):
            st.session_state["empty_trash_asked"] = True
            st.rerun()
        return
    st.warning(f"Delete the {count} run(s) in the trash for good? Nothing brings them back.")
    left, right = st.columns(2)
    if left.button(f"Delete {count} run(s) for good", key="empty_trash_confirmed", type="primary"):
        st.session_state["empty_trash_asked"] = False
        st.toast(f"{client.empty_trash(user)} run(s) deleted for good.")
        st.rerun()
    if right.button("Keep them", key="empty_trash_cancelled"):
        st.session_state["empty_trash_asked"] = False
        st.rerun()


def service_ui(client: ServiceClient, summaries: list[RunSummary]) -> None:
    """Start the training service if runs wait for it, and say what keeps queued runs waiting, if anything."""
    client.ensure_service(summaries)
    service = client.service()
    if service.problem and any(summary.state is RunState.QUEUED for summary in summaries):
        st.warning(
            f"Training service: {as_message(service.describe())}. Queued runs are kept and start once this is fixed."
        )


def render(viewer: Viewer) -> None:
    """Draw the Train page."""
    settings = get_settings()
    client = ServiceClient.from_settings(settings)
    st.title("Train")
    dataset = active_dataset_spec()
    st.caption(
        f"On the active dataset: **{plain(describe_spec(dataset))}** (change it on the Dataset page). Runs train in "
        "background processes: leave this page or close the browser, they go on."
    )
    # Open at first when there are no runs yet; then as the person leaves it (queueing a run does not fold it away).
    opened_at_first = st.session_state.setdefault("train_new_run_opened_at_first", not client.store.run_ids())
    new_run = st.expander("New run", expanded=opened_at_first, key=NEW_RUN_KEY, on_change="rerun")
    if new_run.open:  # drawn only when open: a visit to watch runs measures and loads nothing for a new one
        with new_run:
            new_run_form(client, dataset, settings.max_epochs, viewer)
    active = bool(client.store.runs(active_only=True))
    st.session_state["train_runs_active"] = active
    st.fragment(run_every=REFRESH_SECONDS if active else None)(runs_section)(client, viewer)


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
