"""The seed-ensemble kind on the pages: how many networks a recipe's run trains."""

from __future__ import annotations

import streamlit as st

from galaxy_core.training.kinds.seed_ensemble import MAX_NETWORKS, networks_config


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
    return networks_config(int(count))
