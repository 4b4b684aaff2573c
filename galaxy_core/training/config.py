"""What a training run is asked to do: one frozen, JSON-ready config, validated before any work starts."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, fields, replace

from galaxy_core.data import DatasetSpec, check_spec
from galaxy_core.data.augment import AugmentOptions
from galaxy_core.errors import InvalidInputError

OPTIMIZERS = ("adam", "sgd", "rmsprop")
# cosine: from the rate down to 0 over the run; one_cycle: up from a 25th of the rate over the first 30% of the
# steps, then cosine down to 0 (fastai's one-cycle policy with cosine phases, and linear warm-up).
SCHEDULES = ("constant", "cosine", "one_cycle")
ONE_CYCLE_WARMUP, ONE_CYCLE_START = 0.3, 1 / 25
# What early stopping and the best checkpoint may follow, and whether higher ("max") or lower ("min") is better;
# "loss" (the training loss) stands in for a run without validation images.
MONITOR_MODES = {"val_loss": "min", "val_balanced_accuracy": "max", "val_accuracy": "max", "loss": "min"}
MONITORS = ("val_loss", "val_balanced_accuracy", "val_accuracy")
# Where validation images come from: the dataset's own val split, or a stratified share held out of train.
VALIDATION_SOURCES = ("val_split", "from_train")
MAX_EPOCHS = 500
MAX_SEED = 2**31 - 1  # a drawn seed is below it: short to read aloud, and every seeded library takes it
# What the run store adds to a run's config.json: when it was queued, and by whom (its owner, for good).
STORE_KEYS = ("created", "owner", "owner_name", "owner_role")


# What a run does when its config does not say: train one model (galaxy_core.training.kinds.train). The one kind
# named outside the kinds, as the configs' default.
DEFAULT_KIND = "train"


# Each kind's options dataclass (None: a kind without options), registered with the kind
# (galaxy_core.training.kinds.registry.register_kind).
KIND_OPTIONS: dict[str, type | None] = {}


def nested_options(values: dict) -> dict:
    """A config's dict with its kind's options under "options". A run queued before kinds had options kept every
    kind's beside the recipe ("base_run", "members", ...: the other kinds' at their defaults, left out here)."""
    if "options" in values:
        return values
    every = {option.name for kind in KIND_OPTIONS.values() if kind is not None for option in fields(kind)}
    own = KIND_OPTIONS.get(values.get("kind", DEFAULT_KIND))
    names = {option.name for option in fields(own)} if own is not None else set()
    recipe = {key: value for key, value in values.items() if key not in every}
    return {**recipe, "options": {key: value for key, value in values.items() if key in names} if own else None}


@dataclass(frozen=True)
class TrainConfig:
    dataset: DatasetSpec  # or its dict form, as config.json stores it
    model: str
    model_options: dict = field(default_factory=dict)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    # Momentum of an exponential moving average of the weights, validated, checkpointed and kept in place of the
    # last step's (Polyak averaging); 0: off.
    weight_averaging: float = 0.0
    batch_size: int = 32
    epochs: int = 20
    early_stopping: bool = True
    monitor: str = "val_loss"
    patience: int = 10
    class_weighting: bool = True
    validation: str = "val_split"
    validation_fraction: float = 0.1  # with validation="from_train"
    # Weights, shuffling, augmentation and any share it draws follow it: the same config and seed train the same
    # network. None: each run draws its own when it is queued (`seeded`), and its config.json keeps it.
    seed: int | None = None
    kind: str = DEFAULT_KIND  # what the run does with this recipe: an entry of galaxy_core.training.kinds
    # The kind's own options: a dataclass of the kind's module (a transfer run's base run and cut, an ensemble's
    # members, ...), or its dict form as config.json keeps it; None for a kind without options.
    options: object = None
    # The training split's labels changed by a review: {source id: new class name, or None to leave the image out}
    label_changes: dict = field(default_factory=dict)
    label_changes_from: str = ""  # where they came from, in words ("review <run id>, relabelled")
    # Few labels: train on this share of the training split, or on this many images of each class (0: all), chosen
    # stratified with the run's seed; the validation and test images stay whole.
    train_fraction: float = 1.0
    train_per_class: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.dataset, dict):
            object.__setattr__(self, "dataset", DatasetSpec.from_dict(self.dataset))
        check_spec(self.dataset)
        problems = self._options_problems()
        from galaxy_core.models import model_info  # deferred: the model zoo imports Keras

        info = model_info(self.model)  # raises for an unknown model, naming the known ones
        if self.input_shape[0] < info.min_input_size:
            problems.append(
                f"{self.model} needs images of at least {info.min_input_size} px; the dataset is set to "
                f"{self.input_shape[0]} px"
            )
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 <= self.weight_averaging < 1:
            problems.append(f"weight_averaging must be 0 (off) or a momentum below 1, got {self.weight_averaging}")
        if not 1 <= self.batch_size <= 1024:
            problems.append(f"batch_size must be 1-1024, got {self.batch_size}")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            problems.append(f"epochs must be 1-{MAX_EPOCHS}, got {self.epochs}")
        if self.monitor not in MONITORS:
            problems.append(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if self.patience < 1:
            problems.append(f"patience must be >= 1, got {self.patience}")
        if self.validation not in VALIDATION_SOURCES:
            problems.append(f"validation must be one of {VALIDATION_SOURCES}, got {self.validation!r}")
        if not 0.0 < self.validation_fraction < 0.5:
            problems.append(f"validation_fraction must be between 0 and 0.5, got {self.validation_fraction}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            problems.append(f"seed must be a whole number >= 0 (or none: drawn for the run), got {self.seed!r}")
        if not isinstance(self.label_changes, dict) or not all(
            isinstance(key, str) and (value is None or isinstance(value, str))
            for key, value in self.label_changes.items()
        ):
            problems.append("label_changes must map image ids to a class name or None (left out)")
        problems += self._few_labels_problems()
        if problems:
            raise InvalidInputError("; ".join(problems))

    def _options_problems(self) -> list[str]:
        """The kind's options as its dataclass (from their dict form, or its defaults); what is wrong with them."""
        if not isinstance(self.kind, str) or self.kind not in KIND_OPTIONS:
            return [f"unknown run kind {self.kind!r}; the kinds are {', '.join(sorted(KIND_OPTIONS))}"]
        options_type = KIND_OPTIONS[self.kind]
        given = self.options
        if options_type is None:
            if given not in (None, {}):
                return [f"a {self.kind} run takes no options, got {given!r}"]
            object.__setattr__(self, "options", None)
            return []
        if isinstance(given, options_type):
            return []
        if given is None:
            given = {}
        if not isinstance(given, dict):
            return [f"the options of a {self.kind} run are a table of settings, got {given!r}"]
        known = {option.name for option in fields(options_type)}
        unknown = sorted(set(given) - known)
        if unknown:
            return [f"unknown {self.kind} options {unknown}; known: {sorted(known)}"]
        try:
            object.__setattr__(self, "options", options_type(**given))
        except (TypeError, ValueError) as error:
            return [f"the {self.kind} options cannot be read: {error}"]
        return []

    def _few_labels_problems(self) -> list[str]:
        problems = []
        fraction = self.train_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            problems.append(f"train_fraction must be a share in (0, 1], got {self.train_fraction!r}")
        per_class = self.train_per_class
        if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 0:
            problems.append(f"train_per_class must be a whole number >= 0 (0: all), got {self.train_per_class!r}")
        if self.train_fraction < 1 and self.train_per_class:
            problems.append("choose train_fraction or train_per_class, not both")
        return problems

    def seeded(self) -> TrainConfig:
        """This config with its seed, drawn now if it has none (what a run is queued with)."""
        return self if self.seed is not None else replace(self, seed=secrets.randbelow(MAX_SEED + 1))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        preprocess = self.dataset.preprocess
        return (preprocess.image_size, preprocess.image_size, preprocess.channels)

    def to_dict(self) -> dict:
        return {**asdict(self), "dataset": self.dataset.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The config of a dict (as `to_dict` or a run's config.json has it, options nested or, as runs kept them
        before options were, beside the recipe: the run store's own keys are left out); InvalidInputError names
        any unknown setting."""
        values = {key: value for key, value in nested_options(values).items() if key not in STORE_KEYS}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInputError(f"unknown training settings {unknown}; known: {sorted(known)}")
        values = dict(values)
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentOptions(**values["augment"])
        return cls(**values)


@dataclass(frozen=True)
class Preset:
    """A whole recipe a user can pick by name: model, input size and training settings."""

    title: str
    description: str
    model: str
    image_size: int
    settings: dict  # TrainConfig fields (model_options included)


# Chosen on gz1-3class validation figures within a CPU budget (benchmarks/bench_time_to_accuracy.py;
# docs/teacher.md, "The default model"); the test figures only check the goals.
# Every preset: Adam with cosine decay over the run, batch 64, balanced class weights, the best checkpoint (and early
# stopping, where on) by validation balanced accuracy. The recommended one validates and keeps its weights averaged
# over the steps (momentum 0.98: about the last 50 steps); the quick one's 8 epochs are too few for the average to
# catch up, and the thorough one is the reference the others were measured against.
_SHARED_SETTINGS = {
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "schedule": "cosine",
    "batch_size": 64,
    "monitor": "val_balanced_accuracy",
    "patience": 10,
    "class_weighting": True,
}
PRESETS = {
    "recommended": Preset(
        title="Recommended",
        description="The lab's default: on gz1-3class a point or two below the thorough recipe (two seeds), in "
        "under a third of its time.",
        model="inception_small",
        image_size=48,
        settings={**_SHARED_SETTINGS, "epochs": 15, "early_stopping": True, "weight_averaging": 0.98},
    ),
    "quick": Preset(
        title="Quick",
        description="A run to watch during a lesson: the shortest preset, a point or so below the recommended one "
        "on validation.",
        model="inception_small",
        image_size=40,
        settings={**_SHARED_SETTINGS, "epochs": 8, "early_stopping": False},
    ),
    "thorough": Preset(
        title="Thorough",
        description="The lab's default until the faster presets came: three times as long as the recommended one, "
        "for the last point or two on gz1-3class's test split.",
        model="inception_small",
        image_size=64,
        settings={**_SHARED_SETTINGS, "epochs": 35, "early_stopping": True},
    ),
}
DEFAULT_PRESET = "recommended"
DEFAULT_MODEL = PRESETS[DEFAULT_PRESET].model
DEFAULT_SETTINGS = PRESETS[DEFAULT_PRESET].settings


def preset_config(
    dataset: DatasetSpec, preset: str = DEFAULT_PRESET, *, image_size: int | None = None, **overrides
) -> TrainConfig:
    """The preset's whole recipe on `dataset`, at the preset's input size unless `image_size` says otherwise;
    `overrides` change single settings."""
    if preset not in PRESETS:
        raise InvalidInputError(f"unknown preset {preset!r}; the presets are {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    dataset = dataset.with_preprocess(image_size=image_size or chosen.image_size)
    return TrainConfig(dataset=dataset, model=chosen.model, **{**chosen.settings, **overrides})


def recommended_config(dataset: DatasetSpec, model: str | None = None, **overrides) -> TrainConfig:
    """The recommended settings for `dataset` as it is (its input size kept); another model takes its own recipe's
    optimizer, rate and batch, and no model options."""
    from galaxy_core.models import model_info

    settings = dict(DEFAULT_SETTINGS)
    if model is not None and model != DEFAULT_MODEL:
        recipe = model_info(model).recipe
        settings.update(
            optimizer=recipe.optimizer,
            learning_rate=recipe.learning_rate,
            batch_size=recipe.batch_size,
            model_options={},
        )
    return TrainConfig(dataset=dataset, model=model or DEFAULT_MODEL, **{**settings, **overrides})


REVIEW_PRESET = "quick"
