"""Label review: the training images whose label a label review run doubts, most doubtful first; accept or reject
each suggestion, export the reviewed labels, and train on them from the Train page."""

import numpy as np
import pandas as pd
import streamlit as st

from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.answers.review import (
    ACTIONS,
    CLASS_MAJORITY,
    Doubt,
    LabelReview,
    ReviewError,
    class_decisions,
    has_review,
    load_review,
    record_review_decisions,
    review_decisions,
)
from galaxy_core.classroom.access import Action, may
from galaxy_core.classroom.people import User
from galaxy_core.data import DatasetError
from galaxy_core.errors import GalaxyLabError
from pages.ui.display import as_message, enlarge, label_noise_note, plain
from pages.ui.identity import Viewer
from pages.ui.navigation import run_router
from pages.ui.runs import choose_run, model_key, run_model, runs_apart, runs_that
from pages.ui.state import get_settings, load_dataset, note_run_dataset

PER_PAGE = 6
SHOW = {
    "undecided": "Undecided",
    "all": "All doubted",
    "accepted": "Accepted",
    "rejected": "Rejected",
}
DECISION_LABELS = {None: "Undecided", "accepted": "Accept the suggestion", "rejected": "Keep the given label"}


@st.cache_data(max_entries=64, show_spinner=False)
def _gradcam_overlays(_model, model_file: tuple, image: np.ndarray, classes: tuple) -> list:
    from galaxy_core.answers.explain import gradcam, overlay

    return [overlay(image, gradcam(_model, image, class_index)[0]) for class_index in classes]


def training_images(summary, review: LabelReview) -> dict[str, np.ndarray]:
    """{image id: image} of the reviewed training split, as the review run saw it."""
    dataset = load_dataset(summary.dataset, get_settings())
    dataset = dataset.with_training_labels_changed(summary.config.get("label_changes") or {})
    train = dataset.splits["train"]
    return {str(source_id): image for source_id, image in zip(train.source_ids, train.images, strict=True)}


def _record(run, image: str, key: str, user: User) -> None:
    choice = st.session_state[key]
    record_review_decisions(run, {image: None if choice == "undecided" else choice}, user)


def doubt_row(summary, review: LabelReview, doubt: Doubt, image: np.ndarray, user: User) -> None:
    """One doubted label: the galaxy, Grad-CAM for its given and its suggested class (from the fold model that
    did not train on it), the probabilities and the decision."""
    names = review.class_names
    given, suggested = names[doubt.given], names[doubt.suggested]
    columns = st.columns([1, 1, 1, 2])
    columns[0].image(enlarge(image, 160), caption=f"#{doubt.rank} · {plain(doubt.image)}")
    try:
        fold_model = f"fold-{doubt.fold}"
        overlays = _gradcam_overlays(
            run_model(summary.run, fold_model),
            model_key(summary.run, fold_model),
            image,
            (doubt.given, doubt.suggested),
        )
        for column, picture, name in zip(columns[1:3], overlays, (given, suggested), strict=True):
            column.image(
                enlarge(picture, 160),
                caption=f"Grad-CAM · {plain(name)}: p = {doubt.probabilities[names.index(name)]:.2f}",
            )
    except (ModelLoadError, OSError) as error:
        columns[1].caption(f"No Grad-CAM: {as_message(error)}")
    with columns[3]:
        st.markdown(f"Given **{plain(given)}**, the data suggests **{plain(suggested)}**.")
        st.caption(" · ".join(f"{plain(name)} {p:.2f}" for name, p in zip(names, doubt.probabilities, strict=True)))
        if doubt.accepted_by or doubt.rejected_by:
            st.caption(f"The class: {doubt.accepted_by} accepted, {doubt.rejected_by} kept the given label.")
        key = f"review_decision_{summary.id}_{doubt.image}"
        st.session_state[key] = doubt.decision or "undecided"
        st.radio(
            "Decision",
            ["undecided", "accepted", "rejected"],
            format_func=lambda value: DECISION_LABELS[None if value == "undecided" else value],
            key=key,
            horizontal=True,
            label_visibility="collapsed",
            on_change=_record,
            args=(summary.run, doubt.image, key, user),
        )


def accept_confident_ui(summary, review: LabelReview, user: User) -> None:
    """Accept, in one go, the undecided suggestions the models are confident of."""
    left, right = st.columns([3, 1])
    threshold = left.slider(
        "Accept every undecided suggestion whose probability is at least",
        0.5,
        0.99,
        0.8,
        0.01,
        key="review_threshold",
    )
    confident = review.confident_suggestions(threshold)
    if right.button(f"Accept {len(confident)}", key="review_accept_confident", disabled=not confident):
        record_review_decisions(summary.run, confident, user)
        st.rerun()


def doubts_ui(summary, review: LabelReview, images: dict, user: User) -> None:
    """The doubted labels to show (undecided, all, accepted or rejected), a page of them at a time."""
    show = st.radio("Show", list(SHOW), format_func=SHOW.get, horizontal=True, key="review_show", bind="query-params")
    shown = [d for d in review.doubts if show == "all" or (d.decision or "undecided") == show]
    if not shown:
        st.info(f"No doubted label is {SHOW[show].lower()}.")
        return
    pages = (len(shown) + PER_PAGE - 1) // PER_PAGE
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="review_page") if pages > 1 else 1
    for doubt in shown[(page - 1) * PER_PAGE : page * PER_PAGE]:
        if doubt.image not in images:
            st.warning(f"#{doubt.rank} {plain(doubt.image)} is no longer in the dataset: it changed since the review.")
            continue
        doubt_row(summary, review, doubt, images[doubt.image], user)


def class_view_ui(summary, user: User) -> None:
    """For a teacher: who has reviewed how much, and where the class agrees."""
    people = class_decisions(summary.run, user)
    if not people:
        return
    with st.expander(f"The class's decisions: {len(people)} reviewer(s)"):
        rows = [
            {
                "reviewer": entry["name"],
                "accepted": sum(value == "accepted" for value in entry["decisions"].values()),
                "kept the given label": sum(value == "rejected" for value in entry["decisions"].values()),
            }
            for entry in people.values()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        majority = review_decisions(summary.run, user, CLASS_MAJORITY)
        accepted = sum(value == "accepted" for value in majority.values())
        st.caption(
            f"The class's majority accepts {accepted} suggestion(s): a run trains on that set when you choose "
            "*the class's majority* under Training labels on the Train page."
        )


def render(viewer: Viewer) -> None:
    """Draw the Label review page."""
    st.title("Label review")
    st.markdown(
        "Galaxy Zoo's labels come from volunteers' votes, and some are wrong. A **label review** (started on the "
        "Train page) trains a few quick models, each on part of the training split, and lets each predict the "
        "galaxies it did not see; confident learning then flags the labels those predictions doubt."
    )
    reviews, others = runs_that(viewer, has_review)
    others = [summary for summary in others if summary.is_label_review]
    if not reviews:
        st.info("No finished label review yet: on the Train page choose the recipe *Review the labels*.")
        runs_apart(others, "be reviewed yet")
        st.stop()
    summary = choose_run(reviews, viewer, key="review_run", label="Label review")
    runs_apart(others, "be reviewed yet")
    note_run_dataset(summary)
    user = viewer.user
    try:
        review = load_review(summary, user)
        images = training_images(summary, review)
    except (ReviewError, DatasetError, GalaxyLabError) as error:
        st.error(f"This review cannot be shown: {as_message(error)}")
        st.stop()
    accepted, rejected = len(review.accepted()), sum(d.decision == "rejected" for d in review.doubts)
    columns = st.columns(4)
    columns[0].metric("Doubted labels", len(review.doubts), help=f"of {review.training_images} training images")
    columns[1].metric("Share of the training split", f"{review.doubted_share:.1%}")
    columns[2].metric("Accepted", accepted)
    columns[3].metric("Rejected", rejected)
    label_noise_note()
    if not review.doubts:
        st.success("The review doubts no label of this training split.")
        st.stop()
    if may(user, Action.SEE_REVIEWERS):
        class_view_ui(summary, user)
    accept_confident_ui(summary, review, user)
    doubts_ui(summary, review, images, user)
    st.subheader("Use the reviewed labels")
    st.download_button(
        "Download the reviewed labels (CSV)",
        review.to_csv(),
        file_name=f"reviewed-labels-{summary.id}.csv",
        mime="text/csv",
        key="review_download",
    )
    st.caption(
        f"To train on them, choose this review under *Training labels* on the Train page: accepted suggestions are "
        f"{ACTIONS['relabel']} or {ACTIONS['leave_out']}, only in the training split; validation and test images "
        "keep their labels, so runs with and without the review are judged alike. In a terminal: "
        f"`galaxy-lab train --reviewed-labels reviewed-labels-{summary.id}.csv`."
    )


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
