"""Classification metrics as plain functions on label arrays.

On imbalanced data (gz1-3class is 71% smooth) plain accuracy flatters a model that always answers the majority
class; balanced accuracy, the mean of the per-class recalls, does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from galaxy_core.errors import InvalidInputError

# Said wherever a test accuracy is shown, by the pages and the CLI (docs/benchmarks.md, "What the labels allow").
LABEL_NOISE_NOTE = (
    "Scores are against the dataset's labels. Galaxy Zoo's come from volunteers' votes: on gz1-3class about 9 "
    'points of balanced accuracy are galaxies every model gets "wrong" whose label is itself doubtful, so no '
    "model scores much above 0.91 there."
)


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


def _check(y_true, y_pred, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D and equally long, got {y_true.shape}, {y_pred.shape}")
    for name, values in (("labels", y_true), ("predictions", y_pred)):
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must be class indices 0-{num_classes - 1}, got {values.min()}-{values.max()}")
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    y_true, y_pred = _check(y_true, y_pred, num_classes)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_metrics(matrix: np.ndarray) -> list[ClassMetrics]:
    """Precision, recall, F1 and support per class from a confusion matrix; 0 where undefined."""
    matrix = np.asarray(matrix, dtype=np.float64)
    correct = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    recall = np.divide(correct, actual, out=np.zeros_like(correct), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(correct), where=total > 0)
    return [
        ClassMetrics(float(p), float(r), float(f), int(s))
        for p, r, f, s in zip(precision, recall, f1, actual, strict=True)
    ]


def accuracy(matrix: np.ndarray) -> float:
    matrix = np.asarray(matrix)
    return float(np.trace(matrix) / matrix.sum()) if matrix.sum() else 0.0


def balanced_accuracy(matrix: np.ndarray) -> float:
    """Mean recall over the classes that occur (classes without examples are left out, as scikit-learn does)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    actual = matrix.sum(axis=1)
    present = actual > 0
    return float(np.mean(np.diag(matrix)[present] / actual[present])) if present.any() else 0.0


def macro_f1(matrix: np.ndarray) -> float:
    return float(np.mean([m.f1 for m in per_class_metrics(matrix)]))


def summarize(y_true, y_pred, class_names: list[str]) -> dict:
    """Every headline figure for one set of predictions, as plain JSON-ready data."""
    matrix = confusion_matrix(y_true, y_pred, len(class_names))
    return {
        "accuracy": accuracy(matrix),
        "balanced_accuracy": balanced_accuracy(matrix),
        "macro_f1": macro_f1(matrix),
        "per_class": {
            name: {"precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support}
            for name, m in zip(class_names, per_class_metrics(matrix), strict=True)
        },
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
    }


def confident_mistakes(labels, probabilities) -> np.ndarray:
    """Indices of the wrongly predicted examples, the most confident mistakes first."""
    return shared_mistakes(labels, [probabilities])


def cell_members(labels, probabilities, true_class: int, predicted_class: int) -> np.ndarray:
    """Indices of one confusion-matrix cell (true x predicted), the most confident predictions first."""
    probabilities = np.asarray(probabilities)
    members = np.flatnonzero((np.asarray(labels) == true_class) & (probabilities.argmax(axis=1) == predicted_class))
    return members[np.argsort(-probabilities[members, predicted_class], kind="stable")]


def shared_mistakes(labels, probability_sets) -> np.ndarray:
    """Indices of the examples every model gets wrong, the most confident (on average over the models) first.

    On crowd-labelled data these are often doubtful labels rather than model failures: worth looking at before
    chasing the last points of accuracy.
    """
    labels = np.asarray(labels)
    probability_sets = [np.asarray(probabilities) for probabilities in probability_sets]
    if not probability_sets or any(p.shape != (len(labels), p.shape[1]) for p in probability_sets):
        raise ValueError("shared_mistakes needs one (examples, classes) probability array per model, for all labels")
    wrong = np.all([p.argmax(axis=1) != labels for p in probability_sets], axis=0)
    indices = np.flatnonzero(wrong)
    confidence = np.mean([p[indices].max(axis=1) for p in probability_sets], axis=0)
    return indices[np.argsort(-confidence, kind="stable")]


def label_issues(labels, probabilities) -> np.ndarray:
    """Indices of the examples whose given label the data itself doubts, the most doubtful first: confident
    learning (Northcutt et al. 2021, through `cleanlab.filter.find_label_issues`) on out-of-sample predicted
    probabilities, i.e. each example's from a model that did not train on it (out-of-fold for a training split).

    An example is flagged when the model's confident answers say its class is probably another, counted per pair of
    classes so that a class the model often confuses does not flag all its members; the flagged are ranked by the
    probability the model gives their given label, lowest first.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) != len(labels) or len(labels) == 0:
        raise InvalidInputError(
            f"label_issues needs one row of class probabilities per label, got {len(labels)} labels and "
            f"probabilities of shape {probabilities.shape}"
        )
    num_classes = probabilities.shape[1]
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= num_classes:
        raise InvalidInputError(f"labels must be whole numbers from 0 to {num_classes - 1}")
    if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3) or (probabilities < 0).any():
        raise InvalidInputError("each row of probabilities must be non-negative and sum to 1")
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
        raise InvalidInputError(f"every class needs examples to judge its labels; none of class(es) {missing}")
    from cleanlab.filter import find_label_issues  # deferred: it imports scikit-learn

    return np.asarray(
        find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence"), dtype=np.int64
    )


def per_class_share(labels, indices, num_classes: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(count of `indices` per true class, examples per class, the balanced accuracy they cost): the mean over the
    classes present of each class's share of examples in `indices`."""
    labels = np.asarray(labels)
    counts = np.bincount(labels[np.asarray(indices, dtype=int)], minlength=num_classes)
    supports = np.bincount(labels, minlength=num_classes)
    present = supports > 0
    return counts, supports, float(np.mean(counts[present] / supports[present]))


def answers_changed(labels, before, after) -> tuple[int, int]:
    """(fixed, broken): how many examples the `after` predictions get right that `before` got wrong, and the
    reverse (e.g. before and after test-time augmentation)."""
    labels, before, after = np.asarray(labels), np.asarray(before), np.asarray(after)
    fixed = int(np.sum((before != labels) & (after == labels)))
    broken = int(np.sum((before == labels) & (after != labels)))
    return fixed, broken


@dataclass(frozen=True)
class McNemarResult:
    only_first_right: int  # images the first model gets right and the second wrong
    only_second_right: int
    p_value: float
    both_right: int = 0
    both_wrong: int = 0

    def table(self) -> list[list[int]]:
        """The 2x2 table of paired answers: rows first model right / wrong, columns second model right / wrong."""
        return [[self.both_right, self.only_first_right], [self.only_second_right, self.both_wrong]]

    def in_words(self, first: str = "the first model", second: str = "the second model") -> str:
        """A plain reading of the test for a class."""
        b, c, p = self.only_first_right, self.only_second_right, self.p_value
        if b + c == 0:
            return "The two models are right and wrong on exactly the same images: nothing tells them apart."
        better = first if b > c else second
        chance = (
            f"If both models were equally accurate, a split at least this uneven ({b} against {c}) would still "
            f"happen by chance {p:.1%} of the time (p = {p:.3g})."
        )
        if p < 0.01:
            return f"{chance} That is very unlikely: {better} is more accurate on images like these."
        if p < 0.05:
            return f"{chance} That is unlikely (p < 0.05): {better} is probably more accurate."
        return f"{chance} So the test set gives no clear evidence that one is more accurate than the other."


def mcnemar(correct_first, correct_second) -> McNemarResult:
    """McNemar's exact test on paired predictions: do two models' error rates on the same images differ?

    Only the images where exactly one model is right count; under "equally accurate" each of those is a fair
    coin flip, so the two-sided p-value is a binomial tail, computed exactly with whole numbers.
    """
    first, second = np.asarray(correct_first, dtype=bool), np.asarray(correct_second, dtype=bool)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"both models must be judged on the same images, got {first.shape} and {second.shape}")
    b, c = int(np.sum(first & ~second)), int(np.sum(~first & second))
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    p_value = 1.0 if n == 0 else min(1.0, float(Fraction(2 * tail, 2**n)))
    return McNemarResult(b, c, p_value, int(np.sum(first & second)), int(np.sum(~first & ~second)))


BOOTSTRAP_RESAMPLES = 2000  # test splits drawn for an interval (the pages say how many)


def balanced_accuracy_interval(
    labels, predicted, baseline=None, *, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """A bootstrap interval for the balanced accuracy of `predicted` (class indices), or, with `baseline` (another
    model's predictions for the same images), for the difference predicted minus baseline.

    The images are resampled within each class (the split's class counts are fixed), the same draws for both models,
    so the interval for a difference is paired: it says how far a test split this size lets two models' figures move
    apart by the luck of which galaxies it holds. An interval around 0 means the split cannot tell them apart.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if (
        labels.ndim != 1
        or predicted.shape != labels.shape
        or (baseline is not None and np.shape(baseline) != labels.shape)
    ):
        raise ValueError("labels and each model's predictions must be 1-D and equally long")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError(f"level must be in (0, 1) and resamples >= 1, got {level} and {resamples}")
    correct = predicted == labels
    if baseline is not None:
        correct = correct.astype(np.int8) - (np.asarray(baseline) == labels)  # each image's part in the difference
    rng = np.random.default_rng(seed)
    recalls = [
        correct[rng.choice(members, size=(resamples, len(members)))].mean(axis=1)
        for members in (np.flatnonzero(labels == value) for value in np.unique(labels))
    ]
    figures = np.mean(recalls, axis=0)
    tail = (1 - level) / 2
    return float(np.quantile(figures, tail)), float(np.quantile(figures, 1 - tail))


def difference_in_words(low: float, high: float, first: str = "the first model", second: str = "the second") -> str:
    """A plain reading, for a class, of an interval for a difference in balanced accuracy (first minus second)."""
    interval = f"The 95% interval of the difference is {low:+.3f} to {high:+.3f}"
    if low > 0 or high < 0:
        better = first if low > 0 else second
        return f"{interval}: it leaves out 0, so {better} is probably better on galaxies like these."
    return (
        f"{interval}: it holds 0, so this test split cannot tell which is better; another draw of test galaxies "
        "could put either ahead."
    )
