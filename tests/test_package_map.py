"""The package's map: its folders are layers, each importing only the layers below it, without a
circle; the settings live in one leaf module; a file name or an environment variable that several
parts share is written once."""

import ast
import os
from pathlib import Path

import pytest

from bgremove_utils.errors import ConfigError
from bgremove_utils.settings import PROFILE_ENV, PROFILES, TrainConfig, pick_profile

PACKAGE = Path(__file__).resolve().parents[1] / "bgremove_utils"
# Bottom to top; a layer may import its own part and the layers below it, never one above or beside it.
LAYERS = [
    {"errors", "paths", "files"},
    {"settings"},
    {"data", "models"},
    {"evaluation"},
    {"training", "export"},
    {"course"},
    {"bench"},
    {"cli"},
    {"__init__", "__main__"},
]


def _part(module: str) -> str:
    """The layer part of a module name: bgremove_utils.data.pairs -> data, bgremove_utils.cli -> cli."""
    return module.split(".")[1] if "." in module else "__init__"


def _level(part: str) -> int:
    return next(i for i, parts in enumerate(LAYERS) if part in parts)


def _imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports, read from its source."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                found |= {f"{target}.{a.name}" if not node.module else target for a in node.names}
        graph[name] = found
    return graph


def test_no_module_imports_a_layer_above_or_beside_it():
    wrong = []
    for module, targets in _imports().items():
        for target in targets:
            mine, theirs = _part(module), _part(target)
            if mine != theirs and _level(theirs) >= _level(mine):
                wrong.append(f"{module} -> {target}")
    assert not wrong


def test_the_imports_have_no_circle():
    imports = _imports()
    graph = {m: {t for t in ts if t in imports} for m, ts in imports.items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            assert state.get(target) != 1, " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_settings_is_a_leaf_that_imports_only_the_exceptions():
    assert _imports()["bgremove_utils.settings"] <= {"bgremove_utils.errors"}


@pytest.mark.parametrize("value", ["best.pt", "last.pt", "history.json", "BGREMOVE_PROFILE", "manifest.json"])
def test_a_shared_name_is_written_once_in_the_code(value):
    places = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None
        }
        places += [
            f"{path.name}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value == value and id(node) not in docstrings
        ]
    assert len(places) == 1, places


def test_the_default_config_is_the_cpu_profile():
    assert TrainConfig() == PROFILES["cpu"]


def test_one_rule_picks_the_profile(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "quick")
    assert pick_profile("full") == "full"  # asked for by name
    assert pick_profile() == "quick" and pick_profile(default="cpu") == "quick"  # then the environment
    monkeypatch.delenv(PROFILE_ENV)
    assert pick_profile(default="cpu") == "cpu"  # then the caller's default
    assert pick_profile() in ("full", "cpu")  # then the device: full with a CUDA GPU
    with pytest.raises(ConfigError, match="'huge'.*cpu"):
        pick_profile("huge")
    assert os.environ.get(PROFILE_ENV) is None
