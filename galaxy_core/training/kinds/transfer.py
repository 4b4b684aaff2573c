"""The "transfer" kind: a run that starts from another finished run's network (Keras' transfer-learning guide).

The base run's network is copied into the run's folder when it is queued (base.keras: the run stands on its own
even if the base is deleted later). Its layers up to the cut (by default, whatever fed its own classifier) become
the new network's base, frozen; a new classifier head, sized for this dataset's classes, trains on the base's
features of the training images, computed once per base and dataset and cached (galaxy_core.training.features): a
run of seconds. Then, with `unfreeze_from`, the base from that layer on trains too (its batch normalisation kept
in inference mode) on the images themselves, augmented, at `fine_tune_learning_rate`, after a recompile. The run
keeps the whole network (base and head), so every page and export treats it as any other run's.

The base's input size and channels are the run's: a dataset at another size is refused (the Train page and the
CLI build the config at the base's size).
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.data import Dataset, DatasetSpec
from galaxy_core.data.augment import AugmentOptions
from galaxy_core.errors import InvalidInputError
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.kinds.registry import CommandLine, register_kind, used_run_summary
from galaxy_core.training.kinds.train import TrainingCallbacks, evaluate_test_split
from galaxy_core.training.lifecycle import Outcome, RunState, StoppedBeforeTrainingError
from galaxy_core.training.recipe import fit_phase, with_validation_source
from galaxy_core.training.records import KindTraits, RunSummary, short_run_id
from galaxy_core.training.store import RunStore

HEAD_DROPOUT = 0.2
NO_AUGMENTATION = AugmentOptions(flip=False, rotate=False, zoom=0.0, brightness=0.0)
# A head on cached features: a few seconds an epoch, so more of them, a shorter patience and a plain rate; the
# fine-tuning's rate is the Keras guide's order of magnitude (a tenth of the head's or less).
TRANSFER_SETTINGS = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "schedule": "cosine",
    "batch_size": 64,
    "epochs": 30,
    "early_stopping": True,
    "monitor": "val_balanced_accuracy",
    "patience": 8,
    "class_weighting": True,
}


@dataclass(frozen=True)
class TransferOptions:
    base_run: str = ""  # the finished run whose network it starts from
    base_cut: str = ""  # the layer whose output feeds the new head ("": what fed the base's own classifier)
    unfreeze_from: str = ""  # the first layer of the base to fine-tune once the head has trained ("": none)
    fine_tune_epochs: int = 5
    fine_tune_learning_rate: float = 1e-4


def planned_epochs(config: TrainConfig) -> int:
    """The head's epochs, then the fine-tuning's, if any."""
    return config.epochs + (config.options.fine_tune_epochs if config.options.unfreeze_from else 0)


def config_problems(config: TrainConfig) -> list[str]:
    problems = [] if config.options.base_run else ["a transfer run needs a base run (base_run)"]
    if config.options.unfreeze_from and not 1 <= config.options.fine_tune_epochs <= 200:
        problems.append(f"fine_tune_epochs must be 1-200, got {config.options.fine_tune_epochs!r}")
    if not 0 < config.options.fine_tune_learning_rate <= 1:
        problems.append(f"fine_tune_learning_rate must be in (0, 1], got {config.options.fine_tune_learning_rate!r}")
    return problems


def transfer_config(base: RunSummary, dataset: DatasetSpec | None = None, **overrides) -> TrainConfig:
    """A run that starts from the finished run `base`, on `dataset` (the base's when None) read at the base's input
    size and channels: the lab's transfer settings, changed by `overrides` (base_cut, unfreeze_from, ...)."""
    preprocess = base.dataset.preprocess
    spec = (dataset or base.dataset).with_preprocess(image_size=preprocess.image_size, channels=preprocess.channels)
    names = {option.name for option in fields(TransferOptions)}
    options = TransferOptions(base_run=base.id, **{key: value for key, value in overrides.items() if key in names})
    recipe = {key: value for key, value in overrides.items() if key not in names}
    settings = {**TRANSFER_SETTINGS, "model_options": base.config.get("model_options") or {}, **recipe}
    return TrainConfig(dataset=spec, model=base.model, kind="transfer", options=options, **settings)


def base_summary(store: RunStore, run_id: str) -> RunSummary:
    """The summary of the run to start from; InvalidInputError when there is none or it cannot be read."""
    return used_run_summary(store, run_id, "start from")


def base_model_file(store: RunStore, config: TrainConfig) -> dict[str, Path]:
    """{"base": the file of the network the run starts from}: the best model of the finished run `base_run`, if
    it can be a base for this config (InvalidInputError saying why not)."""
    summary = base_summary(store, config.options.base_run)
    base = summary.run
    if summary.is_label_review:
        raise InvalidInputError(
            f"run {summary.name} is a label review: each of its models saw only part of the data; start from a "
            "training run"
        )
    if summary.is_ensemble:
        raise InvalidInputError(
            f"run {summary.name} is an ensemble: its members are separate networks; start from a single network's run"
        )
    if summary.state.active:
        raise InvalidInputError(f"run {summary.name} is still {summary.state.value}: start from it once it has ended")
    try:
        path = base.model_path("best")
    except ModelLoadError as error:
        raise InvalidInputError(str(error)) from None
    layers = base_layers(path)
    if not layers:
        raise InvalidInputError(f"run {summary.name}'s model file {path.name} is damaged: start from another run")
    options = config.options
    transfer_plan(layers, options.base_cut, options.unfreeze_from)  # refuses a layer the base does not have
    wanted = (summary.dataset.preprocess.image_size, summary.dataset.preprocess.channels)
    given = (config.dataset.preprocess.image_size, config.dataset.preprocess.channels)
    if wanted != given:
        raise InvalidInputError(_size_mismatch(wanted, given))
    return {"base": path}


def base_layers(path: Path) -> list[tuple[str, str]]:
    """(name, type) of each layer of the network in a .keras file, in order, read without TensorFlow; [] when the
    file is not a whole Keras archive (its config and weights)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "model.weights.h5" not in archive.namelist():
                return []
            config = json.loads(archive.read("config.json"))
        return [(str(layer["name"]), str(layer["class_name"])) for layer in config["config"]["layers"]]
    except (OSError, zipfile.BadZipFile, KeyError, TypeError, ValueError):
        return []


def transfer_plan(layers: list[tuple[str, str]], cut: str = "", unfreeze_from: str = "") -> list[dict]:
    """What a transfer run does with each layer of its base: "frozen", "fine-tuned" (from `unfreeze_from` on;
    batch normalisation stays frozen), or "cut off" (after the cut: the base's own classifier among them); then
    the new head's layers, "new". InvalidInputError when the cut or the first layer to unfreeze is not a layer the
    new network keeps."""
    names = [name for name, _ in layers]
    classifier = names.index("logits") if "logits" in names else len(names)
    if cut and cut not in names[:classifier]:
        raise InvalidInputError(f"the base has no layer {cut!r} before its own classifier to cut at")
    kept = names.index(cut) + 1 if cut else classifier
    if unfreeze_from and unfreeze_from not in names[1:kept]:
        raise InvalidInputError(f"the base keeps no layer {unfreeze_from!r} to unfreeze from (its input excluded)")
    tuned_from = names.index(unfreeze_from) if unfreeze_from else kept
    rows = []
    for index, (name, kind) in enumerate(layers):
        if index >= kept:
            role = "cut off"
        elif index >= tuned_from and kind != "BatchNormalization":
            role = "fine-tuned"
        else:
            role = "frozen"
        rows.append({"layer": name, "type": kind, "role": role})
    return rows + [{"layer": name, "type": "new head", "role": "new"} for name in ("logits", "probabilities")]


def _size_mismatch(wanted: tuple, given: tuple) -> str:
    return (
        f"the base network takes {wanted[0]} px images with {wanted[1]} channel(s); this dataset is set to "
        f"{given[0]} px with {given[1]}: train at the base's size"
    )


def feature_model(base, cut: str):
    """The base network up to the cut: the output of layer `cut`, or ("") what fed its classifier ("logits")."""
    import keras

    if cut in ("logits", "probabilities"):
        raise InvalidInputError(f"cut the base before its own classifier, not at {cut!r}: the new head replaces it")
    try:
        features = base.get_layer(cut).output if cut else base.get_layer("logits").input
    except ValueError:
        raise InvalidInputError(f"the base network has no layer {cut or 'logits'!r}") from None
    return keras.Model(base.input, features, name="base_features")


def new_head(x, num_classes: int, seed: int, taken: set[str] = frozenset()):
    """The new classifier on features `x`: pooled when they are maps, dropout, then "logits" and "probabilities"
    (the names every page looks for; the base's own are cut off). Its other layers take names not in `taken`."""
    import keras

    def free(name: str) -> str:
        candidates = [name] + [f"{name}_{number}" for number in range(1, len(taken) + 2)]
        return next(candidate for candidate in candidates if candidate not in taken)

    if len(x.shape) > 2:
        x = keras.layers.GlobalAveragePooling2D(name=free("transfer_gap"))(x)
    x = keras.layers.Dropout(HEAD_DROPOUT, name=free("transfer_dropout"), seed=seed)(x)
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.layers.Activation("softmax", name="probabilities", dtype="float32")(logits)


def _check_input(base, dataset: Dataset) -> None:
    wanted, given = tuple(base.input.shape[1:]), dataset.splits["train"].images.shape[1:]
    if wanted != given:
        raise InvalidInputError(_size_mismatch((wanted[0], wanted[2]), (given[0], given[2])))


@dataclass(frozen=True)
class FeatureSplit:
    """A split with the base's features of its images in place of the images (what fit_phase and the callbacks
    read of a split)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _train_head(run, config: TrainConfig, dataset: Dataset, features: dict, observers: Sequence):
    """The new head trained on the base's features (not augmented: they are computed once): (the head with its
    best weights, the callbacks that watched it)."""
    import keras

    keras.utils.set_random_seed(config.seed)
    inputs = keras.Input(features["train"].shape[1:], name="features")
    head = keras.Model(inputs, new_head(inputs, dataset.num_classes, config.seed), name="head")
    splits = {name: FeatureSplit(features[name], split.labels) for name, split in dataset.splits.items()}
    on_features = replace(dataset, splits=splits)
    best: dict = {}
    watchers = TrainingCallbacks.for_run(run, config, on_features, planned_epochs(config)).with_own_checkpoint(
        run, config, on_features, keep=lambda model: best.update(weights=model.get_weights())
    )
    fit_phase(
        head,
        replace(config, augment=NO_AUGMENTATION),
        splits["train"],
        dataset.num_classes,
        watchers.in_order(observers),
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        whole_epochs=True,  # a head's step costs less than Keras' work between steps
    )
    if "weights" in best:
        head.set_weights(best["weights"])
    return head, watchers


def _whole_network(base, cut: str, head, num_classes: int, seed: int):
    """The base up to the cut, frozen, with the trained head on it: one flat functional network."""
    import keras

    features = feature_model(base, cut)
    for layer in features.layers:
        layer.trainable = False
    taken = {layer.name for layer in features.layers}
    network = keras.Model(base.input, new_head(features.output, num_classes, seed, taken), name=f"transfer_{base.name}")
    for layer in head.layers:
        if layer.weights:
            network.get_layer(layer.name).set_weights(layer.get_weights())
    return network


def _fine_tune(run, config: TrainConfig, dataset: Dataset, network, head_watchers, observers: Sequence):
    """The base from `unfreeze_from` on trained with the head, on the augmented images; batch normalisation stays
    in inference mode. Its epochs follow the head's (one count, one ETA), and its best checkpoint must beat the
    head's best. Returns the callbacks that watched it."""
    import keras

    names = [layer.name for layer in network.layers]
    if config.options.unfreeze_from not in names:
        raise InvalidInputError(f"the network has no layer {config.options.unfreeze_from!r} to unfreeze from")
    for layer in network.layers[names.index(config.options.unfreeze_from) :]:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    run.log(f"fine-tuning from {config.options.unfreeze_from} at {config.options.fine_tune_learning_rate:g}")
    watchers = TrainingCallbacks.for_run(run, config, dataset, planned_epochs(config))
    watchers.progress, watchers.checkpoint.monitor = head_watchers.progress, head_watchers.checkpoint.monitor
    done = watchers.progress.epochs_done
    fit_phase(
        network,
        config,
        dataset.splits["train"],
        dataset.num_classes,
        watchers.in_order(observers),
        epochs=done + config.options.fine_tune_epochs,
        initial_epoch=done,
        learning_rate=config.options.fine_tune_learning_rate,
    )
    return watchers


def add_arguments(parser) -> None:
    """`galaxy-lab train --from RUN` and the options that go with it."""
    parser.add_argument(
        "--from",
        dest="base_run",
        metavar="RUN",
        help="start from this finished run's network (transfer): its layers up to --cut, frozen, and a new "
        "classifier head for the dataset's classes, trained on the base's features (cached: seconds). The "
        "dataset is the base's unless --dataset names another, read at the base's input size; the model is the "
        f"base's. Its own settings: {TRANSFER_SETTINGS['epochs']} epochs at {TRANSFER_SETTINGS['learning_rate']:g} "
        "with early stopping, unless the options say otherwise",
    )
    parser.add_argument(
        "--cut",
        metavar="LAYER",
        default="",
        help="with --from: the base's layer whose output feeds the new head (default: what fed its classifier)",
    )
    parser.add_argument(
        "--unfreeze-from",
        metavar="LAYER",
        default="",
        help="with --from: then fine-tune the base from this layer on (batch normalisation stays frozen), on "
        "augmented images at --fine-tune-learning-rate for --fine-tune-epochs",
    )
    defaults = TransferOptions()
    parser.add_argument(
        "--fine-tune-epochs", type=int, help=f"with --unfreeze-from (default {defaults.fine_tune_epochs})"
    )
    parser.add_argument(
        "--fine-tune-learning-rate",
        type=float,
        help=f"with --unfreeze-from (default {defaults.fine_tune_learning_rate:g})",
    )


def _asked(args) -> bool:
    return bool(
        args.base_run or args.cut or args.unfreeze_from or args.fine_tune_epochs or args.fine_tune_learning_rate
    )


def config_from_arguments(args, request) -> TrainConfig:
    """The config of `train --from RUN`: the base's dataset unless --dataset names one, at the base's input size."""
    if not args.base_run:
        raise InvalidInputError(
            "--cut, --unfreeze-from and the --fine-tune options go with --from RUN (the run to start from)"
        )
    if args.model or args.model_options:
        raise InvalidInputError("a run started --from another has the base's model: leave out --model and its options")
    base = base_summary(request.store, args.base_run)
    size = base.dataset.preprocess
    if (args.image_size or size.image_size) != size.image_size or args.grayscale != (size.channels == 1):
        raise InvalidInputError(
            f"run {base.name} takes {size.image_size} px images with {size.channels} channel(s): leave out "
            "--image-size and --grayscale, or give the base's"
        )
    tuning = {"fine_tune_epochs": args.fine_tune_epochs, "fine_tune_learning_rate": args.fine_tune_learning_rate}
    given = {key: value for key, value in tuning.items() if value is not None}
    return transfer_config(
        base, request.dataset(), base_cut=args.cut, unfreeze_from=args.unfreeze_from, **given, **request.recipe
    )


@register_kind(
    "transfer",
    title=lambda config: f"{config['model']} from run {short_run_id(config['options']['base_run'])}",
    planned_epochs=planned_epochs,
    options=TransferOptions,
    check=config_problems,
    input_models=base_model_file,
    # The option naming the run it starts from; a frozen base: a head on cached features, a run of seconds
    traits=KindTraits(starts_from="base_run", light=lambda options: not options.get("unfreeze_from")),
    command_line=CommandLine(
        add_arguments, config_from_arguments, _asked, flag="--from RUN", help="start from a trained run"
    ),
)
def transfer(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> Outcome:
    """A new head on a trained base, then (optionally) the top of the base fine-tuned."""
    from galaxy_core.settings import load_settings
    from galaxy_core.training.features import base_features, model_digest

    dataset = with_validation_source(dataset, config)
    run.report_progress(message="loading its base network")
    digest = model_digest(run.input_model_path("base"))
    base = _base_network(run, digest, frozen=not config.options.unfreeze_from)
    _check_input(base, dataset)
    run.log(
        f"starting from run {config.options.base_run} ({base.count_params():,} parameters), cut "
        + (f"after {config.options.base_cut}" if config.options.base_cut else "where its classifier was")
        + (f", fine-tuned from {config.options.unfreeze_from}" if config.options.unfreeze_from else ", frozen")
    )
    started = time.perf_counter()
    run.report_progress(message="computing the base's features of the images (once per base and dataset)")
    extractor = feature_model(base, config.options.base_cut)
    _check_feature_memory(extractor, dataset, config.options.base_cut)
    features = base_features(extractor, digest, config.options.base_cut, dataset, load_settings().cache_dir)
    taken = f"{'from the cache' if features.cached else 'computed'} in {time.perf_counter() - started:.1f} s"
    run.log(f"base features {tuple(extractor.output.shape[1:])} of each image {taken}")
    if run.stop_requested():
        raise StoppedBeforeTrainingError("stopped before its head trained: no model")
    run.report_progress(
        message="training its new head",
        class_names=list(dataset.class_names),
        dataset_sizes={name: len(split) for name, split in dataset.splits.items()},
        epochs_done=0,
    )
    head, watchers = _train_head(run, config, dataset, features.splits, observers)
    done = watchers.progress.epochs_done
    if done == 0:
        raise StoppedBeforeTrainingError("stopped during its head's first epoch: no model")
    network = _whole_network(base, config.options.base_cut, head, dataset.num_classes, config.seed)
    run.report_progress(parameters=network.count_params())
    stopped = watchers.stop.requested
    if config.options.unfreeze_from and not stopped:
        run.save_model(network, "best")
        tuned = _fine_tune(run, config, dataset, network, watchers, observers)
        done, stopped = tuned.progress.epochs_done, tuned.stop.requested
        run.save_model(network, "final")
        return _outcome(run, dataset, done, stopped, planned_epochs(config))
    run.save_model(network, "best", "final")  # frozen: its best is its final network
    views = _head_views(head, features.test_views)  # the frozen network's answers: the head's on cached features
    return _outcome(run, dataset, done, stopped, planned_epochs(config), views)


# The frozen base this process loaded last, by its file's digest: a warm worker's next head of the same base (a
# lesson's) finds it loaded. Frozen, it is only read from; a base that is fine-tuned is loaded afresh.
_LOADED_BASE: dict[str, object] = {}


def _base_network(run, digest: str, frozen: bool):
    from galaxy_core.answers.prediction import load_model_file

    if frozen and digest in _LOADED_BASE:
        run.log("its base network: already loaded in this worker")
        return _LOADED_BASE[digest]
    base = load_model_file(run.input_model_path("base"))
    if frozen:
        _LOADED_BASE.clear()
        _LOADED_BASE[digest] = base
    return base


def _head_views(head, test_views: np.ndarray) -> np.ndarray:
    from galaxy_core.answers.prediction import predict_in_batches

    count = test_views.shape[1]
    flat = test_views.reshape(8 * count, *test_views.shape[2:])
    return predict_in_batches(head, flat).reshape(8, count, -1)


def _check_feature_memory(extractor, dataset: Dataset, cut: str) -> None:
    """Refuse a cut whose features of every image (and of the test images' 8 views) would not fit the server's
    memory budget for a dataset (dataset_memory_mb)."""
    from galaxy_core.settings import load_settings

    per_image = 4 * int(np.prod(extractor.output.shape[1:]))
    images = sum(len(split) for split in dataset.splits.values()) + 8 * len(dataset.splits["test"])
    megabytes, budget = per_image * images / 2**20, load_settings().dataset_memory_mb
    if megabytes > budget:
        raise InvalidInputError(
            f"the base's features at {cut or 'its classifier'} would take {megabytes:,.0f} MB for {images:,} images "
            f"(this server allows {budget:,} MB, dataset_memory_mb): cut at a later layer, whose features are smaller"
        )


def _outcome(run, dataset: Dataset, done: int, stopped: bool, planned: int, views=None) -> Outcome:
    from galaxy_core.answers.prediction import load_model_file

    run.report_progress(message="evaluating on the test split")
    model = None if views is not None else load_model_file(run.best_model_path)
    figures = evaluate_test_split(model, run, dataset, views)
    evaluated = "evaluated" if figures else "no test split to evaluate"
    if stopped:
        return Outcome(RunState.STOPPED, f"stopped after {done} of {planned} epochs, {evaluated}", figures)
    early = " (early stopping)" if done < planned else ""
    return Outcome(RunState.FINISHED, f"finished after {done} of {planned} epochs{early}, {evaluated}", figures)
