"""Reviewing a dataset's doubted labels: what a finished label review run found, reviewers' decisions, the
reviewed-labels CSV, and the label changes a training run takes from them.

A reviewer accepts a suggestion (the given label is wrong, the suggested class is right) or rejects it (the given
label stays). Only accepted suggestions change training: relabelled to the suggestion, or left out. Each person's
decisions are kept apart (a class reviews the same doubts); a teacher sees where the class agrees, and a training run
takes one set: someone's own, or the class's majority.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from galaxy_core.classroom.access import NOBODY, Action, may, require
from galaxy_core.classroom.people import MACHINE_TEACHER, User, printable
from galaxy_core.errors import GalaxyLabError, InvalidInputError
from galaxy_core.training import Run, RunState, RunSummary
from galaxy_core.training.kinds.label_review import REVIEW_ARRAYS

# How accepted suggestions change a training split: {action: what it does, in words}.
ACTIONS = {"relabel": "relabelled to the suggestion", "leave_out": "left out"}
CSV_COLUMNS = (
    "rank",
    "image",
    "given_label",
    "suggested_label",
    "given_probability",
    "suggested_probability",
    "decision",
)
MAX_CSV_BYTES = 5_000_000
DECISIONS = ("accepted", "rejected")
# In the review run's folder: {"by": {person's id: {"name": ..., "decisions": {source id: decision}}}}.
DECISIONS_FILE = "review-decisions.json"
CLASS_MAJORITY = "class"  # the decision set of the class: what more reviewers accepted than rejected


class ReviewError(GalaxyLabError, ValueError):
    """A run that cannot be reviewed (not a label review, not finished, damaged), or a reviewed-labels file that
    cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Doubt:
    """One training image whose label the review doubts."""

    rank: int  # 1: the most doubtful
    index: int  # in the review's training split
    image: str  # its source id
    given: int
    suggested: int  # the most probable class other than the given one
    probabilities: np.ndarray  # out-of-fold, one per class
    fold: int  # from 1: the fold whose model predicted it (and did not train on it)
    decision: str | None  # "accepted", "rejected" or None, in the decision set the review was loaded with
    accepted_by: int = 0  # how many of the class accepted the suggestion
    rejected_by: int = 0


@dataclass(frozen=True)
class LabelReview:
    run_id: str
    class_names: tuple[str, ...]
    training_images: int
    doubts: tuple[Doubt, ...]  # the most doubtful first

    @property
    def doubted_share(self) -> float:
        return len(self.doubts) / self.training_images if self.training_images else 0.0

    def accepted(self) -> list[Doubt]:
        return [doubt for doubt in self.doubts if doubt.decision == "accepted"]

    def undecided(self) -> list[Doubt]:
        return [doubt for doubt in self.doubts if doubt.decision is None]

    def confident_suggestions(self, threshold: float) -> dict[str, str]:
        """Decisions accepting every undecided suggestion the models give at least `threshold` probability (the
        automatic review a benchmark or a busy teacher can start from; a reviewer's decision is never undone)."""
        if not 0.0 < threshold <= 1.0:
            raise InvalidInputError(f"the threshold is a probability in (0, 1], got {threshold!r}")
        return {
            doubt.image: "accepted" for doubt in self.undecided() if doubt.probabilities[doubt.suggested] >= threshold
        }

    def label_changes(self, action: str) -> dict[str, str | None]:
        """The accepted suggestions as a training run's label changes: {image: suggested class, or None to leave
        it out}."""
        check_action(action)
        return {
            doubt.image: self.class_names[doubt.suggested] if action == "relabel" else None for doubt in self.accepted()
        }

    def to_csv(self) -> str:
        """Every doubted label with its suggestion, probabilities and decision (blank: undecided)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for doubt in self.doubts:
            writer.writerow(
                [
                    doubt.rank,
                    doubt.image,
                    self.class_names[doubt.given],
                    self.class_names[doubt.suggested],
                    f"{doubt.probabilities[doubt.given]:.4f}",
                    f"{doubt.probabilities[doubt.suggested]:.4f}",
                    doubt.decision or "",
                ]
            )
        return out.getvalue()


def has_review(summary: RunSummary) -> bool:
    """A label review that finished and kept its ranking of the doubted labels."""
    finished = summary.is_label_review and summary.state is RunState.FINISHED
    return finished and summary.run.array_path(REVIEW_ARRAYS).is_file()


def _people(saved: dict) -> dict[str, dict]:
    """{person's id: {"name", "decisions"}} of a decisions file; damaged entries read as undecided, and the one set
    of decisions an older lab kept as the teacher's."""
    if "by" not in saved:
        legacy = {key: value for key, value in saved.items() if value in DECISIONS}
        return {MACHINE_TEACHER.id: {"name": MACHINE_TEACHER.name, "decisions": legacy}} if legacy else {}
    people = saved["by"] if isinstance(saved["by"], dict) else {}
    result = {}
    for person, entry in people.items():
        if isinstance(entry, dict) and isinstance(entry.get("decisions"), dict):
            decisions = {key: value for key, value in entry["decisions"].items() if value in DECISIONS}
            result[person] = {"name": printable(str(entry.get("name", person))), "decisions": decisions}
    return result


def _everyones_decisions(run: Run) -> dict[str, dict]:
    """Every reviewer's decisions: {person's id: {"name": ..., "decisions": {source id: decision}}}."""
    return _people(run.json_file(DECISIONS_FILE))


def class_decisions(run: Run, user: User) -> dict[str, dict]:
    """Every reviewer's decisions, for a person who may see them (NotAllowedError otherwise)."""
    require(user, Action.SEE_REVIEWERS)
    return _everyones_decisions(run)


def _owner_of_set(decision_set: str) -> str | object:
    """Whose a decision set is: a reviewer's id; the class's majority is nobody's own."""
    return NOBODY if decision_set == CLASS_MAJORITY else decision_set


def review_decisions(run: Run, user: User, decision_set: str | None = None) -> dict[str, str]:
    """{source id: "accepted" or "rejected"}: `user`'s decisions, or those of another `decision_set` (a reviewer's
    id, or CLASS_MAJORITY: what more reviewers accepted than rejected) if `user` may train on them."""
    return _decisions_in(_everyones_decisions(run), user, decision_set)


def _decisions_in(people: dict[str, dict], user: User, decision_set: str | None) -> dict[str, str]:
    """review_decisions, of the decisions already read (`people`)."""
    if decision_set not in (None, user.id):
        named = "the class's majority" if decision_set == CLASS_MAJORITY else people.get(decision_set, {}).get("name")
        shown = named or "a reviewer"
        require(user, Action.TRAIN_ON_DECISIONS, _owner_of_set(decision_set), shown, f"{shown}'s decisions")
    if decision_set == CLASS_MAJORITY:
        tally: dict[str, int] = {}
        for entry in people.values():
            for image, decision in entry["decisions"].items():
                tally[image] = tally.get(image, 0) + (1 if decision == "accepted" else -1)
        return {image: "accepted" if score > 0 else "rejected" for image, score in tally.items() if score}
    return people.get(decision_set or user.id, {}).get("decisions", {})


def trainable_decision_sets(run: Run, user: User) -> dict[str, str]:
    """{decision set: its name} of a review that `user` may train on and that accept a suggestion (the others change
    nothing): their own decisions; for whoever may see each reviewer's (a teacher), also the class's majority and
    each reviewer's. The decisions file is read once."""
    people = _everyones_decisions(run)
    sets = {user.id: "your decisions"}
    if may(user, Action.SEE_REVIEWERS):
        sets[CLASS_MAJORITY] = "the class's majority"
        sets.update({person: f"{entry['name']}'s decisions" for person, entry in people.items() if person != user.id})
    return {
        key: name
        for key, name in sets.items()
        if (key == user.id or may(user, Action.TRAIN_ON_DECISIONS, _owner_of_set(key)))
        and "accepted" in _decisions_in(people, user, key).values()
    }


def record_review_decisions(run: Run, decisions: dict[str, str | None], user: User) -> dict[str, str]:
    """Merge `user`'s decisions ({source id: "accepted", "rejected", or None to undecide}) into theirs, kept apart
    from everyone else's (two reviewers' clicks at once both count); returns all of `user`'s decisions."""
    require(user, Action.DECIDE_LABELS)
    bad = sorted({value for value in decisions.values() if value is not None and value not in DECISIONS})
    if bad:
        raise InvalidInputError(f"a review decision is one of {DECISIONS} (or none), not {bad}")

    def merge(saved: dict) -> dict:
        people = _people(saved)
        mine = {**people.get(user.id, {}).get("decisions", {}), **decisions}
        people[user.id] = {"name": user.name, "decisions": {k: v for k, v in mine.items() if v is not None}}
        return {"by": people}

    return run.update_json_file(DECISIONS_FILE, merge)["by"][user.id]["decisions"]


def check_action(action: str) -> None:
    if action not in ACTIONS:
        raise InvalidInputError(f"what to do with accepted suggestions is one of {list(ACTIONS)}, not {action!r}")


def load_review(summary: RunSummary, user: User, decision_set: str | None = None) -> LabelReview:
    """The review a finished label review run made, with `user`'s decisions (or another decision set's, see
    `review_decisions`) and the class's tally; ReviewError saying why when the run has none."""
    if not summary.is_label_review:
        raise ReviewError(f"run {summary.id} trained a model; it is not a label review")
    if summary.state is not RunState.FINISHED:
        raise ReviewError(f"label review {summary.id} has no results: it is {summary.state.value} ({summary.message})")
    saved = summary.run.arrays(REVIEW_ARRAYS)
    if saved is None:
        raise ReviewError(f"label review {summary.id} finished but its results cannot be read")
    try:
        people = _everyones_decisions(summary.run)
        return _review_from(summary, saved, _decisions_in(people, user, decision_set), people)
    except (KeyError, IndexError, ValueError) as error:
        raise ReviewError(f"label review {summary.id}'s results are damaged: {error}") from None


def _review_from(
    summary: RunSummary, saved: dict[str, np.ndarray], decisions: dict[str, str], people: dict[str, dict]
) -> LabelReview:
    probabilities, labels = saved["probabilities"], saved["labels"]
    source_ids, folds, doubted = saved["source_ids"].astype(str), saved["folds"], saved["doubted"]
    class_names = summary.class_names
    if probabilities.shape != (len(labels), len(class_names)) or len(source_ids) != len(labels):
        raise ValueError("its arrays do not match its classes and images")
    doubts = []
    for rank, index in enumerate(doubted.tolist(), start=1):
        row, given = probabilities[index], int(labels[index])
        others = np.where(np.arange(len(row)) == given, -1.0, row)
        image = str(source_ids[index])
        votes = [entry["decisions"].get(image) for entry in people.values()]
        doubts.append(
            Doubt(
                rank,
                index,
                image,
                given,
                int(others.argmax()),
                row,
                int(folds[index]) + 1,
                decisions.get(image),
                votes.count("accepted"),
                votes.count("rejected"),
            )
        )
    return LabelReview(summary.id, class_names, len(labels), tuple(doubts))


def label_changes_from_csv(data: bytes, class_names: tuple[str, ...] | None, action: str) -> dict[str, str | None]:
    """The label changes a reviewed-labels CSV (as `LabelReview.to_csv` writes it, edited or not) asks for: its
    accepted rows, relabelled to their suggested label or left out. `class_names`: the dataset's, to check the
    suggestions against (None: the training run checks them). ReviewError names the first problem."""
    check_action(action)
    if len(data) > MAX_CSV_BYTES:
        raise ReviewError(f"the reviewed-labels file is over {MAX_CSV_BYTES // 1_000_000} MB: not a review export")
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ReviewError(f"the reviewed-labels file is not a CSV text file: {error}") from None
    needed = {"image", "suggested_label", "decision"}
    if not rows or not needed <= set(rows[0]):
        raise ReviewError(f"a reviewed-labels CSV needs a header with the columns {sorted(needed)} and rows under it")
    changes: dict[str, str | None] = {}
    for line, row in enumerate(rows, start=2):
        decision = (row["decision"] or "").strip()
        if decision not in ("", "accepted", "rejected"):
            raise ReviewError(f"line {line}: decision is 'accepted', 'rejected' or blank, not {decision!r}")
        if decision != "accepted":
            continue
        suggested = (row["suggested_label"] or "").strip()
        if not suggested or (class_names is not None and suggested not in class_names):
            known = f" ({', '.join(class_names)})" if class_names is not None else ""
            raise ReviewError(f"line {line}: {suggested!r} is not a class of this dataset{known}")
        changes[(row["image"] or "").strip()] = suggested if action == "relabel" else None
    if not changes:
        raise ReviewError("the reviewed-labels file accepts no suggestion: nothing would change")
    return changes
