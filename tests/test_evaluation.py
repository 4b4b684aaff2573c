import numpy as np
import pytest

from galaxy_core.evaluation import (
    accuracy,
    balanced_accuracy,
    confusion_matrix,
    macro_f1,
    per_class_metrics,
    summarize,
)

# 10 images, 3 classes. True: 5 of class 0, 3 of class 1, 2 of class 2.
Y_TRUE = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]
Y_PRED = [0, 0, 0, 1, 2, 1, 1, 0, 2, 0]


def test_confusion_matrix_by_hand():
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == [[3, 1, 1], [1, 2, 0], [1, 0, 1]]


def test_metrics_by_hand():
    matrix = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert accuracy(matrix) == pytest.approx(6 / 10)
    assert balanced_accuracy(matrix) == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)
    class0, class1, class2 = per_class_metrics(matrix)
    assert (class0.precision, class0.recall, class0.support) == (pytest.approx(3 / 5), pytest.approx(3 / 5), 5)
    assert class1.precision == pytest.approx(2 / 3) and class1.recall == pytest.approx(2 / 3)
    assert class2.precision == pytest.approx(1 / 2) and class2.f1 == pytest.approx(1 / 2)
    assert macro_f1(matrix) == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)


def test_majority_vote_is_exposed_by_balanced_accuracy():
    y_true = np.array([0] * 71 + [1] * 15 + [2] * 14)
    matrix = confusion_matrix(y_true, np.zeros(100, dtype=int), 3)
    assert accuracy(matrix) == pytest.approx(0.71)
    assert balanced_accuracy(matrix) == pytest.approx(1 / 3)
    assert per_class_metrics(matrix)[1].precision == 0.0  # never predicted: 0, not a division error


def test_absent_classes_are_left_out_of_balanced_accuracy():
    matrix = confusion_matrix([0, 0, 1], [0, 1, 1], 3)
    assert balanced_accuracy(matrix) == pytest.approx((1 / 2 + 1) / 2)


def test_summary_is_json_ready():
    summary = summarize(Y_TRUE, Y_PRED, ["edge", "smooth", "spiral"])
    assert set(summary) == {"accuracy", "balanced_accuracy", "macro_f1", "per_class", "confusion_matrix", "class_names"}
    assert summary["per_class"]["smooth"]["support"] == 3


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1], [0], "equally long"),
        ([0, 3], [0, 1], "labels must be class indices 0-2"),
        ([0, 1], [0, -1], "predictions must be class indices"),
    ],
)
def test_bad_inputs(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(y_true, y_pred, 3)
