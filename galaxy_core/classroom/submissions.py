"""Submitting runs to a class challenge, scoring them on the private test set, and what each person may see of it.

A student submits one of their finished runs that meets the challenge's rules; a scoring run of it is queued in the
scoring store (galaxy_core.classroom.challenge) and fair-shared like any run. Before the private figures are out a
student sees the public figure (the run's test balanced accuracy on the dataset's own test split, which the whole
class sees and tunes against) and how many submissions they have left; nothing of the private set: no figure, no
per-image answer, not its size. A teacher sees everything, always. Once the figures are out the board shows the
shake-up: each student's public and private rank. A student's entry is their submission with the best public figure
(the one they would pick, as Kaggle picks one for those who choose none).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, replace

from galaxy_core.answers.inference import balanced_accuracy_interval_of, paired_predictions
from galaxy_core.classroom.access import Action, may, owns, require
from galaxy_core.classroom.challenge import (
    Challenge,
    Submission,
    challenge_lock,
    load_challenge,
    remove_submission,
    save_submission,
    scoring_root,
    submissions_left,
    submissions_of,
)
from galaxy_core.classroom.names import visible_name
from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, TEACHER, User
from galaxy_core.errors import InvalidInputError
from galaxy_core.evaluation import McNemarResult, mcnemar
from galaxy_core.training import RunState, RunStore, RunSummary
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.kinds.challenge_score import score_config


class RuleBrokenError(InvalidInputError):
    """A submission the challenge's rules or limits refuse; the message names the rule."""


def rule_problems(challenge: Challenge, summary: RunSummary) -> list[str]:
    """The rules a run breaks, in words (none: it may be submitted)."""
    rules, problems = challenge.rules, []
    if summary.state is not RunState.FINISHED or not summary.has_model or not summary.has_test_results:
        return [f"run {summary.name} has not finished with a tested model"]
    if not summary.traits.ones_own or summary.is_label_review:
        return [f"run {summary.name} is not one network of its owner's (an ensemble of runs, a label review)"]
    if not summary.dataset.same_images(challenge.dataset_spec):
        problems.append(f"run {summary.name} did not train on the challenge's dataset")
    if tuple(summary.class_names) != challenge.class_names:
        problems.append(f"run {summary.name} does not answer with the challenge's classes {challenge.class_names}")
    if rules.max_parameters is not None and (summary.parameters or 0) > rules.max_parameters:
        problems.append(f"its network has {summary.parameters:,} parameters, the rules allow {rules.max_parameters:,}")
    if rules.max_epochs is not None and summary.epochs_done > rules.max_epochs:
        problems.append(f"it trained {summary.epochs_done} epochs, the rules allow {rules.max_epochs}")
    minutes = summary.training_minutes
    if rules.max_training_minutes is not None and (minutes is None or minutes > rules.max_training_minutes):
        took = "an unknown time" if minutes is None else f"{minutes:.1f} minutes"
        problems.append(f"it trained for {took}, the rules allow {rules.max_training_minutes:g}")
    return problems


def submit_run(settings, challenge_id: str, run_id: str, user: User, now: float | None = None) -> Submission:
    """Submit the run `run_id` for its owner (`user`, or a teacher for them) and queue its scoring; RuleBrokenError
    naming the rule or limit it breaks, NotAllowedError for a student's classmate's run. The submission counts, against
    the owner's limits, once its scoring is queued."""
    now = time.time() if now is None else now
    summary = RunStore(settings.runs_dir).get(run_id).summary()
    require(user, Action.SUBMIT, summary.owner_id, summary.owner_name, f"run {summary.name}")
    role = TEACHER if summary.owner_is_teacher else STUDENT
    student = User(summary.owner_id or MACHINE_TEACHER.id, summary.owner_name, role)
    with challenge_lock(settings.runs_dir, challenge_id):
        challenge = load_challenge(settings.runs_dir, challenge_id)
        if not challenge.open_for_submissions(now):
            raise RuleBrokenError(f"the challenge {challenge.title!r} is closed: it takes no more submissions")
        every = submissions_of(settings.runs_dir, challenge_id)
        theirs = [submission for submission in every if submission.student_id == student.id]
        mine = student.id == user.id
        again = next((s for s in theirs if s.run_id == run_id), None)
        if again is not None:
            whose = "your" if mine else f"{student.name}'s"
            raise RuleBrokenError(f"run {summary.name} is already {whose} submission {again.number}")
        left, rule = submissions_left(challenge, theirs, now)
        if left == 0:
            who = "you have" if mine else f"{student.name} has"
            raise RuleBrokenError(f"{who} no submission left: the rules allow {rule}")
        problems = rule_problems(challenge, summary)
        if problems:
            raise RuleBrokenError(f"run {summary.name} cannot be submitted: " + "; ".join(problems))
        submission = Submission(
            number=max((s.number for s in every), default=0) + 1,
            student_id=student.id,
            student_name=student.name,
            run_id=summary.id,
            run_name=summary.name,
            submitted=now,
            public=summary.test_balanced_accuracy,
            public_interval=balanced_accuracy_interval_of(summary.run),
        )
        save_submission(settings.runs_dir, challenge_id, submission)
        try:
            config = score_config(
                challenge.private_spec(summary.dataset), summary.model, challenge.id, submission.number,
                summary.run.model_path("best"),
            )  # fmt: skip
            scoring = ServiceClient.from_settings(settings, scoring_root(settings.runs_dir)).submit(config, student)
        except BaseException:
            remove_submission(settings.runs_dir, challenge_id, submission.number)
            raise
        submission = replace(submission, scoring_run=scoring.id)
        save_submission(settings.runs_dir, challenge_id, submission)
    return submission


@dataclass(frozen=True)
class Score:
    """A submission's private figures, as its scoring run left them."""

    state: str  # "waiting", "scoring", "scored", "failed"
    figure: float | None = None
    interval: tuple[float, float] | None = None
    why: str = ""  # a failure's message (the teacher's to see: it may name a private file)


def private_score(runs_dir, submission: Submission) -> Score:
    """The submission's score; one still to be scored starts the scoring store's service if none runs (after a
    restart of the server, or a service that died)."""
    if submission.scoring_run is None:
        return Score("waiting")
    try:
        summary = RunStore(scoring_root(runs_dir)).get(submission.scoring_run).summary()
    except (LookupError, OSError, ValueError) as error:
        return Score("failed", why=f"its scoring run cannot be read: {error}")
    if summary.state.active:
        ServiceClient(scoring_root(runs_dir)).ensure_service([summary])
        return Score("scoring" if summary.state is RunState.RUNNING else "waiting")
    if not summary.has_test_results:
        return Score("failed", why=summary.message)
    return Score("scored", summary.test_balanced_accuracy, balanced_accuracy_interval_of(summary.run))


@dataclass(frozen=True)
class SubmissionView:
    """A submission as a viewer may see it: the private score only when they may."""

    submission: Submission
    state: str
    private: float | None
    private_interval: tuple[float, float] | None
    why: str


def _view(runs_dir, submission: Submission, viewer: User, private_shown: bool) -> SubmissionView:
    """The submission as `viewer` sees it: its private score only when shown, why its scoring failed only to a
    teacher (the reason may name a private file)."""
    score = private_score(runs_dir, submission)
    why = score.why if may(viewer, Action.SEE_PRIVATE_FIGURES) else ""
    if not private_shown:
        return SubmissionView(submission, score.state, None, None, why)
    return SubmissionView(submission, score.state, score.figure, score.interval, why)


def private_shown_to(challenge: Challenge, viewer: User, now: float) -> bool:
    return challenge.private_figures_out(now) or may(viewer, Action.SEE_PRIVATE_FIGURES)


def my_submissions(runs_dir, challenge: Challenge, viewer: User, now: float | None = None) -> list[SubmissionView]:
    """The viewer's own submissions, the first first; private figures only once the viewer may see them."""
    now = time.time() if now is None else now
    shown = private_shown_to(challenge, viewer, now)
    theirs = [s for s in submissions_of(runs_dir, challenge.id) if s.student_id == viewer.id]
    return [_view(runs_dir, submission, viewer, shown) for submission in theirs]


@dataclass(frozen=True)
class Entry:
    """One student on the challenge's board: their submission with the best public figure."""

    student_id: str
    name: str  # as the viewer may see it
    submissions: int
    chosen: SubmissionView
    public_rank: int
    private_rank: int | None  # None: not shown, or not scored


def challenge_board(settings, challenge: Challenge, viewer: User, show_names: bool, now: float | None = None):
    """(the board's entries by public rank; the paired test of the private first and second, None when not shown
    or fewer than two are scored)."""
    now = time.time() if now is None else now
    shown = private_shown_to(challenge, viewer, now)
    by_student: dict[str, list[Submission]] = {}
    for submission in submissions_of(settings.runs_dir, challenge.id):
        by_student.setdefault(submission.student_id, []).append(submission)
    chosen = {
        student: max(theirs, key=lambda s: (s.public if s.public is not None else -1.0, -s.number))
        for student, theirs in by_student.items()
    }
    order = sorted(chosen, key=lambda student: -(chosen[student].public or 0.0))
    views = {student: _view(settings.runs_dir, chosen[student], viewer, shown) for student in order}
    scored = sorted((s for s in order if views[s].private is not None), key=lambda s: -views[s].private)
    private_ranks = {student: rank for rank, student in enumerate(scored, start=1)}
    entries = [
        Entry(
            student,
            visible_name(student, chosen[student].student_name, viewer, show_names, f"classmate {rank}"),
            len(by_student[student]),
            views[student],
            rank,
            private_ranks.get(student),
        )
        for rank, student in enumerate(order, start=1)
    ]
    verdict = _first_against_second(settings.runs_dir, [views[s].submission for s in scored[:2]]) if shown else None
    return entries, verdict


def _first_against_second(runs_dir, pair: list[Submission]) -> McNemarResult | None:
    """The paired test of the private first and second on the private images (McNemar)."""
    if len(pair) < 2:
        return None
    store = RunStore(scoring_root(runs_dir))
    try:
        answers = paired_predictions([store.get(submission.scoring_run) for submission in pair])
    except InvalidInputError:  # not on the same private images (the folder changed between the two)
        return None
    first, second = (answer.probabilities.argmax(axis=1) == answer.labels for answer in answers)
    return mcnemar(first, second)


GRADE_COLUMNS = (
    "student", "student id", "submissions", "best public submission", "run", "public balanced accuracy",
    "public 95% interval", "private balanced accuracy", "private 95% interval", "public rank", "private rank",
    "rules met",
)  # fmt: skip


def grade_book_csv(settings, challenge: Challenge, viewer: User) -> str:
    """One row per student for the teacher's grade book (the board's rows, with every name and private figure)."""
    require(viewer, Action.SEE_PRIVATE_FIGURES)
    entries, _ = challenge_board(settings, challenge, viewer, show_names=True)
    store, out = RunStore(settings.runs_dir), io.StringIO()
    writer = csv.writer(out)
    writer.writerow(GRADE_COLUMNS)
    for entry in entries:
        view, submission = entry.chosen, entry.chosen.submission
        writer.writerow([
            _cell(entry.name), entry.student_id, entry.submissions, submission.number, submission.run_id,
            _figure(submission.public), _interval(submission.public_interval), _figure(view.private),
            _interval(view.private_interval), entry.public_rank, entry.private_rank or "",
            _rules_met(store, challenge, submission),
        ])  # fmt: skip
    return out.getvalue()


def _rules_met(store: RunStore, challenge: Challenge, submission: Submission) -> str:
    try:
        problems = rule_problems(challenge, store.get(submission.run_id).summary())
    except (LookupError, OSError, ValueError):
        return "its run is gone"
    return "yes" if not problems else "no: " + "; ".join(problems)


def _cell(text: str) -> str:
    """A name as a spreadsheet cell: never a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _interval(interval) -> str:
    return "" if not interval else f"{interval[0]:.4f} to {interval[1]:.4f}"


def owned_submittable(summaries: list[RunSummary], challenge: Challenge, user: User) -> list[RunSummary]:
    """The viewer's own runs that meet the challenge's rules, for the submit menu."""
    return [s for s in summaries if owns(user, s.owner_id) and not rule_problems(challenge, s)]
