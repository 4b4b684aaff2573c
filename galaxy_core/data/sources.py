"""Dataset sources, registered like models: a source is one module with its loader, its typed options, how it is
found in the data roots, how it is named in a terminal, and a short label for menus. The pages and the CLI draw
their knobs and flags from here; `galaxy_core.data.registry` builds datasets from a `DatasetSpec`.

Adding a source is one new module that calls `register_source(...)` plus one import line in registry.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from galaxy_core.data.images import PreprocessOptions
from galaxy_core.errors import InvalidInputError

PREPROCESS_KEYS = ("image_size", "crop_fraction", "channels")
# Arguments every loader takes from the factory itself, not from the spec's options.
FACTORY_ARGUMENTS = ("options", "cache_dir", "progress")


@dataclass(frozen=True)
class DatasetSpec:
    """Which dataset and how to read it: a registered source, that source's options, and the preprocessing every
    source shares. Hashable (a cache key) and picklable; stored in a run's config.json as `to_dict()`."""

    source: str
    options: tuple[tuple[str, object], ...] = ()  # sorted (name, value) pairs; unset options are left out
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)

    @classmethod
    def of(cls, source: str, preprocess: PreprocessOptions | None = None, **options: object) -> DatasetSpec:
        """A spec from keyword options; None means "the source's default" and is left out."""
        kept = tuple(sorted((key, value) for key, value in options.items() if value is not None))
        return cls(source, kept, preprocess or PreprocessOptions())

    @classmethod
    def from_dict(cls, values: dict) -> DatasetSpec:
        """The spec stored as {"name": source, "image_size": ..., "crop_fraction": ..., "channels": ..., options}.
        Raises ValueError saying what is wrong."""
        if not isinstance(values, dict) or not isinstance(values.get("name"), str):
            raise InvalidInputError(f"a dataset spec names its source, e.g. {{'name': 'synthetic'}}; got {values!r}")
        options = {key: value for key, value in values.items() if key != "name" and key not in PREPROCESS_KEYS}
        preprocess = PreprocessOptions(**{key: values[key] for key in PREPROCESS_KEYS if key in values})
        return cls.of(values["name"], preprocess, **options)

    def to_dict(self) -> dict:
        return {"name": self.source, **asdict(self.preprocess), **dict(self.options)}

    def option(self, name: str, default: object = None) -> object:
        return dict(self.options).get(name, default)

    def with_options(self, **changes: object) -> DatasetSpec:
        """The spec with options changed; a None value returns that option to its default."""
        return DatasetSpec.of(self.source, self.preprocess, **{**dict(self.options), **changes})

    def with_preprocess(self, **changes: object) -> DatasetSpec:
        """The spec with preprocessing changed (image_size, crop_fraction, channels); None keeps the current value."""
        return replace(self, preprocess=replace(self.preprocess, **{k: v for k, v in changes.items() if v is not None}))

    def same_images(self, other: DatasetSpec) -> bool:
        """Whether both specs read the same images into the same splits, whatever their preprocessing."""
        return (self.source, self.options) == (other.source, other.options)

    @property
    def path(self) -> str | None:
        """Where the data is read from, for sources that read files."""
        value = self.option("path")
        return None if value is None else str(value)


@dataclass(frozen=True)
class DatasetChoice:
    """A dataset the lab can offer: a label for menus and its spec."""

    label: str
    spec: DatasetSpec


@dataclass(frozen=True)
class SourceOption:
    """One option of a source: its type, range and help, where it is offered, and (filled from the loader's
    signature at registration) its default."""

    name: str
    help: str
    kind: type = int
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    on_page: bool = False  # a knob on the Dataset page
    flag: str | None = None  # its terminal flag; None: not offered there (e.g. a path, given as the dataset name)
    default: object = None  # the loader's default
    required: bool = False  # the loader has no default

    def check(self, value: object) -> None:
        """Raises ValueError saying what was received and what was expected."""
        wanted = (int, float) if self.kind is float else self.kind
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise InvalidInputError(f"{self.name} must be a {self.kind.__name__}, got {value!r}")
        if self.choices and value not in self.choices:
            raise InvalidInputError(f"{self.name} must be one of {list(self.choices)}, got {value!r}")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise InvalidInputError(f"{self.name} must be from {self.minimum} to {self.maximum}, got {value!r}")


# Options several sources share: how a dataset without split folders is split.
SEED = SourceOption("seed", "seed for rendering and for splitting", minimum=0, maximum=2**31 - 1, flag="--data-seed")
VAL_FRACTION = SourceOption(
    "val_fraction", "share carved for val where none exists", float, minimum=0, maximum=0.5, flag="--val-fraction"
)
TEST_FRACTION = SourceOption(
    "test_fraction", "share carved for testing where none exists", float, minimum=0, maximum=0.5, flag="--test-fraction"
)
PATH = SourceOption("path", "where the data is", str)


@dataclass(frozen=True)
class DatasetSource:
    name: str
    title: str  # for menus and help: "Synthetic galaxies (built in, offline)"
    load: Callable  # load(<options>, options=PreprocessOptions, cache_dir=, progress=) -> Dataset
    options: tuple[SourceOption, ...]
    label: Callable[[DatasetSpec], str]  # a short name for menus: "gz1-3class", "synthetic, hard"
    discover: Callable  # discover(settings) -> list[DatasetChoice]
    from_text: Callable  # from_text(text, settings) -> DatasetSpec | None: the spec for a name typed in a terminal
    text_help: str  # what from_text understands, for help and errors
    # decoded_bytes(spec) -> the memory its loader takes at its peak, found without decoding (a listing or a file's
    # header at most): what a server's dataset memory budget is checked against.
    decoded_bytes: Callable[[DatasetSpec], int]

    def option(self, name: str) -> SourceOption:
        for option in self.options:
            if option.name == name:
                return option
        raise InvalidInputError(f"dataset source {self.name!r} does not take {name!r}; it takes {self.option_names}")

    @property
    def option_names(self) -> list[str]:
        return [option.name for option in self.options]


DATASET_SOURCES: dict[str, DatasetSource] = {}


def register_source(source: DatasetSource) -> DatasetSource:
    """Add a source; its options must be exactly its loader's own parameters, whose defaults they take."""
    if source.name in DATASET_SOURCES:
        raise InvalidInputError(f"dataset source {source.name!r} is registered twice")
    parameters = inspect.signature(source.load).parameters
    own = [name for name in parameters if name not in FACTORY_ARGUMENTS]
    if sorted(own) != sorted(source.option_names):
        raise InvalidInputError(f"source {source.name!r}: options {source.option_names} are not its loader's {own}")
    empty = inspect.Parameter.empty
    options = tuple(
        replace(option, default=None, required=True)
        if parameters[option.name].default is empty
        else replace(option, default=parameters[option.name].default)
        for option in source.options
    )
    DATASET_SOURCES[source.name] = replace(source, options=options)
    return DATASET_SOURCES[source.name]


def dataset_source(name: str) -> DatasetSource:
    if name not in DATASET_SOURCES:
        raise InvalidInputError(f"unknown dataset source {name!r}; known sources: {sorted(DATASET_SOURCES)}")
    return DATASET_SOURCES[name]


def existing_path(text: str, roots) -> Path | None:
    """`text` as an existing path, or as the name of something inside one of the data roots; None otherwise."""
    path = Path(text).expanduser()
    if path.exists():
        return path.resolve()
    return next(((root / text).resolve() for root in roots if (root / text).exists()), None)
