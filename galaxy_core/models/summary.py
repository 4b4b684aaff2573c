"""What a model is made of: a layer table, parameter and size totals, multiply-adds, and its graph as DOT text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    output_shape: str
    parameters: int
    trainable: bool
    multiply_adds: int


def _weight_count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def _spatial_positions(layer) -> int:
    """How many positions a layer's kernel is applied at: H * W of its output (1 for a vector)."""
    shape = layer.output.shape
    return int(np.prod(shape[1:-1])) if len(shape) > 2 else 1


def layer_multiply_adds(layer) -> int:
    """Multiply-adds per image of a layer with kernels (convolutions of every kind, dense); 0 for the rest.

    A kernel is applied once per output position (a p4m convolution's, in each of its 8 orientations), and each
    application costs one multiply-add per kernel entry (for a depthwise convolution the kernel has one slice per
    input channel, so the same rule holds).
    """
    kernels = [w for w in layer.weights if "kernel" in w.path.rsplit("/", 1)[-1]]
    uses = getattr(layer, "kernel_uses_per_position", 1)  # a p4m convolution applies its kernel in 8 orientations
    return _weight_count(kernels) * _spatial_positions(layer) * uses if kernels else 0


def layer_table(model) -> list[LayerRow]:
    return [
        LayerRow(
            name=layer.name,
            type=type(layer).__name__,
            output_shape=str(tuple(layer.output.shape[1:])),
            parameters=_weight_count(layer.weights),
            trainable=layer.trainable,
            multiply_adds=layer_multiply_adds(layer),
        )
        for layer in model.layers
    ]


def count_macs(model) -> int:
    """Multiply-adds for one image through the whole model."""
    return sum(layer_multiply_adds(layer) for layer in model.layers)


def parameter_counts(model) -> dict[str, int]:
    trainable = _weight_count(model.trainable_weights)
    total = _weight_count(model.weights)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def size_bytes(model) -> int:
    """Memory the weights take (the .keras file is about this size)."""
    return int(sum(np.prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.weights))


def _sources(node_args) -> list[str]:
    """Names of the layers whose outputs feed a node (keras_history entries, at any depth of the args)."""
    if isinstance(node_args, dict):
        history = (
            node_args.get("config", {}).get("keras_history")
            if node_args.get("class_name") == "__keras_tensor__"
            else None
        )
        if history:
            return [history[0]]
        return [name for value in node_args.values() for name in _sources(value)]
    if isinstance(node_args, list | tuple):
        return [name for value in node_args for name in _sources(value)]
    return []


def graph_dot(model, max_layers: int = 400) -> str:
    """The layer graph in Graphviz DOT: one box per layer (name, type, output shape), an edge per connection."""
    rows = {row.name: row for row in layer_table(model)}
    lines = [
        "digraph model {",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, fillcolor="#e8eef7"];',
    ]
    layers = model.get_config()["layers"][:max_layers]
    for layer in layers:
        row = rows[layer["name"]]
        label = f"{row.name}\\n{row.type} {row.output_shape}"
        lines.append(f'  "{row.name}" [label="{label}"];')
        for node in layer["inbound_nodes"]:
            for source in dict.fromkeys(_sources(node.get("args", []))):
                lines.append(f'  "{source}" -> "{row.name}";')
    if len(model.layers) > max_layers:
        lines.append(f'  "more" [label="... {len(model.layers) - max_layers} more layers", shape=plaintext];')
    lines.append("}")
    return "\n".join(lines)
