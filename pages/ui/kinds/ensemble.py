"""An ensemble on the Evaluate page: which of its networks to look at, and what each member adds."""

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from galaxy_core.answers.inference import RunAnswers
from galaxy_core.answers.members import MembersView, member_whereabouts, members_view
from galaxy_core.classroom.people import User
from galaxy_core.errors import GalaxyLabError
from galaxy_core.evaluation import balanced_accuracy_interval
from galaxy_core.training import RunStore
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.kinds.ensemble import ensemble_config
from pages.ui.display import as_message, image_grid, interval_note, label_noise_note
from pages.ui.runs import queue_once, run_model, train_button
from pages.ui.state import get_settings

WHOLE = "the ensemble"
SPLIT_GALLERY = 24


def ensemble_view(summary) -> MembersView | None:
    """The run's members and their answers when it is an ensemble (or a label review whose folds answer as one)."""
    try:
        return members_view(summary)
    except ValueError as error:
        st.warning(str(error))
        return None


def member_choice_ui(summary, view: MembersView, answers: RunAnswers, tta: bool) -> tuple[RunAnswers, int | None]:
    """The ensemble's answers, or one member's (its own answers and network) when chosen: every tab below then
    shows that member. Returns the answers and the chosen member's index (None for the whole ensemble)."""
    chosen = st.selectbox(
        "Look at",
        [WHOLE, *view.names],
        key="evaluate_member",
        bind="query-params",
        help="Every tab below shows the chosen network: the ensemble (its members' averaged answers; its Grad-CAM "
        "is their maps averaged) or one member with its own answers, layers and maps.",
    )
    if chosen == WHOLE:
        return answers, None
    index = view.names.index(chosen)
    probabilities = (view.tta_probabilities if tta else view.probabilities)[index]

    def member_network():
        from galaxy_core.models.ensemble import ensemble_members

        return ensemble_members(run_model(summary.run))[index][0]

    return replace(answers, probabilities=probabilities, load_model=member_network), index


def members_tab(summary, view: MembersView, data: RunAnswers) -> None:
    """Each member's figure, the ensemble's with each left out, where they split and how far agreement is a
    confidence."""
    scores, without, whole = view.member_scores(), view.scores_without_each(), view.ensemble_score()
    where = member_whereabouts(RunStore(summary.run.path.parent), summary) or [""] * len(view.names)
    table = pd.DataFrame(
        {
            "member": view.names,
            "weight": view.weights,
            "test balanced acc": scores,
            "ensemble without it": without,
            "what it adds": [None if value is None else whole - value for value in without],
            "its run": [place or "here" for place in where],
        }
    )
    best = int(np.argmax(scores))
    combined = view.combined.argmax(axis=1)
    low, high = balanced_accuracy_interval(view.labels, combined, view.votes[best])
    st.markdown(
        f"The ensemble: **{whole:.1%}** test balanced accuracy; its members **{np.mean(scores):.1%}** on average, the "
        f"best **{scores[best]:.1%}** ({view.names[best]}). Ensemble minus best member: {whole - scores[best]:+.1%} "
        f"(paired 95% interval {low:+.1%} to {high:+.1%})."
    )
    interval_note(balanced_accuracy_interval(view.labels, combined))
    label_noise_note()
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "weight": st.column_config.NumberColumn(format="%.3f"),
            "test balanced acc": st.column_config.NumberColumn(format="%.3f"),
            "ensemble without it": st.column_config.NumberColumn(format="%.3f"),
            "what it adds": st.column_config.NumberColumn(format="%+.3f"),
        },
    )
    st.caption(
        "What it adds: the ensemble's figure minus its figure with this member left out (the others' weights scaled "
        "up). A member whose run was deleted still answers here: the ensemble keeps its own copy of each model."
    )
    agreement_ui(view, data)


def agreement_ui(view: MembersView, data: RunAnswers) -> None:
    by_agreement = view.score_by_agreement()
    (agreed, right_agreed), (split, right_split) = by_agreement["all agree"], by_agreement["split"]
    total = agreed + split
    lines = [f"All members give the same answer on **{agreed}** of {total} test images"]
    if right_agreed is not None:
        lines[0] += f", and that answer is right on **{right_agreed:.0%}** of them"
    if split:
        lines.append(f"they split on **{split}**, where the ensemble is right on **{right_split:.0%}**")
    st.markdown("; ".join(lines) + ": the members' agreement is a confidence.")
    indices = view.split_images()[:SPLIT_GALLERY]
    if not len(indices):
        return
    st.subheader("Where the members split")
    st.caption(f"The {len(indices)} test images they agree on least: each member's answer, then the ensemble's.")
    names = data.class_names
    captions = [
        " · ".join(f"{names[vote]}" for vote in view.votes[:, index]) + f" → {data.caption(index)}" for index in indices
    ]
    image_grid(data.images[indices], captions)


def make_ensemble_ui(members: list, user: User, key: str, label: str = "Make an ensemble of these runs") -> None:
    """A button that queues the ensemble of `members` (`user`'s run, once per press), and says where it went or why
    it was refused."""
    if not train_button(label, key=key, icon=":material/join:", help=ENSEMBLE_HELP):
        return
    try:
        run, _ = queue_once(ServiceClient.from_settings(get_settings()), ensemble_config(members), user)
    except GalaxyLabError as error:  # a member that cannot be one, a full queue, a runs folder that cannot be written
        st.error(f"The ensemble was not queued: {as_message(error)}.")
        return
    st.success(
        f"Queued the ensemble of {len(members)} runs as run {run.id}: it trains nothing, so it is ready within "
        "seconds of its turn. Evaluate shows it whole and member by member."
    )


ENSEMBLE_HELP = (
    "One model whose answer is the mean of the runs' answers (equal weights). Different networks make different "
    "mistakes, so together they are usually right more often than each alone: the ensemble's Members tab on Evaluate "
    "measures it."
)
