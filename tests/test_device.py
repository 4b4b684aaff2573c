"""The GPU path, checked without a GPU: a faked device list must switch on memory growth and mixed precision,
and models must still produce float32 outputs under mixed precision."""

from dataclasses import dataclass

import keras
import numpy as np
import pytest
import tensorflow as tf

from galaxy_core.models import create_model
from galaxy_core.training.device import configure_device


@dataclass
class FakeGPU:
    name: str
    device_type: str = "GPU"


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_cpu_only_machine_trains_in_float32(restore_policy):
    device = configure_device()
    assert device.kind == "CPU" and not device.mixed_precision
    assert keras.mixed_precision.global_policy().name == "float32"
    assert device.describe() == "CPU, float32"


def test_a_visible_gpu_turns_on_memory_growth_and_mixed_precision(monkeypatch, restore_policy):
    gpus = [FakeGPU("/physical_device:GPU:0"), FakeGPU("/physical_device:GPU:1")]
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.append((gpu.name, on)))
    device = configure_device()
    assert device.kind == "GPU" and device.mixed_precision
    assert grown == [(gpu.name, True) for gpu in gpus]
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert "GPU:0" in device.describe() and "mixed precision" in device.describe()


@pytest.mark.parametrize("name", ["practice1", "resnet_small", "mobilenet_v2"])
def test_models_under_mixed_precision_compute_in_float16_and_answer_in_float32(name, restore_policy):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = create_model(name, (64, 64, 3), 3)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == "float16"
    assert model.get_layer("logits").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    probabilities = model.predict(np.full((1, 64, 64, 3), 100, "float32"), verbose=0)
    assert probabilities.dtype == np.float32 and np.isclose(probabilities.sum(), 1, atol=1e-3)
