"""The library's layers point one way: data and models, then training, then answers from runs and uploads, then
the CLI. A module may import its own layer and the ones below, never one above; nothing imports Streamlit."""

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "galaxy_core"
LAYERS = [
    (
        "galaxy_core.errors",
        "galaxy_core.files",
        "galaxy_core.settings",
        "galaxy_core.install",
        "galaxy_core.runtime",
        "galaxy_core.evaluation",
        "galaxy_core.data",
        "galaxy_core.models",
        "galaxy_core.prediction",
        "galaxy_core.explain",
        "galaxy_core.convolution",
    ),
    ("galaxy_core.training",),
    ("galaxy_core.inference", "galaxy_core.uploads", "galaxy_core.export", "galaxy_core.review"),
    ("galaxy_core.cli",),
]


def layer_of(module: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(module == member or module.startswith(member + ".") for member in members):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "galaxy_core")
    return names


MODULES = sorted(p for p in LIBRARY.rglob("*.py") if p.name != "__init__.py" or p.parent != LIBRARY)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(LIBRARY)))
def test_imports_point_down_the_layers(path):
    module = ".".join(path.relative_to(LIBRARY.parent).with_suffix("").parts).removesuffix(".__init__")
    imported = imported_modules(path)
    assert not {name for name in imported if name.split(".")[0] == "streamlit"}, "the library never imports Streamlit"
    upward = sorted(
        name
        for name in imported
        if name.startswith("galaxy_core.") and name != "galaxy_core" and layer_of(name) > layer_of(module)
    )
    assert not upward, f"{module} (layer {layer_of(module)}) imports from a higher layer: {upward}"
