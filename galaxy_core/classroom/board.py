"""The class board: each person's best run, side by side, and the class's best.

Per person who trained: their best run by test balanced accuracy (with its 95% interval), its model, parameters and
minutes, and how many runs they trained. Names as galaxy_core.classroom.names lets the viewer see them: a student
sees their own name, "the teacher" for a teacher's row and "classmate 1", "classmate 2"... in the board's order for
the others, unless the teacher shows every name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from galaxy_core.answers.inference import balanced_accuracy_interval_of
from galaxy_core.classroom.names import visible_name
from galaxy_core.classroom.people import User
from galaxy_core.training import RunState, RunSummary
from galaxy_core.training.fair_share import owner_of


@dataclass(frozen=True)
class BoardRow:
    owner_id: str
    name: str  # as the viewer may see it
    best: RunSummary | None  # None: no run of theirs has test results yet
    interval: tuple[float, float] | None
    runs: int  # runs they trained (training, or ended after their training began)
    teachers: bool  # a teacher's row

    @property
    def minutes(self) -> float | None:
        return self.best.training_minutes if self.best else None


def class_board(summaries: list[RunSummary], viewer: User, show_names: bool) -> list[BoardRow]:
    """One row per person who trained, the best first; names as `viewer` may see them."""
    people: dict[str, list[RunSummary]] = {}
    for summary in summaries:
        # Not on it: a label review's folds, and ensembles of anyone's runs (the board has a section for those).
        if _trained(summary) and summary.traits.ones_own:
            people.setdefault(owner_of(summary), []).append(summary)
    rows = []
    for owner, runs in people.items():
        tested = [run for run in runs if run.has_test_results]
        best = max(tested, key=lambda run: run.test_balanced_accuracy, default=None)
        interval = balanced_accuracy_interval_of(best.run) if best else None
        rows.append(BoardRow(owner, runs[0].owner_name, best, interval, len(runs), runs[0].owner_is_teacher))
    rows.sort(key=lambda row: -(row.best.test_balanced_accuracy if row.best else -1.0))
    return [
        replace(
            row,
            name=visible_name(
                row.owner_id, row.name, viewer, show_names, "the teacher" if row.teachers else f"classmate {rank}"
            ),
        )
        for rank, row in enumerate(rows, start=1)
    ]


def _trained(summary: RunSummary) -> bool:
    """Training, or ended after its training began: not one waiting, nor one stopped or failed before it started."""
    return summary.state is RunState.RUNNING or (not summary.state.active and summary.started is not None)


def started_from(summaries: list[RunSummary], base: RunSummary) -> tuple[int, int]:
    """(the tested runs that started from `base`, how many of them score above it on the test split)."""
    tested = [summary for summary in summaries if summary.base_run == base.id and summary.has_test_results]
    above = sum(summary.test_balanced_accuracy > (base.test_balanced_accuracy or 0.0) for summary in tested)
    return len(tested), above


def class_ensemble_members(rows: list[BoardRow]) -> list[RunSummary]:
    """Each person's best run that can answer together with the class's best (the same classes and images), for
    the class ensemble; the class's best first. A person whose best is a seed ensemble of their own is left out (an
    ensemble of ensembles is not built)."""
    tested = [row.best for row in rows if row.best is not None and row.best.has_model and not row.best.is_ensemble]
    if not tested:
        return []
    first = tested[0]

    def fits(summary: RunSummary) -> bool:
        size, first_size = summary.dataset.preprocess, first.dataset.preprocess
        same_images = (size.image_size, size.channels) == (first_size.image_size, first_size.channels)
        return summary.class_names == first.class_names and same_images

    return [summary for summary in tested if fits(summary)]


def class_ensembles(summaries: list[RunSummary]) -> list[RunSummary]:
    """The ensembles with test results, the best first."""
    made = [s for s in summaries if s.is_ensemble and not s.traits.ones_own and s.has_test_results]
    return sorted(made, key=lambda summary: -summary.test_balanced_accuracy)
