"""Classification metrics as plain functions on label arrays.

On imbalanced data (gz1-3class is 71% smooth) plain accuracy flatters a model that always answers the majority
class; balanced accuracy, the mean of the per-class recalls, does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
