"""The model registry: builders registered by name with what a teacher and the trainer need to know about them.

Adding an architecture is one module with a decorated builder plus one import line in `models/__init__.py`;
the tests loop over the registry, so a new model is tested at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from galaxy_core.errors import InvalidInputError

MODEL_REGISTRY: dict[str, ModelInfo] = {}
CHANNELS = (1, 3)
FAMILIES = ("report", "modern", "custom")


@dataclass(frozen=True)
class Recipe:
    """How a model is meant to be trained; the Train page and the CLI start from it."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    # Transfer learning: after the first phase, unfreeze layers whose names start with this and continue at
    # `fine_tune_learning_rate` for `fine_tune_epochs` (0: no second phase).
    fine_tune_prefix: str | None = None
    fine_tune_learning_rate: float = 1e-5
    fine_tune_epochs: int = 0


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    family: str  # one of FAMILIES: "report" (the student report's models), "modern", "custom"
    description: str  # what idea it shows, for teaching
    origin: str
    default_input_size: int
    min_input_size: int
    preprocessing: str
    gradcam_layer: str
    builder: Callable = field(repr=False, compare=False)
    default_channels: int = 3
    report_accuracy: float | None = None  # test accuracy in the report, for its presets
    recipe: Recipe = field(default_factory=Recipe)

    def options(self) -> dict[str, object]:
        """The builder's own options and their defaults (the keywords beyond the shared ones)."""
        shared = {"input_shape", "num_classes", "name", "classifier_activation"}
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.name not in shared and p.kind is inspect.Parameter.KEYWORD_ONLY
        }


def register_model(**info) -> Callable:
    """Register a builder under `info["name"]` with the rest of its ModelInfo."""

    def decorate(builder: Callable) -> Callable:
        name = info["name"]
        if name in MODEL_REGISTRY:
            raise InvalidInputError(f"model {name!r} is registered twice")
        MODEL_REGISTRY[name] = ModelInfo(builder=builder, **info)
        return builder

    return decorate


def list_models(family: str | None = None) -> list[str]:
    """Model names, the report's first, then modern ones, then the custom builder; each in registration order."""
    families = FAMILIES if family is None else (family,)
    return [name for wanted in families for name, info in MODEL_REGISTRY.items() if info.family == wanted]


def model_info(name: str) -> ModelInfo:
    if name not in MODEL_REGISTRY:
        raise InvalidInputError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return MODEL_REGISTRY[name]


def _check_input_shape(info: ModelInfo, input_shape) -> tuple[int, int, int]:
    if len(input_shape) != 3 or not all(isinstance(d, int) for d in input_shape):
        raise InvalidInputError(f"input_shape must be (height, width, channels) as whole numbers, got {input_shape!r}")
    height, width, channels = input_shape
    if channels not in CHANNELS:
        raise InvalidInputError(f"input channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if min(height, width) < info.min_input_size:
        raise InvalidInputError(
            f"{info.name} needs images of at least {info.min_input_size} px (its pooling would shrink smaller "
            f"ones to nothing), got {height}x{width}"
        )
    return height, width, channels


def create_model(
    name: str,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 3,
    *,
    classifier_activation: str | None = "softmax",
    **options,
):
    """Build the registered model `name` as a functional keras.Model taking raw 0-255 pixels.

    `input_shape` defaults to the model's own size and channels. `classifier_activation=None` returns logits
    (the layer named "logits" holds them either way). Unset (None) options take the builder's defaults.
    """
    info = model_info(name)
    if input_shape is None:
        input_shape = (info.default_input_size, info.default_input_size, info.default_channels)
    input_shape = _check_input_shape(info, tuple(input_shape))
    if not isinstance(num_classes, int) or num_classes < 2:
        raise InvalidInputError(f"num_classes must be a whole number >= 2, got {num_classes!r}")
    options = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(info.options()))
    if unknown:
        accepted = sorted(info.options()) or "no options"
        raise InvalidInputError(f"model {name!r} does not take {unknown}; it takes {accepted}")
    return info.builder(
        input_shape=input_shape,
        num_classes=num_classes,
        name=name,
        classifier_activation=classifier_activation,
        **options,
    )
