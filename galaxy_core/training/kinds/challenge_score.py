"""The "challenge_score" kind: a submitted run's best model answering a challenge's private test set, with no
training (galaxy_core.classroom.challenge). Its run lives in the scoring store, apart from the class's runs, so its
figures and per-image answers are kept where no page lists them; its dataset is the private folder read as the
submitted run reads images, every image of it tested once, as it is (the figure a challenge ranks is the plain one,
and answering the 8 flips and turns took 8 times as long: docs/benchmarks.md, "A class challenge")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from galaxy_core.data import Dataset
from galaxy_core.data.dataset import Split
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.kinds.registry import Workload, register_kind
from galaxy_core.training.lifecycle import Outcome, RunState
from galaxy_core.training.records import KindTraits


@dataclass(frozen=True)
class ScoreOptions:
    """Which challenge and submission the score is for, and the submitted run's best model file (copied into the
    scoring run's folder when it is queued)."""

    challenge: str = ""
    submission: int = 0
    model_file: str = ""


def score_config(private: object, model: str, challenge: str, submission: int, model_file: Path) -> TrainConfig:
    """The config of a scoring run: `private` is the private folder's DatasetSpec, `model` the submitted run's."""
    options = ScoreOptions(challenge, submission, str(model_file))
    return TrainConfig(dataset=private, model=model, kind="challenge_score", options=options)


def submitted_model(store, config: TrainConfig) -> dict[str, Path]:
    path = Path(config.options.model_file)
    if not path.is_file():
        raise InvalidInputError(f"the submitted run's model {path.name} is gone: submit a run that has its model")
    return {"base": path}


def every_image_tested(dataset: Dataset) -> Dataset:
    """The dataset with all its images in its test split."""
    parts = [dataset.splits[name] for name in ("train", "val", "test")]
    joined = Split(*(np.concatenate([getattr(part, f) for part in parts]) for f in Split.__dataclass_fields__))
    empty = joined.take(np.zeros(0, dtype=np.int64))
    return replace(dataset, splits={"train": empty, "val": empty, "test": joined})


def workload(config: TrainConfig, split_sizes: dict[str, int]) -> Workload:
    return Workload(0, 0, sum(split_sizes.values()))


@register_kind(
    "challenge_score",
    title="challenge scoring",
    planned_epochs=lambda config: 0,
    options=ScoreOptions,
    input_models=submitted_model,
    workload=workload,
    traits=KindTraits(ones_own=False, light=lambda options: True),
)
def score_submission(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> Outcome:
    """Test the submitted model on every private image; its figures are the run's test figures, its answers its
    saved predictions (the paired test of two submissions reads them)."""
    from galaxy_core.answers.prediction import load_model_file, predict_in_batches
    from galaxy_core.evaluation import summarize

    model = load_model_file(run.input_model_path("base"))
    outputs = model.output_shape[-1]
    if outputs != dataset.num_classes:
        raise InvalidInputError(f"the submitted model answers {outputs} classes, the private set {dataset.num_classes}")
    run.report_progress(message="scoring on the private test set", class_names=list(dataset.class_names))
    private = every_image_tested(dataset).splits["test"]
    probabilities = predict_in_batches(model, private.images)
    run.save_arrays("predictions", probabilities=probabilities, labels=private.labels, source_ids=private.source_ids)
    summary = summarize(private.labels, probabilities.argmax(axis=1), list(dataset.class_names))
    run.save_evaluation(summary)
    figures = {"test_accuracy": summary["accuracy"], "test_balanced_accuracy": summary["balanced_accuracy"]}
    return Outcome(RunState.FINISHED, "scored on the private test set", figures)
