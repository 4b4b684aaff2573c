"""The label-review kind on the pages: the Train page's form of a review run."""

from __future__ import annotations

import streamlit as st

from galaxy_core.data import DatasetSpec
from galaxy_core.errors import GalaxyLabError
from galaxy_core.training import TrainConfig
from galaxy_core.training.config import PRESETS, REVIEW_PRESET
from galaxy_core.training.kinds.label_review import MAX_FOLDS, MIN_FOLDS, check_folds, label_review_config
from pages.ui.display import as_message
from pages.ui.duration import expected_duration_ui
from pages.ui.runs import train_button
from pages.ui.state import get_settings, load_dataset


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
        check_folds(load_dataset(dataset, get_settings()), config.options.folds)
    except (GalaxyLabError, ValueError) as error:
        st.warning(f"This dataset cannot be reviewed in {config.options.folds} folds: {as_message(error)}.")
        return None
    expected_duration_ui(config)
    return config if train_button("Review the labels", type="primary", key="train_review") else None
