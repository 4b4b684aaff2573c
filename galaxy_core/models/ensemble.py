"""Several trained networks answering as one: their class probabilities averaged, in one functional Keras model.

The ensemble model takes the image once, feeds it to each member (a nested model named member_1, member_2, ...)
and averages the members' probabilities with fixed weights (`MemberAverage`, the one layer it adds). Saved as a
.keras file it is a model like any other: it loads in safe mode, predicts, exports and can be occluded; Grad-CAM,
whose gradients need one network's layers, reads each member (`ensemble_members`).
"""

from __future__ import annotations

import keras
import numpy as np

from galaxy_core.errors import InvalidInputError

MEMBER_PREFIX = "member_"


@keras.saving.register_keras_serializable(package="galaxy_core")
class MemberAverage(keras.layers.Layer):
    """The weighted mean of the members' probability vectors (the weights are normalised to sum to 1)."""

    def __init__(self, weights: list[float], **kwargs):
        super().__init__(**kwargs)
        self.member_weights = [float(weight) for weight in normalised_weights(weights)]

    def call(self, inputs):
        stacked = keras.ops.stack([keras.ops.cast(member, self.compute_dtype) for member in inputs], axis=0)
        weights = keras.ops.convert_to_tensor(np.array(self.member_weights), dtype=self.compute_dtype)
        return keras.ops.tensordot(weights, stacked, axes=1)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def get_config(self):
        return {**super().get_config(), "weights": self.member_weights}


def normalised_weights(weights) -> np.ndarray:
    """`weights` scaled to sum to 1; InvalidInputError for none, a negative one or all zero."""
    values = np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or not len(values) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidInputError(f"member weights must be numbers >= 0, got {list(weights)!r}")
    if values.sum() <= 0:
        raise InvalidInputError("at least one member needs a weight above 0")
    return values / values.sum()


def average_models(members: list, weights: list[float] | None = None, name: str = "ensemble") -> keras.Model:
    """One model whose output is the (weighted) mean of the members' outputs; every member takes the same input
    shape and answers with as many classes (InvalidInputError saying which does not)."""
    if not members:
        raise InvalidInputError("an ensemble needs at least one member")
    weights = [1.0] * len(members) if weights is None else list(weights)
    if len(weights) != len(members):
        raise InvalidInputError(f"{len(members)} members but {len(weights)} weights")
    shape, classes = tuple(members[0].input_shape[1:]), members[0].output_shape[-1]
    for number, member in enumerate(members, start=1):
        if tuple(member.input_shape[1:]) != shape:
            raise InvalidInputError(f"member {number} takes images of {member.input_shape[1:]}, the first {shape}")
        if member.output_shape[-1] != classes:
            raise InvalidInputError(
                f"member {number} answers with {member.output_shape[-1]} classes, the first {classes}"
            )
    image = keras.Input(shape=shape, name="image")
    outputs = [
        keras.Model(member.inputs[0], member.outputs[0], name=f"{MEMBER_PREFIX}{number}")(image)
        for number, member in enumerate(members, start=1)
    ]
    return keras.Model(image, MemberAverage(weights, name="member_average")(outputs), name=name)


def ensemble_members(model) -> list[tuple[keras.Model, float]]:
    """(member network, weight) of each member of an ensemble model, in order; [] for any other model."""
    averages = [layer for layer in model.layers if isinstance(layer, MemberAverage)]
    if not averages:
        return []
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return list(zip(members, averages[0].member_weights, strict=True))
