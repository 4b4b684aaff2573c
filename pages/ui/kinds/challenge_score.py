"""The challenge_score kind on the pages: the Challenge page's "Submit a run" form, which queues a scoring run of the
chosen run through galaxy_core.classroom.submissions (a student never queues one directly)."""

from __future__ import annotations

import time

import streamlit as st

from galaxy_core.classroom.challenge import Challenge, submissions_left, submissions_of
from galaxy_core.classroom.submissions import owned_submittable, submit_run
from galaxy_core.errors import GalaxyLabError
from galaxy_core.training import RunStore
from pages.ui.display import as_message, plain
from pages.ui.identity import Viewer
from pages.ui.runs import run_label


def submit_ui(settings, challenge: Challenge, viewer: Viewer) -> None:
    user, now = viewer.user, time.time()
    if not challenge.open_for_submissions(now):
        return
    mine = [s for s in submissions_of(settings.runs_dir, challenge.id) if s.student_id == user.id]
    left, rule = submissions_left(challenge, mine, now)
    runs = owned_submittable(RunStore(settings.runs_dir).runs(), challenge, user)
    st.subheader("Submit a run")
    st.caption(
        ("Any number of submissions." if left is None else f"{left} submission(s) left ({plain(rule)}).")
        + " Your finished runs on the challenge's dataset that meet its rules are listed."
    )
    if not runs:
        st.info("None of your runs can be submitted yet: train one on the challenge's dataset within its rules.")
        return
    by_id = {summary.id: summary for summary in runs}
    run_id = st.selectbox("Your run", list(by_id), format_func=lambda i: run_label(by_id[i], viewer), key="submit_run")
    if st.button("Submit", type="primary", key="challenge_submit", disabled=left == 0):
        try:
            submission = submit_run(settings, challenge.id, run_id, user)
        except GalaxyLabError as error:
            st.error(as_message(error))
        else:
            st.success(f"Submission {submission.number} is in: it is scored on the private test set in a moment.")
