"""The code's shape: the library's layers point one way (data and models, then training, then answers from runs and
uploads, then the CLI), inside the training package too; no module imports itself back through others; nothing in
the library imports Streamlit; no function is over 60 lines."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "galaxy_core"
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
        # What a run answers: its lower modules (the rest are above training).
        "galaxy_core.answers",
        "galaxy_core.answers.prediction",
        "galaxy_core.answers.explain",
        "galaxy_core.convolution",
        # The class's room, but its board and lesson (which read runs and their answers, below).
        "galaxy_core.classroom",
    ),
    # The training package, bottom up: a run's life, its config and records, the run store, what every kind
    # shares, the kinds, the procedure, where runs execute, the service and its client.
    ("galaxy_core.training.lifecycle",),
    ("galaxy_core.training.config", "galaxy_core.training.records", "galaxy_core.training.device"),
    ("galaxy_core.training.store", "galaxy_core.training.service"),
    (
        "galaxy_core.training.recipe",
        "galaxy_core.training.callbacks",
        "galaxy_core.training.fair_share",
        "galaxy_core.training.features",
    ),
    ("galaxy_core.training.kinds",),
    ("galaxy_core.training.procedure", "galaxy_core.training.estimate"),
    ("galaxy_core.training.worker", "galaxy_core.training.executors"),
    ("galaxy_core.training.ray_executor",),
    ("galaxy_core.training.supervisor",),
    ("galaxy_core.training.client", "galaxy_core.training"),
    (
        "galaxy_core.answers.inference",
        "galaxy_core.answers.members",
        "galaxy_core.answers.uploads",
        "galaxy_core.answers.export",
        "galaxy_core.answers.review",
        "galaxy_core.classroom.board",
        "galaxy_core.classroom.lesson",
        "galaxy_core.classroom.submissions",
        "galaxy_core.warm_up",
    ),
    ("galaxy_core.cli",),
]
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


MODULES = {module_name(path): path for path in sorted(LIBRARY.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer of the longest LAYERS entry that names the module or a package holding it."""
    matches = [
        (len(member), index)
        for index, members in enumerate(LAYERS)
        for member in members
        if module == member or module.startswith(member + ".")
    ]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return max(matches)[1]


def type_checking_blocks(tree: ast.Module) -> set[ast.AST]:
    """The statements under `if TYPE_CHECKING:` (imports for type hints alone, which never run)."""
    return {
        statement
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in node.body
    }


def imported_modules(path: Path, hints: bool = False) -> set[str]:
    """The library modules a file imports, anywhere in it (a deferred import counts; one for type hints alone only
    with `hints`): `from package import name` names the submodule when there is one, else the package."""
    names = set()
    tree = ast.parse(path.read_text())
    hints_only = set() if hints else type_checking_blocks(tree)
    for node in ast.walk(tree):
        if node in hints_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULES else node.module)
    return names


def library_imports(module: str, hints: bool = False) -> set[str]:
    return {name for name in imported_modules(MODULES[module], hints) if name in MODULES and name != module}


@pytest.mark.parametrize("module", MODULES, ids=str)
def test_imports_point_down_the_layers(module):
    imported = imported_modules(MODULES[module])
    assert not {name for name in imported if name.split(".")[0] == "streamlit"}, "the library never imports Streamlit"
    upward = sorted(name for name in library_imports(module) if layer_of(name) > layer_of(module))
    assert not upward, f"{module} (layer {layer_of(module)}) imports from a higher layer: {upward}"


def test_no_module_imports_itself_back():
    """No import circle, however long, deferred imports and imports for type hints alone included (a package's
    __init__ importing its modules is not one: they do not import the package back)."""
    graph = {module: library_imports(module, hints=True) for module in MODULES}
    visiting, done, circles = [], set(), []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            circles.append(" -> ".join([*visiting[visiting.index(module) :], module]))
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_circle_finder_finds_a_circle(tmp_path, monkeypatch):
    """The check above can fail: two modules that import each other are a circle."""
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / f"{name}.py").write_text(f"def f():\n    from galaxy_core.{other} import f\n")
    monkeypatch.setitem(MODULES, "galaxy_core.a", tmp_path / "a.py")
    monkeypatch.setitem(MODULES, "galaxy_core.b", tmp_path / "b.py")
    with pytest.raises(AssertionError, match=r"galaxy_core\.a -> galaxy_core\.b -> galaxy_core\.a"):
        test_no_module_imports_itself_back()


def long_functions(paths) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_over_60_lines_outside_the_tests():
    paths = [*LIBRARY.rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py", *ROOT.glob("benchmarks/*.py")]
    assert not long_functions(paths), long_functions(paths)


def kind_references(tree: ast.AST, kinds: set[str]) -> list[int]:
    """The lines where code names a run kind: compares something with a kind's name, or sets a config's kind."""

    def names_a_kind(node) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in kinds
        return isinstance(node, ast.Tuple | ast.List | ast.Set) and any(names_a_kind(item) for item in node.elts)

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(names_a_kind(part) for part in [node.left, *node.comparators]):
            lines.append(node.lineno)
        elif isinstance(node, ast.keyword) and node.arg == "kind" and names_a_kind(node.value):
            lines.append(node.value.lineno)
        elif isinstance(node, ast.Dict):
            pairs = zip(node.keys, node.values, strict=True)
            lines += [
                value.lineno
                for key, value in pairs
                if isinstance(key, ast.Constant) and key.value == "kind" and names_a_kind(value)
            ]
    return lines


def test_a_run_kind_is_named_only_in_its_own_module():
    """What a kind is and does lives in training/kinds/ (its traits tell readers what they need); no page, board,
    CLI or reader compares a run with a kind's name or makes a config of a kind by name. (The default kind, "train",
    is also a split's name, and the configs' default: it is left out.)"""
    from galaxy_core.training.config import DEFAULT_KIND
    from galaxy_core.training.kinds import RUN_KINDS

    kinds = set(RUN_KINDS) - {DEFAULT_KIND}
    outside = [
        path
        for path in [*LIBRARY.rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]
        if not path.is_relative_to(LIBRARY / "training" / "kinds")
    ]
    found = {
        str(path.relative_to(ROOT)): lines
        for path in outside
        if (lines := kind_references(ast.parse(path.read_text()), kinds))
    }
    assert not found, f"kinds named outside galaxy_core/training/kinds: {found}"


def test_a_kind_is_reached_through_the_registry_by_the_cli_and_through_its_own_form_by_the_pages():
    """The CLI adds each kind's flags and commands from the registry (its `CommandLine`) and imports no kind's
    module; on the pages, only pages/ui/kinds/<kind>.py imports galaxy_core.training.kinds.<kind>."""
    from galaxy_core.training.kinds import RUN_KINDS

    kind_modules = {f"galaxy_core.training.kinds.{name}": name for name in RUN_KINDS}
    found = []
    for path in [*(LIBRARY / "cli").glob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]:
        own = path.stem if path.parent == ROOT / "pages" / "ui" / "kinds" else None
        found += [
            f"{path.relative_to(ROOT)} imports {module}"
            for module in imported_modules(path, hints=True) & set(kind_modules)
            if kind_modules[module] != own
        ]
    assert not found, found
    assert {path.stem for path in (ROOT / "pages" / "ui" / "kinds").glob("*.py")} >= set(RUN_KINDS)  # a form each
