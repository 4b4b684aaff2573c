"""The training recipe's fields that other kinds' forms share: how many of the training images to use."""

from __future__ import annotations

import streamlit as st

ALL_LABELS, SHARE, PER_CLASS = "all", "share", "per class"


def few_labels_ui(key: str) -> dict:
    """How many training images to use: all, a share of each class, or a number of each class (drawn with the
    run's seed); returns the config fields that say so."""
    left, right = st.columns([2, 1])
    choice = left.radio(
        "Training images",
        [ALL_LABELS, SHARE, PER_CLASS],
        format_func={ALL_LABELS: "all", SHARE: "a share of each class", PER_CLASS: "a number of each class"}.get,
        horizontal=True,
        key=f"{key}_few_labels",
        help="Few labels: how much does a run learn from 5% of the labels? Validation and test images stay whole.",
    )
    if choice == SHARE:
        percent = right.select_slider(
            "Share", [1, 2, 5, 10, 20, 50, 100], 20, format_func=lambda v: f"{v}%", key=f"{key}_share"
        )
        return {"train_fraction": percent / 100} if percent < 100 else {}
    if choice == PER_CLASS:
        return {"train_per_class": int(right.number_input("Images of each class", 1, 100_000, 20, key=f"{key}_n"))}
    return {}
