"""The "seed_ensemble" kind: k networks of one recipe trained one after another in one run (seeds seed, seed + 1,
...), which then answer as one: one request in the queue, one run in the tables, an ensemble as its model.

Each network trains as a "train" run would (validated every epoch, its own best checkpoint and early stopping) on
the same images, differing only in its seed: the initial weights, the order of the batches and the augmentation.
Their epochs are counted on from one network to the next, so the run's curves show each network's in turn. After
each network the run's best model is the ensemble of the networks trained so far, so a stop (or a crash) keeps
what was learned; the network a stop cuts short joins if it finished an epoch. The weights are equal: the networks
differ by their seed alone (galaxy_core.training.kinds.ensemble says why equal is the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from galaxy_core.data import Dataset
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.kinds import train
from galaxy_core.training.kinds.ensemble import answer_as_one
from galaxy_core.training.kinds.registry import CommandLine, Workload, register_kind, training_workload
from galaxy_core.training.lifecycle import Outcome, RunState, StoppedBeforeTrainingError
from galaxy_core.training.recipe import with_validation_source
from galaxy_core.training.records import KindTraits

MIN_NETWORKS, MAX_NETWORKS = 2, 10


@dataclass(frozen=True)
class NetworksOptions:
    ensemble_size: int = 5  # networks of the recipe, trained one after another (seeds seed, seed + 1, ...)


def size_problems(config: TrainConfig) -> list[str]:
    size = config.options.ensemble_size
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_NETWORKS <= size <= MAX_NETWORKS:
        return [f"ensemble_size must be a whole number from {MIN_NETWORKS} to {MAX_NETWORKS}, got {size!r}"]
    return []


def planned_epochs(config: TrainConfig) -> int:
    """A training run's epochs, once per network."""
    return config.options.ensemble_size * train.planned_epochs(config)


def network_seeds(config: TrainConfig) -> list[int]:
    return [config.seed + number for number in range(config.options.ensemble_size)]


def workload(config: TrainConfig, split_sizes: dict[str, int]) -> Workload:
    """A training run's epochs, and a final test evaluation by each network."""
    single = training_workload(config, split_sizes)
    return replace(single, predicted_at_the_end=config.options.ensemble_size * single.predicted_at_the_end)


def seed_names(config: dict, count: int) -> list[str]:
    """Its networks, by the seed each trained from (a stopped run kept its first networks)."""
    first = config.get("seed", 0)
    return [f"seed {first + number}" for number in range(count)]


def networks_config(networks: int) -> dict:
    """What turns a recipe's config into this kind's: `networks` of it, trained one after another, answering as one
    (the Train page's Networks and `galaxy-lab train --networks`); {} for one network, a plain run."""
    return {"kind": "seed_ensemble", "options": NetworksOptions(networks)} if networks > 1 else {}


def add_arguments(parser) -> None:
    """`galaxy-lab train --networks K`."""
    parser.add_argument(
        "--networks",
        type=int,
        default=1,
        metavar="K",
        help=f"train K networks of the recipe ({MIN_NETWORKS}-{MAX_NETWORKS}; seeds --seed, --seed + 1, ...) one "
        "after another as one run, whose model averages their answers: an ensemble (default 1: one network)",
    )


def config_from_arguments(args, request) -> TrainConfig:
    """The chosen recipe, trained --networks times as one run."""
    return request.preset_config(kind="seed_ensemble", options=NetworksOptions(args.networks))


@register_kind(
    "seed_ensemble",
    title="ensemble: {ensemble_size} x {model}",
    planned_epochs=planned_epochs,
    options=NetworksOptions,
    check=size_problems,
    workload=workload,
    traits=KindTraits(answers_as_one=True, member_names=seed_names),
    command_line=CommandLine(
        add_arguments,
        config_from_arguments,
        asked=lambda args: args.networks != 1,
        flag="--networks K",
        help="several networks answering as one",
    ),
)
def train_seed_ensemble(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> Outcome:
    """Train the networks one after another, keep their ensemble after each, then test it and each network."""
    from galaxy_core.models.ensemble import average_models

    dataset = with_validation_source(dataset, config)
    watchers = train.TrainingCallbacks.for_run(run, config, dataset, planned_epochs(config))
    networks = []
    for number, seed in enumerate(network_seeds(config), start=1):
        watchers.progress.message = f"training network {number} of {config.options.ensemble_size} (seed {seed})"
        network = _train_network(run, replace(config, seed=seed), dataset, watchers, observers)
        if network is not None:
            networks.append(network)
            run.save_model(average_models(networks), "best")
            size = config.options.ensemble_size
            run.log(f"network {number} of {size} (seed {seed}) kept; the best model is their ensemble")
        if watchers.stop.requested:
            break
    done, planned = watchers.progress.epochs_done, planned_epochs(config)
    if not networks:
        raise StoppedBeforeTrainingError("stopped during its first network's first epoch: no model")
    run.report_progress(message=f"testing the ensemble of {len(networks)} networks and each network")
    figures = answer_as_one(run, networks, [1.0] * len(networks), dataset)
    evaluated = "evaluated" if figures else "no test split to evaluate"
    kept = f"{len(networks)} of {config.options.ensemble_size} networks answering as one"
    if watchers.stop.requested:
        outcome = Outcome(RunState.STOPPED, f"stopped after {done} of {planned} epochs: {kept}, {evaluated}", figures)
    else:
        outcome = Outcome(RunState.FINISHED, f"finished after {done} of {planned} epochs: {kept}, {evaluated}", figures)
    run.log(outcome.message + "".join(f"; {key} {value:.4f}" for key, value in figures.items()))
    return outcome


def _train_network(run, config: TrainConfig, dataset: Dataset, watchers: train.TrainingCallbacks, observers):
    """One network trained with the run's watchers and a checkpoint of its own; it comes back with its best
    epoch's weights, or None when no epoch of it finished."""
    best: dict = {}
    model = train.build_model(run, config, dataset)
    own = watchers.with_own_checkpoint(
        run, config, dataset, keep=lambda network: best.update(weights=network.get_weights())
    )
    train.fit_phases(model, run, config, dataset, own, observers)
    if "weights" not in best:
        return None
    model.set_weights(best["weights"])
    return model
