"""The layout rules import-linter cannot check (it sees imports, not names or strings).

import-linter (``lint-imports``, run by scripts/test.sh) holds the layers and the absence of
cycles; these tests hold the rest of what docs/architecture.md promises:

- every module of the package sits in a layer the contract names, so a new top-level module
  cannot slip outside the checked layers;
- no module imports another module's private (``_name``) names;
- Redis key names are built in ``blackboard/store/keys.py`` and nowhere else.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "blackboard"


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _contract_layers() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.split("|")}


def test_every_module_sits_in_a_layer_of_the_contract() -> None:
    layers = _contract_layers()
    assert layers, "the layers contract lists no layers"
    outside = []
    for name, _ in _modules():
        top = ".".join(name.split(".")[:2])
        if name in ("blackboard", "blackboard.__main__"):
            continue  # the package's face and `python -m blackboard` sit above every layer
        if top not in layers:
            outside.append(name)
    assert not outside, f"modules outside every layer of [tool.importlinter]: {outside}"


def _private_imports(name: str, tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.level:  # relative imports are not used in this package; say so if one appears
            found.append(f"{name}: relative import from {'.' * node.level}{node.module}")
            continue
        if not node.module.startswith("blackboard"):
            continue
        if node.module == name:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{name} imports {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = [line for name, path in _modules() for line in _private_imports(name, _tree(path))]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def _key_literals(tree: ast.Module) -> list[int]:
    """Lines with a string constant holding a Redis key prefix ``bb:{`` (docstrings aside)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and "bb:{" in node.value
        and id(node) not in docstrings
    ]


def test_key_names_are_built_only_in_the_keys_module() -> None:
    keys_module = PACKAGE / "store" / "keys.py"
    found = {
        str(path.relative_to(ROOT)): lines
        for _, path in _modules()
        if path != keys_module and (lines := _key_literals(_tree(path)))
    }
    assert not found, f"Redis key names written outside blackboard/store/keys.py: {found}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('K = "bb:{b}:log"\n', [1]),
        ('def f(b):\n    return f"bb:{{{b}}}:rev"\n', [2]),
        ('U = f"bb:{b}:role:x"\n', []),  # an ACL user name, not a key
        ('"""A docstring may show ``bb:{B}:log``."""\n', []),
    ],
)
def test_key_literal_scan_finds_what_it_should(source: str, expected: list[int]) -> None:
    assert _key_literals(ast.parse(source)) == expected


def test_private_import_scan_finds_what_it_should() -> None:
    tree = ast.parse(
        "from blackboard.board.client import _schemas\nfrom blackboard.errors import X\n"
    )
    assert _private_imports("blackboard.board.proposals", tree) == [
        "blackboard.board.proposals imports blackboard.board.client._schemas"
    ]
