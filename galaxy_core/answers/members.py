"""What an ensemble's members add: each member's figure, the ensemble's with each one left out, the test images
they split on, and their agreement as a confidence. Read from the answers the ensemble's run kept of each member
(its "members" arrays), so nothing is predicted again; the members' own runs may since have been deleted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galaxy_core.errors import InvalidInputError
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
from galaxy_core.training.records import RunSummary, short_run_id
from galaxy_core.training.store import RunNotFoundError, RunStore

MEMBER_ARRAYS = "members"


@dataclass(frozen=True)
class MembersView:
    names: list[str]  # "run 1204-6bc3" (an ensemble's member) or "fold 2" (a label review's)
    weights: np.ndarray  # (M,), summing to 1
    probabilities: np.ndarray  # (M, N, classes): each member's answers on the test images
    tta_probabilities: np.ndarray  # (M, N, classes): the same, averaged over each image's 8 views
    labels: np.ndarray  # (N,) in the ensemble's class order
    source_ids: np.ndarray

    def _score(self, predicted: np.ndarray) -> float:
        return balanced_accuracy(confusion_matrix(self.labels, predicted, self.probabilities.shape[2]))

    @property
    def combined(self) -> np.ndarray:
        """The ensemble's probabilities: the members' weighted mean."""
        return np.tensordot(self.weights, self.probabilities, axes=1)

    @property
    def votes(self) -> np.ndarray:
        """(M, N): each member's answer for each image."""
        return self.probabilities.argmax(axis=2)

    def member_scores(self) -> list[float]:
        return [self._score(votes) for votes in self.votes]

    def ensemble_score(self) -> float:
        return self._score(self.combined.argmax(axis=1))

    def scores_without_each(self) -> list[float | None]:
        """The ensemble's balanced accuracy with each member left out (the others' weights renormalised); None for
        a member whose fellows all weigh 0, or the one member of an ensemble of one."""
        scores = []
        for left_out in range(len(self.names)):
            weights = np.delete(self.weights, left_out)
            if weights.sum() <= 0:
                scores.append(None)
                continue
            others = np.tensordot(weights / weights.sum(), np.delete(self.probabilities, left_out, axis=0), axes=1)
            scores.append(self._score(others.argmax(axis=1)))
        return scores

    def agreement(self) -> np.ndarray:
        """(N,): the share of the members' weight that answers as the ensemble does: 1 when all agree."""
        answer = self.combined.argmax(axis=1)
        return np.tensordot(self.weights, (self.votes == answer).astype(np.float64), axes=1)

    def split_images(self) -> np.ndarray:
        """Indices of the test images the members do not all answer alike, least agreed first."""
        agreement = self.agreement()
        split = np.flatnonzero(np.any(self.votes != self.votes[:1], axis=0))
        return split[np.argsort(agreement[split], kind="stable")]

    def score_by_agreement(self) -> dict[str, tuple[int, float | None]]:
        """{"all agree": (images, the ensemble's accuracy on them), "split": (...)}: how far agreement is a
        confidence."""
        correct = self.combined.argmax(axis=1) == self.labels
        split = np.zeros(len(self.labels), dtype=bool)
        split[self.split_images()] = True
        return {
            name: (int(chosen.sum()), float(correct[chosen].mean()) if chosen.any() else None)
            for name, chosen in (("all agree", ~split), ("split", split))
        }


def members_view(summary: RunSummary) -> MembersView | None:
    """The members of an ensemble run, or a label review's fold models, and their test answers; None when the run
    kept none (not an ensemble, no test split, or it did not finish)."""
    saved = summary.run.arrays(MEMBER_ARRAYS)
    predictions = summary.run.predictions()
    needed = {"probabilities", "tta_probabilities", "weights", "source_ids"}
    if saved is None or predictions is None or not needed <= saved.keys():
        return None
    probabilities = saved["probabilities"]
    named = summary.traits.member_names
    if named is not None:
        names = named(summary.config, len(probabilities))
    else:
        names = [f"run {short_run_id(run_id)}" for run_id in summary.options.get("members") or ()]
    if len(names) != len(probabilities) or not np.array_equal(saved["source_ids"], predictions["source_ids"]):
        raise InvalidInputError(f"run {summary.name}'s members file does not match its predictions: it is damaged")
    return MembersView(
        names, saved["weights"], probabilities, saved["tta_probabilities"], predictions["labels"], saved["source_ids"]
    )


def member_whereabouts(store: RunStore, summary: RunSummary) -> list[str]:
    """For each member run of an ensemble: "" while it is in the runs folder, "in the trash" or "deleted" (the
    ensemble keeps its own copy of each member's model either way)."""
    trashed = set(store.trashed().run_ids())
    where = []
    for run_id in summary.options.get("members") or ():
        try:
            store.get(run_id)
            where.append("")
        except RunNotFoundError:
            where.append("in the trash" if run_id in trashed else "deleted")
    return where
