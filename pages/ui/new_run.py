"""Start a run (the Train page's New run): the recipe, its settings, how long it will take here, and Train."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from galaxy_core.answers.review import ACTIONS, has_review, load_review, trainable_decision_sets
from galaxy_core.classroom.lesson import lesson_base
from galaxy_core.data import DatasetSpec
from galaxy_core.data.augment import AugmentOptions
from galaxy_core.models import list_models, model_info
from galaxy_core.training import TrainConfig
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.config import (
    DEFAULT_MODEL,
    DEFAULT_PRESET,
    MAX_SEED,
    MONITORS,
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    VALIDATION_SOURCES,
    preset_config,
    recommended_config,
)
from galaxy_core.training.kinds import describe_run_model
from pages.ui.display import as_message, plain
from pages.ui.duration import expected_duration_ui
from pages.ui.identity import Viewer
from pages.ui.kinds.label_review import label_review_ui
from pages.ui.kinds.seed_ensemble import networks_ui
from pages.ui.kinds.train import few_labels_ui
from pages.ui.kinds.transfer import transfer_ui
from pages.ui.runs import (
    model_label,
    queue_pressed,
    runs_that,
    train_button,
)
from pages.ui.state import get_settings

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
    return config if train_button("Train", type="primary", key=f"train_{preset}") else None


def new_run_ui(dataset: DatasetSpec, max_epochs: int, viewer: Viewer) -> TrainConfig | None:
    """The recipe choice, then a preset's button or the training form; returns a config when Train is pressed."""
    recipes = [*PRESETS, OWN_RECIPE, TRANSFER_RECIPE, REVIEW_RECIPE]
    lesson = lesson_base(ServiceClient.from_settings(get_settings()).store)
    if lesson is not None:
        st.info(
            f"The class starts from {plain(viewer.owner_label(lesson))}'s run {plain(lesson.name)} "
            f"({plain(describe_run_model(lesson.config))}): *Start from a run* trains a new head on its network."
        )
    recipe = st.radio(
        "Recipe",
        recipes,
        index=recipes.index(TRANSFER_RECIPE) if lesson is not None else recipes.index(DEFAULT_PRESET),
        format_func=recipe_label,
        key="train_recipe",
        bind="query-params",
    )
    if recipe == REVIEW_RECIPE:
        return label_review_ui(dataset)
    labels = training_labels_ui(dataset, viewer)
    if recipe == TRANSFER_RECIPE:
        config = transfer_ui(dataset, max_epochs, viewer, lesson)
    else:
        labels.update(few_labels_ui(recipe))
        labels.update(networks_ui(recipe))
        config = (
            preset_ui(dataset, recipe, max_epochs, labels)
            if recipe != OWN_RECIPE
            else own_settings_ui(dataset, max_epochs)
        )
    return replace(config, **labels) if config is not None and labels else config


def training_labels_ui(dataset: DatasetSpec, viewer: Viewer) -> dict:
    """The training labels to train on: as given, or changed by a finished label review of the same images (the
    suggestions a decision set accepts, relabelled or left out); returns the config fields that say so."""
    user = viewer.user
    reviews, _ = runs_that(viewer, lambda summary: has_review(summary) and summary.dataset.same_images(dataset))
    choices = {
        (summary.id, key): f"reviewed by {summary.id}: {name}"
        for summary in reviews
        for key, name in trainable_decision_sets(summary.run, user).items()
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
        if not train_button("Train", in_form=True, type="primary"):
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
    seed = seed_col.number_input(
        "Seed",
        0,
        MAX_SEED,
        None,
        placeholder="drawn for the run",
        help="Each run draws its own unless you give one; the same seed and settings train the same network.",
    )
    return {"augment": augment, "class_weighting": class_weighting, "validation": validation, "seed": seed}


def new_run_form(client: ServiceClient, dataset: DatasetSpec, max_epochs: int, viewer: Viewer) -> bool:
    """The recipe, its settings and Train; whether a run of the viewer's was queued."""
    try:
        config = new_run_ui(dataset, max_epochs, viewer)
    except ValueError as error:
        st.error(f"These settings cannot train: {as_message(error)}")
        return False
    return config is not None and queue_pressed(client, config, viewer.user)
