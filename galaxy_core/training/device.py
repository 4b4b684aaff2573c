"""Where training runs: a GPU when TensorFlow sees one (with mixed precision), the CPU otherwise."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "GPU" or "CPU"
    names: tuple[str, ...]
    mixed_precision: bool

    def describe(self) -> str:
        if self.kind == "GPU":
            return f"GPU ({', '.join(self.names)}), mixed precision float16"
        return "CPU, float32"


def configure_device() -> DeviceInfo:
    """Set Keras' precision policy for the devices TensorFlow sees; call before building a model.

    TensorFlow places operations on the first GPU by itself. Mixed precision computes in float16 there (much
    faster on tensor cores) while keeping weights in float32; every model's output layers are float32 (see
    galaxy_core.models.layers), so losses and probabilities are never rounded to float16.
    """
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        keras.mixed_precision.set_global_policy("float32")
        return DeviceInfo("CPU", (), False)
    for gpu in gpus:
        # Take GPU memory as needed, so two runs (or the app's Grad-CAM) can share a card. A RuntimeError means
        # the GPU was already initialised in this process: it keeps its setting.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    keras.mixed_precision.set_global_policy("mixed_float16")
    return DeviceInfo("GPU", tuple(gpu.name for gpu in gpus), True)
