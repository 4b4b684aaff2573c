"""Architecture: what a network is made of, what it costs, and what each of its parts does."""

from dataclasses import asdict

import pandas as pd
import streamlit as st

from galaxy_core.models import create_model, list_models, model_info
from galaxy_core.models.custom import HEADS, POOLING
from galaxy_core.models.glossary import TRAINING_EXPLANATIONS, explain_layer_types
from galaxy_core.models.summary import count_macs, graph_dot, layer_table, parameter_counts, size_bytes
from pages.ui.display import as_message, lazy_tabs
from pages.ui.identity import Viewer
from pages.ui.navigation import run_router
from pages.ui.runs import model_label
from pages.ui.state import active_dataset_spec
from pages.ui.symmetry import symmetry_ui

LARGE_GRAPH = 80


@st.cache_resource(max_entries=6, show_spinner="Building the model…")
def build(name: str, input_shape: tuple, num_classes: int, options: tuple):
    return create_model(name, input_shape, num_classes, **dict(options))


@st.cache_data(max_entries=12, show_spinner=False)
def describe(name: str, input_shape: tuple, num_classes: int, options: tuple) -> dict:
    """Everything the page shows about a model, as plain data (cached per model and settings)."""
    model = build(name, input_shape, num_classes, options)
    rows = layer_table(model)
    return {
        "rows": [asdict(row) for row in rows],
        "parameters": parameter_counts(model),
        "size_mb": size_bytes(model) / 1e6,
        "mmacs": count_macs(model) / 1e6,
        "dot": graph_dot(model),
        "types": [row.type for row in rows],
        "weights_source": getattr(model, "weights_source", None),
    }


def custom_options_ui(prefix: str) -> dict:
    """The custom CNN's knobs."""
    defaults = model_info("custom_cnn").options()
    left, middle, right = st.columns(3)
    return {
        "blocks": left.slider("Conv blocks", 1, 6, defaults["blocks"], key=f"{prefix}_blocks"),
        "filters": left.select_slider("Filters in block 1", [8, 16, 32, 64], defaults["filters"], key=f"{prefix}_f"),
        "convs_per_block": left.slider(
            "Convolutions per block", 1, 4, defaults["convs_per_block"], key=f"{prefix}_convs"
        ),
        "kernel_size": middle.select_slider("Kernel size", [1, 3, 5, 7], defaults["kernel_size"], key=f"{prefix}_k"),
        "batch_norm": middle.toggle("Batch normalisation", defaults["batch_norm"], key=f"{prefix}_bn"),
        "pooling": middle.selectbox("Downsampling", POOLING, key=f"{prefix}_pool"),
        "head": right.selectbox(
            "Head",
            HEADS,
            format_func=lambda h: {"gap": "Global average pooling", "flatten": "Flatten"}[h],
            key=f"{prefix}_head",
        ),
        "dense_units": right.select_slider(
            "Dense units before the output", [0, 64, 128, 256], defaults["dense_units"], key=f"{prefix}_dense"
        ),
        "dropout": right.slider("Dropout", 0.0, 0.8, defaults["dropout"], 0.1, key=f"{prefix}_dropout"),
    }


def model_choice_ui() -> tuple[str, tuple, int, dict]:
    """The model and the settings it is built with: (name, input shape, classes, options)."""
    name = st.selectbox("Model", list_models(), format_func=model_label, key="architecture_model", bind="query-params")
    info = model_info(name)
    dataset = active_dataset_spec()
    size_col, channel_col, class_col = st.columns(3)
    size = size_col.number_input(
        "Input size (px)",
        info.min_input_size,
        512,
        max(info.min_input_size, info.default_input_size),
        key=f"architecture_size_{name}",
        help=f"{info.title} is designed for {info.default_input_size} px; it needs at least {info.min_input_size} px.",
    )
    channels = channel_col.radio(
        "Channels",
        [3, 1],
        index=[3, 1].index(dataset.preprocess.channels),
        format_func=lambda c: "RGB" if c == 3 else "Grayscale",
        horizontal=True,
    )
    classes = class_col.number_input("Classes", 2, 20, 3)
    options = custom_options_ui("architecture") if name == "custom_cnn" else {}
    return name, (int(size), int(size), channels), int(classes), options


SIZE_NOTE = (
    "A model that flattens its last feature map (the report's Tutorial and Practice 4-5, VGG16 as in the report) has "
    "more weights in its first dense layer at a larger input; one that pools it globally has as many at any size."
)


def overview_ui(name: str, report: dict, size: int) -> None:
    info = model_info(name)
    st.markdown(info.description)
    facts = [
        f"**Origin**: {info.origin}",
        f"**Preprocessing inside the model**: {info.preprocessing}",
        f"**Grad-CAM looks at**: `{info.gradcam_layer}`",
    ]
    if info.report_accuracy is not None:
        facts.append(f"**Test accuracy in the report**: {info.report_accuracy:.2%}")
    if report["weights_source"]:
        facts.append(f"**Weights**: {report['weights_source']}")
    recipe = info.recipe
    facts.append(
        f"**Training recipe**: {recipe.optimizer} at learning rate {recipe.learning_rate:g}, batch "
        f"{recipe.batch_size}"
        + (
            f"; then fine-tune `{recipe.fine_tune_prefix}*` at {recipe.fine_tune_learning_rate:g}"
            if recipe.fine_tune_prefix
            else ""
        )
    )
    st.markdown("  \n".join(facts))
    columns = st.columns(4)
    columns[0].metric(f"Parameters at {size} px", f"{report['parameters']['total']:,}", help=SIZE_NOTE)
    columns[1].metric("Trainable", f"{report['parameters']['trainable']:,}")
    columns[2].metric("Weights in memory", f"{report['size_mb']:.1f} MB")
    columns[3].metric("Multiply-adds / image", f"{report['mmacs']:,.1f} M")


def layers_ui(report: dict) -> None:
    table = pd.DataFrame(report["rows"]).rename(
        columns={"output_shape": "output shape", "multiply_adds": "multiply-adds"}
    )
    st.dataframe(table, hide_index=True, column_config={"parameters": st.column_config.NumberColumn(format="%d")})
    st.caption(
        "Output shapes leave out the batch dimension. Multiply-adds are counted for convolutions and dense "
        "layers, which do nearly all the work."
    )


def diagram_ui(report: dict) -> None:
    if len(report["rows"]) > LARGE_GRAPH:
        st.info(f"{len(report['rows'])} layers: a long diagram. Scroll inside it, or look at the layer table.")
    st.graphviz_chart(report["dot"])


def explanations_ui(report: dict) -> None:
    for type_name, text in explain_layer_types(report["types"]):
        st.markdown(f"**{type_name}**: {text}")
    st.divider()
    st.markdown("**How it learns**")
    for topic, text in TRAINING_EXPLANATIONS.items():
        st.markdown(f"**{topic.capitalize()}**: {text}")


def compare_ui(name: str, input_shape: tuple, classes: int, report: dict) -> None:
    other = st.selectbox("Compare with", [n for n in list_models() if n != name], format_func=model_label)
    other_info = model_info(other)
    other_size = max(input_shape[0], other_info.min_input_size)
    other_report = describe(other, (other_size, other_size, input_shape[2]), classes, ())
    rows = []
    for label, model_name, size, data in (
        (model_label(name), name, input_shape[0], report),
        (model_label(other), other, other_size, other_report),
    ):
        info = model_info(model_name)
        rows.append(
            {
                "model": label,
                "input px": size,
                "layers": len(data["rows"]),
                "parameters": data["parameters"]["total"],
                "weights MB": round(data["size_mb"], 2),
                "M multiply-adds / image": round(data["mmacs"], 1),
                "report accuracy": f"{info.report_accuracy:.2%}" if info.report_accuracy is not None else "",
            }
        )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={"parameters": st.column_config.NumberColumn(format="localized")},
    )
    st.caption(f"Both at the input size chosen above unless a model needs more. {SIZE_NOTE}")
    if other_size != input_shape[0]:
        st.caption(f"{other_info.title} needs at least {other_info.min_input_size} px, so it is shown at that size.")


def render(viewer: Viewer) -> None:
    """Draw the Architecture page."""
    st.title("Architecture")
    name, input_shape, classes, options = model_choice_ui()
    option_items = tuple(sorted(options.items()))
    try:
        report = describe(name, input_shape, classes, option_items)
    except ValueError as error:
        st.error(f"This model cannot be built with these settings: {as_message(error)}")
        st.stop()

    lazy_tabs(
        "architecture_tab",
        {
            "Overview": lambda: overview_ui(name, report, input_shape[0]),
            "Layers": lambda: layers_ui(report),
            "Diagram": lambda: diagram_ui(report),
            "What the layers do": lambda: explanations_ui(report),
            "Compare": lambda: compare_ui(name, input_shape, classes, report),
            "Symmetry": lambda: symmetry_ui(viewer),
        },
    )


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
