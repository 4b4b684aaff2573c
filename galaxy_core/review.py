"""Reviewing a dataset's doubted labels: what a finished label review run found, reviewers' decisions, the
reviewed-labels CSV, and the label changes a training run takes from them.

A reviewer accepts a suggestion (the given label is wrong, the suggested class is right) or rejects it (the given
label stays). Only accepted suggestions change training: relabelled to the suggestion, or left out.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

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
DECISIONS_FILE = "review-decisions.json"  # {source id: decision}, in the review run's folder


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
    decision: str | None  # "accepted", "rejected" or None


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


def review_decisions(run: Run) -> dict[str, str]:
    """{source id: "accepted" or "rejected"} for the doubted labels reviewers have decided; damaged entries (or a
    damaged file, logged) read as undecided."""
    return {key: value for key, value in run.json_file(DECISIONS_FILE).items() if value in DECISIONS}


def record_review_decisions(run: Run, decisions: dict[str, str | None]) -> dict[str, str]:
    """Merge reviewers' decisions ({source id: "accepted", "rejected", or None to undecide}) into the saved ones,
    so that two reviewers' clicks both count; returns all decisions."""
    bad = sorted({value for value in decisions.values() if value is not None and value not in DECISIONS})
    if bad:
        raise InvalidInputError(f"a review decision is one of {DECISIONS} (or none), not {bad}")

    def merge(saved: dict) -> dict:
        merged = {**{key: value for key, value in saved.items() if value in DECISIONS}, **decisions}
        return {key: value for key, value in merged.items() if value is not None}

    return run.update_json_file(DECISIONS_FILE, merge)


def check_action(action: str) -> None:
    if action not in ACTIONS:
        raise InvalidInputError(f"what to do with accepted suggestions is one of {list(ACTIONS)}, not {action!r}")


def load_review(summary: RunSummary) -> LabelReview:
    """The review a finished label review run made, with the decisions recorded so far; ReviewError saying why
    when the run has none."""
    if not summary.is_label_review:
        raise ReviewError(f"run {summary.id} trained a model; it is not a label review")
    if summary.state is not RunState.FINISHED:
        raise ReviewError(f"label review {summary.id} has no results: it is {summary.state.value} ({summary.message})")
    saved = summary.run.arrays(REVIEW_ARRAYS)
    if saved is None:
        raise ReviewError(f"label review {summary.id} finished but its results cannot be read")
    try:
        return _review_from(summary, saved, review_decisions(summary.run))
    except (KeyError, IndexError, ValueError) as error:
        raise ReviewError(f"label review {summary.id}'s results are damaged: {error}") from None


def _review_from(summary: RunSummary, saved: dict[str, np.ndarray], decisions: dict[str, str]) -> LabelReview:
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
        doubts.append(
            Doubt(rank, index, image, given, int(others.argmax()), row, int(folds[index]) + 1, decisions.get(image))
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
