"""Challenge: a class challenge scored on a private test set. A student submits finished runs and sees the public
board; the private figures stay hidden until the teacher reveals them, and then the board shows the shake-up. The
teacher sets challenges up, watches the private figures live and writes the grade book."""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import streamlit as st

from galaxy_core.classroom.access import Action, may
from galaxy_core.classroom.challenge import (
    Challenge,
    ChallengeRules,
    change_challenge,
    copy_challenge,
    list_challenges,
    set_up_challenge,
    submissions_of,
)
from galaxy_core.classroom.submissions import (
    challenge_board,
    grade_book_csv,
    my_submissions,
    private_shown_to,
)
from galaxy_core.data.registry import describe_spec
from galaxy_core.errors import GalaxyLabError
from pages.ui.display import as_message, label_noise_note, plain
from pages.ui.identity import Viewer
from pages.ui.kinds.challenge_score import submit_ui
from pages.ui.navigation import run_router
from pages.ui.state import active_dataset_spec, get_settings

REFRESH_SECONDS = 3
FIGURE = st.column_config.NumberColumn(format="%.3f")


def render(viewer: Viewer) -> None:
    """Draw the Challenge page."""
    settings, user = get_settings(), viewer.user
    st.title("Challenge")
    st.caption(
        "A test set nobody sees until the end: you tune on the figures you can see, and are ranked on images "
        "no run has looked at. The public leader is often not the private one."
    )
    if may(user, Action.SET_UP_CHALLENGE):
        with st.expander("Set up a challenge", expanded=not list_challenges(settings.runs_dir)):
            set_up_ui(settings, user)
    made = list_challenges(settings.runs_dir)
    if not made:
        st.info("No challenge yet: the teacher sets one up here.")
        return
    by_id = {challenge.id: challenge for challenge in made}
    chosen = st.selectbox("Challenge", list(by_id), format_func=lambda i: by_id[i].title, key="challenge_id")
    challenge = by_id[chosen]
    rules_ui(challenge)
    if may(user, Action.SET_UP_CHALLENGE):
        teacher_ui(settings, challenge, user)
    submit_ui(settings, challenge, viewer)
    pending = any(view.state in ("waiting", "scoring") for view in my_submissions(settings.runs_dir, challenge, user))
    st.fragment(run_every=REFRESH_SECONDS if pending else None)(results_ui)(settings, challenge, viewer)


def rules_ui(challenge: Challenge) -> None:
    rules, now = challenge.rules, time.time()
    state = "open" if challenge.open_for_submissions(now) else "closed"
    limits = [
        f"at most {rules.max_parameters:,} parameters" if rules.max_parameters else "",
        f"at most {rules.max_epochs} epochs" if rules.max_epochs else "",
        f"at most {rules.max_training_minutes:g} minutes of training" if rules.max_training_minutes else "",
        f"{rules.submissions_per_day} submissions in any 24 hours" if rules.submissions_per_day else "",
        f"{rules.submissions_in_all} in all" if rules.submissions_in_all else "",
    ]
    deadline = datetime.fromtimestamp(rules.deadline).strftime("%Y-%m-%d %H:%M") if rules.deadline else "none"
    st.markdown(
        f"**{plain(challenge.title)}** ({state}) · train on **{plain(describe_spec(challenge.dataset_spec))}** · "
        f"deadline: {deadline} · rules: {plain(', '.join(limit for limit in limits if limit) or 'none')}. "
        "Ranked by balanced accuracy on the private test set."
    )


def set_up_ui(settings, user) -> None:
    spec = active_dataset_spec()
    with st.form("challenge_set_up"):
        title = st.text_input("Title", max_chars=80)
        st.caption(f"The class trains on the active dataset, {plain(describe_spec(spec))} (the Dataset page sets it).")
        folder = st.text_input(
            "Private test folder on the server", help="A folder of class folders, outside every data root."
        )
        columns = st.columns(3)
        parameters = columns[0].number_input("Most parameters (0: any)", 0, 10**9, 0, step=10_000)
        epochs = columns[1].number_input("Most epochs (0: any)", 0, 1000, 0)
        minutes = columns[2].number_input("Most training minutes (0: any)", 0.0, 10_000.0, 0.0)
        per_day = columns[0].number_input("Submissions in any 24 hours", 1, 100, 3)
        in_all = columns[1].number_input("Submissions in all", 1, 1000, 10)
        has_deadline = columns[2].checkbox("A deadline")
        day, hour = st.columns(2)
        date = day.date_input("Deadline day")
        clock = hour.time_input("Deadline time")
        at_deadline = st.checkbox("Show the private figures at the deadline (else when I reveal them)")
        if not st.form_submit_button("Set up the challenge"):
            return
    deadline = datetime.combine(date, clock).timestamp() if has_deadline else None
    rules = ChallengeRules(
        parameters or None, epochs or None, minutes or None, per_day, in_all, deadline, at_deadline and has_deadline
    )
    try:
        with st.spinner("Reading the dataset's classes and the private images"):
            made = set_up_challenge(settings.runs_dir, title, spec, folder, rules, user, settings)
    except GalaxyLabError as error:
        st.error(as_message(error))
        return
    st.session_state["challenge_id"] = made.id
    st.success(f"Challenge {plain(made.title)} set up: {made.private_images} private images.")


def teacher_ui(settings, challenge: Challenge, user) -> None:
    """The private set's facts, reveal / close / reopen / copy, the grade book."""
    entries = len({s.student_id for s in submissions_of(settings.runs_dir, challenge.id)})
    st.caption(
        f"Teacher's view: {challenge.private_images} private images in {plain(challenge.private_folder)}; "
        f"{entries} student(s) submitted. You see the private figures; the class "
        f"{'does too' if challenge.private_figures_out(time.time()) else 'does not, until you reveal them'}."
    )
    columns = st.columns(4)
    if not challenge.revealed and columns[0].button("Reveal the private figures", key="challenge_reveal"):
        change_challenge(settings.runs_dir, challenge.id, user, revealed=True)
        st.rerun()
    label, closed = ("Reopen", False) if challenge.closed else ("Close", True)
    if columns[1].button(f"{label} submissions", key="challenge_close"):
        change_challenge(settings.runs_dir, challenge.id, user, closed=closed)
        st.rerun()
    if columns[2].button("Copy for another class", key="challenge_copy"):
        copy = copy_challenge(settings.runs_dir, challenge.id, f"{challenge.title} (copy)", user)
        st.session_state["challenge_id"] = copy.id
        st.rerun()
    columns[3].download_button(
        "Grade book (CSV)",
        grade_book_csv(settings, challenge, user),
        file_name=f"{challenge.id}-grades.csv",
        mime="text/csv",
        key="challenge_grades",
    )


def results_ui(settings, challenge: Challenge, viewer: Viewer) -> None:
    user, now = viewer.user, time.time()
    shown = private_shown_to(challenge, user, now)
    views = my_submissions(settings.runs_dir, challenge, user)
    if views:
        st.subheader("Your submissions")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "submission": view.submission.number,
                        "run": view.submission.run_name,
                        "public figure": view.submission.public,
                        "scoring": view.state + (f": {view.why}" if view.why else ""),
                        "private figure": view.private,
                    }
                    for view in views
                ]
            ),
            hide_index=True,
            column_config={"public figure": FIGURE, "private figure": FIGURE},
        )
    board_ui(settings, challenge, viewer, shown)


def board_ui(settings, challenge: Challenge, viewer: Viewer, shown: bool) -> None:
    entries, verdict = challenge_board(settings, challenge, viewer.user, viewer.names_shown)
    st.subheader("Board" if shown else "Public board")
    if not entries:
        st.info("No submission yet.")
        return
    rows = []
    for entry in entries:
        row = {"public rank": entry.public_rank, "who": entry.name, "submissions": entry.submissions}
        row["public figure"] = entry.chosen.submission.public
        if shown:
            interval = entry.chosen.private_interval
            row |= {"private rank": entry.private_rank, "private figure": entry.chosen.private}
            row["private 95% interval"] = f"{interval[0]:.3f} to {interval[1]:.3f}" if interval else ""
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={"public figure": FIGURE, "private figure": FIGURE})
    st.caption(
        "Public figure: the submitted run's test balanced accuracy on the dataset's own test split, which everyone "
        "sees and tunes against. Each person's entry is their submission with the best public figure."
    )
    if not shown:
        st.caption("The private figures are hidden until the teacher reveals them.")
    elif verdict is not None:
        st.markdown(f"**Private first against second:** {plain(verdict.in_words('the first', 'the second'))}")
    label_noise_note()


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
