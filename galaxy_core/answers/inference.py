"""Answers from a trained run: its model, its saved test predictions, its view of a test set, and whether runs
can be compared. Pure prediction (no runs) is galaxy_core.answers.prediction; the files are the run store's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from galaxy_core.answers.prediction import align_labels, load_model_file, predict_probabilities
from galaxy_core.data import Dataset, DatasetError, DatasetSpec
from galaxy_core.errors import InvalidInputError
from galaxy_core.evaluation import balanced_accuracy_interval
from galaxy_core.training.records import short_run_id
from galaxy_core.training.store import Run, RunSummary


def load_run_model(run: Run, checkpoint: str = "best"):
    """The run's best checkpoint or final model; ModelLoadError says why when there is none or it is damaged."""
    return load_model_file(run.model_path(checkpoint))


def run_dataset_spec(run: Run, other: DatasetSpec | None = None) -> DatasetSpec:
    """The run's own dataset, or `other` read with the run's preprocessing (size, crop, channels)."""
    own = run.summary().dataset
    return own if other is None else replace(other, preprocess=own.preprocess)


def run_class_names(run: Run) -> list[str]:
    """The classes the run's model answers with, in its output order."""
    names = run.summary().class_names
    if not names:
        raise InvalidInputError(f"run {run.id} never got as far as loading its dataset: it has no classes to evaluate")
    return list(names)


@dataclass(frozen=True)
class SavedPredictions:
    """The test-split predictions a finished run saved (from its best checkpoint)."""

    probabilities: np.ndarray  # (N, classes)
    labels: np.ndarray
    source_ids: np.ndarray


def saved_predictions(run: Run, *, tta: bool = False) -> SavedPredictions | None:
    """The run's saved test predictions, plain or averaged over the 8 views; None when it saved none."""
    saved = run.predictions()
    key = "tta_probabilities" if tta else "probabilities"
    if saved is None or not {key, "labels", "source_ids"} <= saved.keys():
        return None
    return SavedPredictions(saved[key], saved["labels"], saved["source_ids"])


def balanced_accuracy_interval_of(run: Run) -> tuple[float, float] | None:
    """The 95% bootstrap interval of the run's test balanced accuracy, from its saved predictions; None without."""
    saved = saved_predictions(run)
    return None if saved is None else balanced_accuracy_interval(saved.labels, saved.probabilities.argmax(axis=1))


def paired_predictions(runs: list[Run]) -> list[SavedPredictions]:
    """Every run's saved test predictions, on the same test images in the same order (paired, so that they can be
    compared image by image); raises ValueError saying why not."""
    saved = [saved_predictions(run) for run in runs]
    if any(predictions is None for predictions in saved):
        raise InvalidInputError("a run saved no test predictions (no test split, or it did not finish)")
    first = saved[0]
    for other in saved[1:]:
        if not np.array_equal(first.source_ids, other.source_ids) or not np.array_equal(first.labels, other.labels):
            raise InvalidInputError("the runs were tested on different images, so their answers cannot be paired")
    return saved


@dataclass(frozen=True)
class RunAnswers:
    """A run's test images, labels (in the model's class order) and predictions, and its model, loaded only when
    asked for (the figures and galleries do not need it when the run saved its predictions)."""

    load_model: Callable[[], object]
    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    source_ids: np.ndarray
    class_names: list

    @property
    def model(self):
        """The model; raises ModelLoadError when its file is missing or damaged."""
        return self.load_model()

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def caption(self, index: int) -> str:
        """'smooth → spiral 87%': the true class, the answer and its probability."""
        predicted = self.predictions[index]
        return (
            f"{self.class_names[self.labels[index]]} → {self.class_names[predicted]} "
            f"{self.probabilities[index, predicted]:.0%}"
        )


def run_answers(
    run: Run,
    dataset: Dataset,
    *,
    checkpoint: str = "best",
    tta: bool = False,
    load_model: Callable[[], object] | None = None,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
) -> RunAnswers:
    """The model's view of the test split of `dataset` (the run's own, loaded by the caller): the run's saved
    predictions when they are for these images, else `predict(images)` (default: the model here and now).
    `load_model`: how to get the checkpoint's model when it is needed (default: from its file, each time)."""
    load_model = load_model or (lambda: load_run_model(run, checkpoint))
    test = dataset.splits["test"]
    if not len(test):
        raise DatasetError(f"the run's dataset ({dataset.name}) has no test split: there is nothing to evaluate on")
    class_names = run_class_names(run)
    saved = saved_predictions(run, tta=tta) if checkpoint == "best" else None
    if saved is not None and np.array_equal(saved.source_ids, test.source_ids):
        probabilities = saved.probabilities
    else:
        probabilities = (predict or (lambda images: predict_probabilities(load_model(), images, tta=tta)))(test.images)
    labels = align_labels(test.labels, dataset.class_names, class_names)
    return RunAnswers(load_model, test.images, labels, probabilities, test.source_ids, class_names)


def default_comparison(summaries: list[RunSummary]) -> list[RunSummary]:
    """The two most recent of `summaries` (newest first) tested on the same images and classes, so that every
    comparison of them can be made; else the two most recent."""
    for index, newest in enumerate(summaries):
        for other in summaries[index + 1 :]:
            if newest.dataset.same_images(other.dataset) and newest.class_names == other.class_names:
                return [newest, other]
    return summaries[:2]


def labels_curve(summaries: list[RunSummary], like: RunSummary) -> list[dict]:
    """A learning curve over labels, from the runs themselves: each of `summaries` with test results on `like`'s
    images and classes, as {"start": how it started ("from scratch, <model>" or "from run <short id>"),
    "training_images": how many it trained on, "test": its test balanced accuracy, "run": its summary}, by start,
    then by training images."""
    points = [
        {
            "start": f"from run {short_run_id(summary.base_run)}"
            if summary.base_run
            else f"from scratch, {summary.model}",
            "training_images": summary.train_images,
            "test": summary.test_balanced_accuracy,
            "run": summary,
        }
        for summary in summaries
        if summary.has_test_results
        and summary.train_images
        and summary.dataset.same_images(like.dataset)
        and summary.class_names == like.class_names
    ]
    return sorted(points, key=lambda point: (point["start"], point["training_images"]))


class NotComparableError(InvalidInputError):
    """Runs whose figures cannot be set side by side (they answer with different classes)."""


def comparison_warning(summaries: list[RunSummary]) -> str | None:
    """Raises NotComparableError for runs with different classes; for runs on different datasets or
    preprocessing, returns what to keep in mind; None when they are fully alike."""
    class_sets = {summary.class_names for summary in summaries}
    if len(class_sets) > 1:
        listed = "; ".join(", ".join(names) for names in sorted(class_sets))
        raise NotComparableError(f"they answer with different classes ({listed})")
    datasets = {summary.dataset for summary in summaries}
    if len(datasets) > 1:
        return (
            "they were trained on different datasets or preprocessing, so their figures may come from different "
            "test images (the paired test and the galleries check that first)"
        )
    return None
