"""The run-kind table: what a run does with its recipe, registered by name the way models are.

A kind is one module with a function decorated by `register_kind`: it takes the run (a writer: progress, metrics,
files), its config, its dataset and any extra Keras callbacks, trains, and returns the run's `Outcome`; it never
moves the run between states. Its options are a dataclass of the module (`config.options`), checked by its `check`
hook, and its flags in `galaxy-lab` by its `CommandLine`. Adding a kind is that module plus one import line in
`kinds/__init__.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from galaxy_core.answers.prediction import VIEW_COUNT
from galaxy_core.data import DatasetSpec
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.config import DEFAULT_KIND, KIND_OPTIONS, TrainConfig, nested_options
from galaxy_core.training.records import KIND_TRAITS, PLAIN_TRAITS, KindTraits, RunSummary
from galaxy_core.training.store import RunNotFoundError, RunStore

RUN_KINDS: dict[str, RunKind] = {}


@dataclass(frozen=True)
class Workload:
    """The images a run puts through its network: what its expected duration is made of."""

    trained_per_epoch: float
    validated_per_epoch: float
    predicted_at_the_end: float  # its final test evaluation (a label review: its training split, fold by fold)


def training_workload(config, split_sizes: dict[str, int]) -> Workload:
    """A training run's: its training split each epoch (less what it holds out for validation), validation, and
    the test split's VIEW_COUNT views at the end."""
    train, val = split_sizes.get("train", 0), split_sizes.get("val", 0)
    if config.validation == "from_train":
        val = math.ceil(train * config.validation_fraction)
        train -= val
    return Workload(train, val, VIEW_COUNT * split_sizes.get("test", 0))


@dataclass(frozen=True)
class CommandLineRequest:
    """What a kind's part of `galaxy-lab` builds its config from, besides its own flags."""

    store: RunStore
    dataset: Callable[[], DatasetSpec | None] = field(repr=False)  # the dataset the arguments name; None: none named
    recipe: dict = field(default_factory=dict)  # the recipe settings the arguments give (epochs, seed, ...)
    preset_config: Callable[..., TrainConfig] | None = field(default=None, repr=False)  # (**more) -> the recipe's


@dataclass(frozen=True)
class CommandLine:
    """A kind's part of `galaxy-lab`: its flags, which join `galaxy-lab train`'s (`flag` names the one that asks for
    the kind there) or make a command of its own (`command`), and the config they ask for."""

    add_arguments: Callable = field(repr=False)  # (argparse parser) -> None
    config: Callable = field(repr=False)  # (parsed arguments, CommandLineRequest) -> TrainConfig
    asked: Callable = field(repr=False, default=lambda args: True)  # (arguments) -> whether they ask for the kind
    flag: str = ""  # on `train`: the flag that asks for the kind ("--from RUN")
    command: str = ""  # a command of its own ("review-labels"): its name
    help: str = ""  # the command's line in `galaxy-lab --help`, and its description
    description: str = ""
    # Where its input size comes from, said by the dataset arguments' help; None: the command takes no dataset
    dataset_size_note: str | None = None


@dataclass(frozen=True)
class RunKind:
    name: str
    # What the runs table says of the run's model: a format of the config's fields ("{model}"), or a function of
    # the config
    title: str | Callable
    train: Callable = field(repr=False)  # (run, config, dataset, observers) -> Outcome
    planned_epochs: Callable = field(repr=False)  # (config) -> the epochs the run trains if nothing stops it
    check: Callable = field(repr=False, default=lambda config: [])  # (config) -> its problems, in words
    # (run store, config) -> {model it starts from: the file to copy into its folder when it is queued}; raises
    # InvalidInputError when one cannot be used
    input_models: Callable = field(repr=False, default=lambda store, config: {})
    workload: Callable = field(repr=False, default=training_workload)  # (config, split sizes) -> Workload
    command_line: CommandLine | None = None  # its flags in `galaxy-lab`, if any

    def describe(self, config: dict) -> str:
        """The run's model as the runs table names it ("inception_small", "label review: 5 x inception_small")."""
        try:
            options = config.get("options") or {}
            return self.title(config) if callable(self.title) else self.title.format(**config, **options)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError):
            return str(config.get("model"))


def register_kind(
    name: str,
    *,
    title: str | Callable,
    planned_epochs: Callable,
    options: type | None = None,
    traits: KindTraits = PLAIN_TRAITS,
    command_line: CommandLine | None = None,
    **hooks: Callable,
) -> Callable:
    """Register a kind's training function under `name`, with its options dataclass (what a config of this kind
    carries as `options`, None: none), what readers need to know of its runs (`traits`), its flags in `galaxy-lab`
    (`command_line`), and `hooks`: its `check`, `input_models` and `workload`, if any."""

    def decorate(train: Callable) -> Callable:
        if name in RUN_KINDS:
            raise InvalidInputError(f"run kind {name!r} is registered twice")
        RUN_KINDS[name] = RunKind(name, title, train, planned_epochs, command_line=command_line, **hooks)
        KIND_OPTIONS[name] = options
        KIND_TRAITS[name] = traits
        return train

    return decorate


def run_kind(name: str) -> RunKind:
    if name not in RUN_KINDS:
        raise InvalidInputError(f"unknown run kind {name!r}; the kinds are {', '.join(sorted(RUN_KINDS))}")
    return RUN_KINDS[name]


def check_run_config(config) -> None:
    """Refuse a config its kind cannot run (InvalidInputError naming every problem)."""
    problems = run_kind(config.kind).check(config)
    if problems:
        raise InvalidInputError("; ".join(problems))


def describe_run_model(config: dict) -> str:
    """What a run's config trains, as the runs tables name it; a config of an unknown kind names its model."""
    kind = RUN_KINDS.get(config.get("kind", DEFAULT_KIND))
    return kind.describe(nested_options(config)) if kind else str(config.get("model"))


def used_run_summary(store: RunStore, run_id: str, use: str) -> RunSummary:
    """The summary of another run a run is made from (`use`: "start from", "add as a member"); InvalidInputError
    when there is none (a deleted one is in the trash) or it cannot be read."""
    try:
        return store.get(run_id).summary()
    except RunNotFoundError:
        raise InvalidInputError(
            f"there is no run {run_id!r} to {use} (a deleted run must be restored from the trash first)"
        ) from None
    except (OSError, ValueError) as error:
        raise InvalidInputError(f"run {run_id} cannot be read ({error}): choose another run") from None
