"""The "ensemble" kind: chosen runs answering as one (their class probabilities averaged), with no training.

Each member's best model is copied into the ensemble's folder when it is queued (member-1.keras, ...), so the
ensemble stands on its own: a member deleted later leaves it whole (its members view says which is in the trash).
Its run builds one Keras model that averages the members (galaxy_core.models.ensemble), keeps it as its best model
and tests it like any run, keeping each member's answers on the test images too (the members view).

Members answer with the same classes in the same order and take images of the same size and channels; they may
have trained on different datasets of those classes (the ensemble is tested on the first member's).

Weights: equal by default. The members a class makes differ by a point or two, about as much as their validation
figures vary with the seed, so weighting by validation mostly rewards a lucky validation split; "validation"
weights each member by its best validation balanced accuracy, for members that really differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.data import Dataset
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.kinds.registry import CommandLine, register_kind, used_run_summary
from galaxy_core.training.kinds.train import evaluate_test_split
from galaxy_core.training.lifecycle import Outcome, RunState, StoppedBeforeTrainingError
from galaxy_core.training.records import KindTraits, RunSummary
from galaxy_core.training.store import RunStore, member_model_name

WEIGHTINGS = ("equal", "validation")
MAX_MEMBERS = 20


@dataclass(frozen=True)
class EnsembleOptions:
    """The runs whose best models answer as one, how they were weighted ("equal", "validation") and the weights
    that came of it, one per member."""

    members: tuple = ()
    weighting: str = "equal"
    member_weights: tuple = ()

    def __post_init__(self) -> None:
        for name in ("members", "member_weights"):  # lists, as config.json keeps them
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))


def member_weights(members: list[RunSummary], weighting: str) -> list[float]:
    """Each member's weight (normalised by the ensemble's layer): 1 each, or its best validation balanced
    accuracy (InvalidInputError for a member that has none)."""
    if weighting not in WEIGHTINGS:
        raise InvalidInputError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "equal":
        return [1.0] * len(members)
    missing = [member.name for member in members if member.best_val_balanced_accuracy is None]
    if missing:
        raise InvalidInputError(f"no validation figure to weight by for run {', '.join(missing)}: weight them equally")
    return [member.best_val_balanced_accuracy for member in members]


def ensemble_config(members: list[RunSummary], weighting: str = "equal") -> TrainConfig:
    """An ensemble of the finished runs `members`, tested on the first one's dataset."""
    if not members:
        raise InvalidInputError("an ensemble needs at least one member")
    first = members[0]
    weights = tuple(member_weights(members, weighting))
    options = EnsembleOptions(tuple(member.id for member in members), weighting, weights)
    return TrainConfig(dataset=first.dataset, model=first.model, kind="ensemble", options=options)


def config_problems(config: TrainConfig) -> list[str]:
    members, weights = list(config.options.members), list(config.options.member_weights)
    if not all(isinstance(run_id, str) for run_id in members):
        return ["members must be a list of run ids"]
    if not 1 <= len(members) <= MAX_MEMBERS:
        return [f"an ensemble has 1-{MAX_MEMBERS} members, got {len(members)}"]
    problems = [] if len(set(members)) == len(members) else ["a run is a member of the ensemble once"]
    if len(weights) != len(members) or any(not isinstance(w, int | float) or w < 0 for w in weights):
        problems.append("member_weights must be one number >= 0 for each member")
    elif not sum(weights) > 0:
        problems.append("at least one member needs a weight above 0")
    return problems


def member_summary(store: RunStore, run_id: str) -> RunSummary:
    """The summary of a run that may be a member; InvalidInputError saying why it cannot."""
    summary = used_run_summary(store, run_id, "add as a member")
    if summary.state.active:
        raise InvalidInputError(f"run {summary.name} is still {summary.state.value}: add it once it has ended")
    if summary.is_ensemble:
        raise InvalidInputError(
            f"run {summary.name} is an ensemble already: choose single networks' runs (an ensemble of ensembles is "
            "not built)"
        )
    if summary.is_label_review:
        raise InvalidInputError(
            f"run {summary.name} is a label review, whose fold models answer as one already: choose training runs"
        )
    return summary


def member_model_files(store: RunStore, config: TrainConfig) -> dict[str, Path]:
    """{"member-1": the first member's best model file, ...} for the members that can answer together
    (InvalidInputError saying which cannot and why)."""
    members = [member_summary(store, run_id) for run_id in config.options.members]
    first = members[0]
    files = {}
    for number, member in enumerate(members, start=1):
        if member.class_names != first.class_names:
            raise InvalidInputError(
                f"run {member.name} answers with {', '.join(member.class_names) or 'no classes'}, run {first.name} "
                f"with {', '.join(first.class_names)}: members answer with the same classes, in the same order"
            )
        size, first_size = member.dataset.preprocess, first.dataset.preprocess
        if (size.image_size, size.channels) != (first_size.image_size, first_size.channels):
            raise InvalidInputError(
                f"run {member.name} takes {size.image_size} px images with {size.channels} channel(s), run "
                f"{first.name} {first_size.image_size} px with {first_size.channels}: members take the same images"
            )
        try:
            files[member_model_name(number)] = member.run.model_path("best")
        except ModelLoadError as error:
            raise InvalidInputError(f"run {member.name} cannot be a member: {error}") from None
    return files


def planned_epochs(config: TrainConfig) -> int:
    """None: an ensemble trains nothing."""
    return 0


def describe(config: dict) -> str:
    return f"ensemble of {len(config['options']['members'])} runs"


def add_arguments(parser) -> None:
    """`galaxy-lab ensemble RUN RUN...`'s own arguments."""
    parser.add_argument("members", nargs="+", metavar="RUN", help="the runs that answer together")
    parser.add_argument(
        "--weighting",
        choices=WEIGHTINGS,
        default="equal",
        help="equal (the default) or each run weighted by its best validation balanced accuracy",
    )


def config_from_arguments(args, request) -> TrainConfig:
    members = [member_summary(request.store, run_id) for run_id in args.members]
    return ensemble_config(members, weighting=args.weighting)


COMMAND_LINE = CommandLine(
    add_arguments,
    config_from_arguments,
    command="ensemble",
    help="queue an ensemble of finished runs (their answers averaged) and follow it here",
    description="Makes one model of the runs' best models, whose answer is the mean of theirs, and tests it on the "
    "first run's test split; it trains nothing, so it takes seconds. The runs answer with the same classes and "
    "take the same images. Evaluate, predict and export take its id like any run's. The run id is printed last.",
)


@register_kind(
    "ensemble",
    title=describe,
    planned_epochs=planned_epochs,
    options=EnsembleOptions,
    check=config_problems,
    input_models=member_model_files,
    # Chosen runs, anyone's: not one person's network; it trains nothing (a run of seconds)
    traits=KindTraits(answers_as_one=True, ones_own=False, light=lambda options: True),
    command_line=COMMAND_LINE,
)
def make_ensemble(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> Outcome:
    """Load the members, keep the model that averages them, test it and keep each member's answers."""
    from galaxy_core.answers.prediction import load_model_file

    run.report_progress(
        message=f"loading its {len(config.options.members)} members",
        class_names=list(dataset.class_names),
        dataset_sizes={name: len(split) for name, split in dataset.splits.items()},
    )
    members = []
    for number in range(1, len(config.options.members) + 1):
        if run.stop_requested():
            raise StoppedBeforeTrainingError("stopped while it loaded its members: no ensemble")
        members.append(load_model_file(run.input_model_path(member_model_name(number))))
    figures = answer_as_one(run, members, list(config.options.member_weights), dataset)
    evaluated = "evaluated" if figures else "no test split to evaluate"
    message = f"finished: {len(members)} members answering as one, {evaluated}"
    run.log(message)
    return Outcome(RunState.FINISHED, message, figures)


def answer_as_one(run, members: list, weights: list[float], dataset: Dataset) -> dict:
    """Keep the model averaging `members` as the run's best model, and its test answers (and each member's);
    returns the run's test figures ({} without a test split). A label review's fold models end this way too."""
    from galaxy_core.answers.prediction import predict_views
    from galaxy_core.models.ensemble import average_models, normalised_weights

    ensemble = average_models(members, weights)
    run.report_progress(parameters=ensemble.count_params())
    run.save_model(ensemble, "best")
    test = dataset.splits["test"]
    if not len(test):
        return {}
    run.report_progress(message="testing its members")
    member_views = np.stack([predict_views(member, test.images) for member in members])  # (M, 8, N, classes)
    views = np.tensordot(normalised_weights(weights), member_views, axes=1).astype(np.float32)
    run.save_arrays(
        "members",
        probabilities=member_views[:, 0],
        tta_probabilities=member_views.mean(axis=1),
        weights=normalised_weights(weights),
        source_ids=test.source_ids,
    )
    return evaluate_test_split(None, run, dataset, views)
