import numpy as np
import pytest

from galaxy_core.evaluation import (
    accuracy,
    answers_changed,
    balanced_accuracy,
    balanced_accuracy_interval,
    cell_members,
    confident_mistakes,
    confusion_matrix,
    label_issues,
    macro_f1,
    mcnemar,
    per_class_metrics,
    per_class_share,
    shared_mistakes,
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


def test_confident_mistakes_and_cell_members_are_sorted_by_confidence():
    labels = np.array([0, 0, 1, 1, 2])
    probabilities = np.array(
        [
            [0.9, 0.1, 0.0],  # right
            [0.2, 0.7, 0.1],  # 0 -> 1, 0.7
            [0.05, 0.05, 0.9],  # 1 -> 2, 0.9
            [0.1, 0.3, 0.6],  # 1 -> 2, 0.6
            [0.0, 0.0, 1.0],  # right
        ]
    )
    assert confident_mistakes(labels, probabilities).tolist() == [2, 1, 3]
    assert cell_members(labels, probabilities, 1, 2).tolist() == [2, 3]
    assert cell_members(labels, probabilities, 2, 2).tolist() == [4]
    assert cell_members(labels, probabilities, 2, 0).tolist() == []


def test_shared_mistakes_are_the_ones_every_model_makes_most_confident_first():
    labels = np.array([0, 1, 2, 0])
    first = np.array([[0.2, 0.8, 0.0], [0.1, 0.9, 0.0], [0.6, 0.4, 0.0], [0.3, 0.0, 0.7]])
    second = np.array([[0.4, 0.6, 0.0], [0.9, 0.1, 0.0], [0.0, 0.1, 0.9], [0.0, 0.1, 0.9]])
    # 0: both wrong (mean confidence 0.7); 1: only the second wrong; 2: only the first; 3: both wrong (0.8).
    assert shared_mistakes(labels, [first, second]).tolist() == [3, 0]
    assert shared_mistakes(labels, [first]).tolist() == [0, 3, 2]  # one model: its mistakes, 0.8, 0.7, 0.6
    with pytest.raises(ValueError, match="probability array per model"):
        shared_mistakes(labels, [first, second[:2]])


def test_per_class_share_and_its_balanced_accuracy_cost():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])  # class 3 has no examples and is left out of the cost
    counts, supports, cost = per_class_share(labels, [0, 4, 5], 4)
    assert counts.tolist() == [1, 2, 0, 0] and supports.tolist() == [4, 2, 1, 0]
    assert cost == pytest.approx((1 / 4 + 2 / 2 + 0) / 3)


@pytest.mark.parametrize(
    ("only_first", "only_second", "both", "p_value"),
    [
        (1, 5, 10, 14 / 64),  # n = 6: 2 x (C(6,0) + C(6,1)) / 2^6
        (0, 4, 3, 2 / 16),  # n = 4: 2 x C(4,0) / 2^4
        (3, 3, 0, 1.0),  # a tie: 2 x (1 + 6 + 15 + 20) / 64 > 1, capped
        (10, 0, 5, 2 / 1024),
        (0, 0, 7, 1.0),
    ],
)
def test_mcnemar_exact_p_values_by_hand(only_first, only_second, both, p_value):
    first = [True] * only_first + [False] * only_second + [True] * both + [False] * 2
    second = [False] * only_first + [True] * only_second + [True] * both + [False] * 2
    result = mcnemar(first, second)
    assert (result.only_first_right, result.only_second_right) == (only_first, only_second)
    assert result.p_value == pytest.approx(p_value)


def test_mcnemar_reads_out_in_plain_words():
    assert "very unlikely: A is more accurate" in mcnemar([True] * 12, [False] * 12).in_words("A", "B")
    assert "no clear evidence" in mcnemar([True, False], [False, True]).in_words("A", "B")
    assert "exactly the same images" in mcnemar([True, False], [True, False]).in_words()
    with pytest.raises(ValueError, match="same images"):
        mcnemar([True], [True, False])


def test_mcnemar_table_holds_all_four_kinds_of_paired_answers():
    first = [True, True, True, False, False, True]
    second = [True, False, False, True, False, True]
    assert mcnemar(first, second).table() == [[2, 2], [1, 1]]


def test_answers_changed_counts_fixed_and_broken_examples():
    labels = np.array([0, 1, 2, 0, 1])
    before = np.array([0, 0, 2, 1, 1])  # wrong on 1 and 3
    after = np.array([0, 1, 1, 0, 1])  # fixes 1 and 3, breaks 2
    assert answers_changed(labels, before, after) == (2, 1)
    assert answers_changed(labels, before, before) == (0, 0)


def test_label_issues_finds_most_flipped_labels_and_few_others():
    rng = np.random.default_rng(0)
    true = rng.choice(3, size=900, p=[0.6, 0.25, 0.15])  # imbalanced, like gz1-3class
    # A decent out-of-sample model: most of its probability on the true class, errors spread.
    logits = rng.normal(0, 1, (900, 3)) + 3.0 * np.eye(3)[true]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    flipped = rng.choice(900, size=45, replace=False)
    given = true.copy()
    given[flipped] = (true[flipped] + rng.integers(1, 3, size=45)) % 3
    found = label_issues(given, probabilities)
    assert len(set(found)) == len(found) and set(found) <= set(range(900))
    hits = len(set(found) & set(flipped))
    assert hits >= 0.8 * len(flipped)  # most flips found
    assert hits >= 0.6 * len(found)  # and most of what is flagged is a flip
    assert len(label_issues(true, probabilities)) <= 5  # clean labels: (almost) nothing flagged
    # Most doubtful first: the given label's probability never falls along the ranking.
    doubt = probabilities[found, given[found]]
    assert (np.diff(doubt) >= -1e-12).all()


@pytest.mark.parametrize(
    ("labels", "probabilities", "message"),
    [
        ([0, 1], [[0.5, 0.5]], "one row of class probabilities per label"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], "labels must be whole numbers from 0 to 1"),
        ([0, 1], [[0.9, 0.3], [0.5, 0.5]], "sum to 1"),
        ([0, 0, 0], [[0.5, 0.5]] * 3, r"none of class\(es\) \[1\]"),
    ],
)
def test_label_issues_refuses_inputs_it_cannot_judge(labels, probabilities, message):
    with pytest.raises(ValueError, match=message):
        label_issues(np.asarray(labels), probabilities)


def test_balanced_accuracy_interval_holds_the_figure_and_narrows_with_more_images():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    predicted = np.where(rng.random(300) < 0.8, labels, (labels + 1) % 3)  # about 80% right in every class
    figure = balanced_accuracy(confusion_matrix(labels, predicted, 3))
    low, high = balanced_accuracy_interval(labels, predicted)
    assert low < figure < high and 0.05 < high - low < 0.2
    # Four times the images (the same answers repeated): about half as wide, around the same figure.
    wider = high - low
    low, high = balanced_accuracy_interval(np.tile(labels, 4), np.tile(predicted, 4))
    assert low < figure < high and 0.35 * wider < high - low < 0.65 * wider


def test_balanced_accuracy_interval_of_a_difference_is_paired():
    labels = np.array([0] * 50 + [1] * 50)
    first = labels.copy()
    assert balanced_accuracy_interval(labels, first) == (1.0, 1.0)
    assert balanced_accuracy_interval(labels, first, first) == (0.0, 0.0)  # the same answers: no difference at all
    second = first.copy()
    second[:10] = 1  # wrong on 10 of class 0's 50: balanced accuracy 0.1 lower
    low, high = balanced_accuracy_interval(labels, first, second)
    assert 0 < low < 0.1 < high <= 0.2
    low, high = balanced_accuracy_interval(labels, second, first)
    assert -0.2 <= low < -0.1 < high < 0
    with pytest.raises(ValueError, match="equally long"):
        balanced_accuracy_interval(labels, first, second[:-1])
