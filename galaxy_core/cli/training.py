"""Training from a terminal: `train` and the commands of the run kinds that have one (`review-labels`, `ensemble`)
queue a run in the service's queue and follow it here. A kind's own flags, and the config they ask for, are its
module's (galaxy_core.training.kinds, `CommandLine`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from galaxy_core.answers.inference import balanced_accuracy_interval_of
from galaxy_core.answers.review import ACTIONS, ReviewError, label_changes_from_csv
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.cli.common import (
    RUNS_DIR,
    add_dataset_arguments,
    client_for,
    dataset_spec_from_args,
    interval_words,
)
from galaxy_core.data import PreprocessOptions
from galaxy_core.data.augment import AugmentOptions
from galaxy_core.errors import InvalidInputError
from galaxy_core.evaluation import LABEL_NOISE_NOTE
from galaxy_core.training import RunState
from galaxy_core.training.config import (
    DEFAULT_PRESET,
    MONITORS,
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    VALIDATION_SOURCES,
    preset_config,
    recommended_config,
)
from galaxy_core.training.kinds import RUN_KINDS
from galaxy_core.training.kinds.registry import CommandLineRequest


def train_command(commands) -> None:
    parser = commands.add_parser(
        "train",
        parents=[RUNS_DIR],
        help="queue a training run and follow it here",
        description="Queues a run with a preset recipe (the recommended one unless --preset says otherwise; change "
        "single settings with the options below) and follows it in this terminal: Ctrl-C asks it to stop, and it "
        "keeps what it learned. The run goes through the same queue as the app's, so it counts toward "
        "max_concurrent_runs (a run of seconds, such as a head on a frozen base, toward max_light_runs). The run id "
        "is printed last.",
    )
    add_dataset_arguments(
        parser, positional=False, image_size_default=f"the preset's; with --model, {PreprocessOptions().image_size}"
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default=DEFAULT_PRESET,
        help="a whole recipe: model, input size and settings. "
        + " ".join(
            f"{name}: {p.model} at {p.image_size} px, {p.settings['epochs']} epochs. {p.description}"
            for name, p in PRESETS.items()
        )
        + f" (default {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--model",
        help="another registered model, trained with its own recipe at the dataset's input size (default: the "
        "preset's)",
    )
    _add_recipe_arguments(parser)
    _add_label_arguments(parser)
    _add_few_labels_arguments(parser)
    for kind in _kinds_of_train():
        line = kind.command_line
        line.add_arguments(parser.add_argument_group(f"{line.help or kind.name} ({line.flag})"))
    _add_queue_arguments(parser)
    parser.set_defaults(run=_train, needs_tensorflow=True)  # a recipe's model is checked with Keras


def _kinds_of_train() -> list:
    """The kinds whose flags join `galaxy-lab train`'s."""
    return [kind for kind in RUN_KINDS.values() if kind.command_line and not kind.command_line.command]


def kind_commands(commands) -> None:
    """A command for each kind that has one of its own (`review-labels`, `ensemble`)."""
    for kind in RUN_KINDS.values():
        line = kind.command_line
        if line is None or not line.command:
            continue
        parser = commands.add_parser(line.command, parents=[RUNS_DIR], help=line.help, description=line.description)
        if line.dataset_size_note is not None:
            add_dataset_arguments(parser, positional=False, image_size_default=line.dataset_size_note)
        line.add_arguments(parser)
        _add_queue_arguments(parser)
        parser.set_defaults(run=_kind_command(line), needs_tensorflow=True)


def _kind_command(line):
    def run(args, settings) -> int:
        client = client_for(args, settings)
        request = CommandLineRequest(client.store, lambda: dataset_spec_from_args(args, settings))
        return _queue_and_follow(client, line.config(args, request), args.detach, title=args.title)

    return run


def _add_queue_arguments(parser) -> None:
    parser.add_argument("--title", default="", help="a title for the run, shown beside its id")
    parser.add_argument("--detach", action="store_true", help="queue the run, print its id and return at once")


def _add_recipe_arguments(parser) -> None:
    """The options that change single settings of the chosen recipe."""
    parser.add_argument("--model-options", help="builder options as JSON, e.g. '{\"blocks\": 4}'")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="images per step (default: the model's recipe)")
    parser.add_argument("--learning-rate", type=float, help="initial learning rate (default: the model's recipe)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default cosine)")
    parser.add_argument(
        "--weight-averaging",
        type=float,
        metavar="MOMENTUM",
        help="keep a moving average of the weights with this momentum (e.g. 0.98): validation, the checkpoints and "
        "the final model use it (default: the preset's)",
    )
    parser.add_argument("--monitor", choices=MONITORS, help="what early stopping and the best checkpoint watch")
    parser.add_argument("--patience", type=int, help="epochs without improvement before stopping (default 10)")
    parser.add_argument("--no-early-stopping", action="store_true")
    parser.add_argument("--no-class-weights", action="store_true", help="do not reweight imbalanced classes")
    parser.add_argument("--no-augment", action="store_true", help="no flips, rotations, zoom or brightness")
    parser.add_argument(
        "--validation",
        choices=VALIDATION_SOURCES,
        help="the dataset's val split (default), or a share held out of the training split",
    )
    parser.add_argument("--validation-fraction", type=float, help="share of train held out (default 0.1)")
    parser.add_argument(
        "--seed",
        type=int,
        help="training seed: the same seed and config train the same network (default: each run draws its "
        "own, printed when it is queued)",
    )


def _add_label_arguments(parser) -> None:
    """The options that train on a label review's decisions."""
    parser.add_argument(
        "--reviewed-labels",
        type=Path,
        metavar="CSV",
        help="train on a label review's accepted suggestions (the CSV of galaxy-lab reviewed-labels or the Label "
        "review page); only the training split changes",
    )
    parser.add_argument(
        "--accepted",
        choices=ACTIONS,
        default="relabel",
        help="what the accepted suggestions do: relabel (default) or leave_out the images",
    )


def _add_few_labels_arguments(parser) -> None:
    """The options that train on few labels."""
    parser.add_argument(
        "--train-fraction",
        type=float,
        help="few labels: train on this share of each class's training images (drawn with --seed; the "
        "validation and test images stay whole)",
    )
    parser.add_argument(
        "--train-per-class", type=int, help="few labels: train on this many training images of each class"
    )


RETURN = "\r"  # back to the start of a terminal's line, over the batch line


def _print_record(record: dict, live: bool) -> None:
    """A metrics record in the terminal: a line per epoch; batches on one rewritten line, only on a terminal."""
    if record.get("kind") == "batch":
        if live:
            print(
                f"\r  epoch {record['epoch'] + 1} step {record['step']}: loss {record['loss']:.4f} "
                f"accuracy {record['accuracy']:.3f}",
                end="",
                file=sys.stderr,
                flush=True,
            )
        return
    if record.get("kind") == "stage":  # the run's message says what it is doing
        return
    if record.get("kind") == "review_epoch":
        print(
            f"{RETURN if live else ''}epoch {record['epoch']}: loss {record['loss']:.4f}", file=sys.stderr, flush=True
        )
        return
    if record.get("kind") == "partial_epoch":
        print(
            f"{RETURN if live else ''}epoch {record['epoch']} cut short after {record['batches']} of "
            f"{record['of_batches']} batches",
            file=sys.stderr,
        )
        return
    figures = "  ".join(
        f"{key} {record[key]:.4f}"
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_balanced_accuracy")
        if key in record
    )
    print(
        f"{RETURN if live else ''}epoch {record['epoch']}: {figures}  {record['images_per_second']:.0f} img/s  "
        f"ETA {record['eta_seconds'] / 60:.1f} min",
        file=sys.stderr,
        flush=True,
    )


def _follow(client, run):
    """Print a run's progress until it ends; returns its final summary. Ctrl-C raises KeyboardInterrupt."""

    live, last_message, summary = sys.stderr.isatty(), None, None
    for records, summary in client.follow(run):
        for record in records:
            _print_record(record, live)
        line = f"{summary.state.value}: {summary.message}"
        if line != last_message and summary.state is not RunState.FINISHED:
            print(("\n" if live else "") + line, file=sys.stderr, flush=True)
            last_message = line
    return summary


def _label_changes(args) -> dict:
    """The config fields of --reviewed-labels (the run checks the classes against its dataset)."""
    if args.reviewed_labels is None:
        return {}
    try:
        data = args.reviewed_labels.read_bytes()
    except OSError as error:
        raise ReviewError(f"{args.reviewed_labels} cannot be read: {error.strerror or error}") from None
    return {
        "label_changes": label_changes_from_csv(data, None, args.accepted),
        "label_changes_from": f"{args.reviewed_labels.name}, accepted suggestions {ACTIONS[args.accepted]}",
    }


def _recipe_overrides(args) -> dict:
    """The recipe settings the arguments give (None left out)."""
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "weight_averaging": args.weight_averaging,
        "monitor": args.monitor,
        "patience": args.patience,
        "seed": args.seed,
        "validation": args.validation,
        "validation_fraction": args.validation_fraction,
        "early_stopping": False if args.no_early_stopping else None,
        "class_weighting": False if args.no_class_weights else None,
        "augment": AugmentOptions(flip=False, rotate=False, zoom=0.0, brightness=0.0) if args.no_augment else None,
        "train_fraction": args.train_fraction,
        "train_per_class": args.train_per_class,
    }
    overrides["model_options"] = json.loads(args.model_options) if args.model_options else None
    return {key: value for key, value in overrides.items() if value is not None} | _label_changes(args)


def _train(args, settings) -> int:
    """The preset's (or --model's) recipe, or the kind the flags ask for (--from RUN, --networks K)."""
    recipe = _recipe_overrides(args)

    def recipe_config(**more):
        dataset = dataset_spec_from_args(args, settings)
        if args.model and args.model != PRESETS[args.preset].model:
            return recommended_config(dataset, args.model, **recipe, **more)
        return preset_config(dataset, args.preset, image_size=args.image_size, **recipe, **more)

    client = client_for(args, settings)
    named = lambda: dataset_spec_from_args(args, settings) if args.dataset else None  # noqa: E731
    request = CommandLineRequest(client.store, named, recipe, recipe_config)
    asked = [kind.command_line for kind in _kinds_of_train() if kind.command_line.asked(args)]
    if len(asked) > 1:
        raise InvalidInputError(f"{' and '.join(line.flag for line in asked)} ask for different runs: give one")
    config = asked[0].config(args, request) if asked else recipe_config()
    return _queue_and_follow(client, config, args.detach, title=args.title)


def _queue_and_follow(client, config, detach: bool, title: str = "") -> int:
    """Queue a run (with `title`, if any), follow it here unless `detach`, and print its id last."""
    run = client.submit(config, MACHINE_TEACHER)
    if title:
        client.rename(run.id, title, MACHINE_TEACHER)
    print(f"run {run.id} queued in {run.path.parent}, seed {run.config()['seed']}", file=sys.stderr)
    if detach:
        print(run.id)
        return 0
    try:
        summary = _follow(client, run)
    except KeyboardInterrupt:
        client.stop(run.id, MACHINE_TEACHER)
        print(
            "\nstop requested: the run ends after its current batch and keeps what it learned "
            "(Ctrl-C again leaves it to end in the background)",
            file=sys.stderr,
        )
        try:
            summary = _follow(client, run)
        except KeyboardInterrupt:
            print(f"\n{run.id} goes on in the background: galaxy-lab runs", file=sys.stderr)
            print(run.id)
            return 130
    if summary.has_test_results:
        interval = interval_words(balanced_accuracy_interval_of(run))
        print(
            f"{summary.message}: test accuracy {summary.test_accuracy:.4f}, balanced accuracy "
            f"{summary.test_balanced_accuracy:.4f}{interval}\n{LABEL_NOISE_NOTE}",
            file=sys.stderr,
        )
    elif summary.state is RunState.FINISHED:
        print(summary.message, file=sys.stderr)
    print(run.id)
    return 0 if summary.state in (RunState.FINISHED, RunState.STOPPED) else 1
