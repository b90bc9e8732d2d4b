"""The package's layering, read from the source: every import points down, no cycles, no big modules, and the
commands share no private names.

The parts and their order are the ones ``mlptrain/__init__.py`` documents. A
part may import itself and any part below it; nothing below ``cli`` imports
click or prints. Imports inside functions count too: a lazy import against
the layering is still a dependency.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlptrain"

# Bottom to top; parts on one line (a set) are independent of each other.
LAYERS: list[set[str]] = [
    {"errors", "fsutil", "threads", "__init__"},
    {"nn", "data"},
    {"config"},
    {"configfile"},
    {"train"},
    {"tune"},
    {"runs"},
    {"infer"},
    {"experiment"},
    {"sweep"},
    {"plots"},
    {"cli"},
    {"__main__"},  # python -m mlptrain
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
MAX_LINES = 400
ONLY_IN_CLI = {"click"}  # the terminal belongs to the command line


@functools.cache
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(path: Path, name: str) -> set[str]:
    """The mlptrain modules (or packages) ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = source_module(node, path, name)
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
    return {t for t in targets if t == "mlptrain" or t.startswith("mlptrain.")}


def source_module(node: ast.ImportFrom, path: Path, name: str) -> str:
    """The module a ``from ... import`` statement in module ``name`` (file ``path``) imports from."""
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    return base


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def resolve(target: str, known: dict[str, Path]) -> str | None:
    """The module a dotted import target names (``from a.b import c`` may name module a.b.c or a name in a.b)."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


@functools.cache
def graph() -> dict[str, set[str]]:
    known = modules()
    edges = {}
    for name, path in known.items():
        targets = {resolve(t, known) for t in imported(path, name)}
        edges[name] = {t for t in targets if t and t != name and t != "mlptrain"}
    return edges


def test_every_part_has_a_rank_and_a_docstring() -> None:
    for name, path in modules().items():
        assert part_of(name) in RANK, f"{name}: its part is not in LAYERS; place it in the layering"
        if path.name == "__init__.py" or name.count(".") == 1:
            assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_point_down(name: str) -> None:
    mine = part_of(name)
    for target in graph()[name]:
        theirs = part_of(target)
        assert theirs == mine or RANK[theirs] < RANK[mine], (
            f"{name} imports {target}: {mine} (layer {RANK[mine]}) may import only parts below it, "
            f"and {theirs} is layer {RANK[theirs]}")


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("name", sorted(n for n in modules() if part_of(n) not in {"cli", "__main__"}))
def test_the_library_neither_imports_click_nor_prints(name: str) -> None:
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & ONLY_IN_CLI, f"{name} imports click"
        elif isinstance(node, ast.ImportFrom) and not node.level:
            assert (node.module or "").split(".")[0] not in ONLY_IN_CLI, f"{name} imports click"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"{name} calls print (line {node.lineno}): report through the caller"


def private_imports(path: Path, name: str) -> list[str]:
    """``module.name`` for each underscore name ``path`` imports from another mlptrain module (dunders are public)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = source_module(node, path, name)
            found += [f"{module}.{alias.name}" for alias in node.names if module.startswith("mlptrain")
                      and module != name and _private(alias.name)]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("mlptrain.")
                      and any(_private(part) for part in alias.name.split("."))]
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("name", sorted(n for n in modules() if part_of(n) == "cli"))
def test_the_commands_import_no_private_name_of_another_module(name: str) -> None:
    """What one command module shares with another is public (cli/common.py, or the library below)."""
    assert private_imports(modules()[name], name) == [], f"{name} imports private names: make them public"


def test_the_private_import_check_catches_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from mlptrain.cli.fit import fit\n\ndef f():\n    from mlptrain.cli.fit import _dry_run, fit\n"
                   "    from .common import _click_type\n    from mlptrain import __version__\n")
    assert private_imports(bad, "mlptrain.cli.bad") == ["mlptrain.cli.fit._dry_run", "mlptrain.cli.common._click_type"]


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name: str) -> None:
    lines = len(modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES}): split it by purpose"


def test_the_layering_test_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself: an nn module importing the CLI is against the layering."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mlptrain.cli.common import Failure\n")
    targets = {resolve(t, modules()) for t in imported(bad, "mlptrain.nn.bad")}
    assert "mlptrain.cli.common" in targets
    assert RANK[part_of("mlptrain.cli.common")] > RANK[part_of("mlptrain.nn.bad")]
