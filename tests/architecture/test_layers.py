"""The layers are enforced, not just described: wrong-way imports and import cycles fail here.

Every ``import`` statement of the package counts, wherever it stands (module level, inside a
function, under ``if TYPE_CHECKING``), so a cycle cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrcrypt._layers import LAYERS, OPTIONAL_DEPENDENCIES, layer_of

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ecrcrypt"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str) -> Iterator[tuple[int, str, bool]]:
    """``(line, imported module, at module level)`` for each ecrcrypt module ``name`` imports."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    top_level = {id(n) for n in tree.body}
    for stmt in tree.body:  # `if TYPE_CHECKING:` blocks count as module level
        if isinstance(stmt, ast.If):
            top_level |= {id(n) for n in stmt.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(name, node)
            if module is None:
                continue
            for alias in node.names:
                # `from ecrcrypt.x import y` imports the module ecrcrypt.x.y when there is one.
                sub = f"{module}.{alias.name}"
                yield node.lineno, sub if sub in MODULES else module, id(node) in top_level


def internal_edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name in MODULES:
        for _, target, _ in imports_of(name):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or ``None`` (iterative DFS)."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for start in sorted(graph):
        if color[start] != white:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        color[start] = grey
        path = [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                color[node] = black
                stack.pop()
                path.pop()
            elif color.get(child, black) == grey:
                return [*path[path.index(child) :], child]
            elif color.get(child) == white:
                color[child] = grey
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_every_module_has_a_layer() -> None:
    missing = [m for m in MODULES if layer_of(m) is None]
    assert not missing, f"modules outside the layer table of ecrcrypt/_layers.py: {missing}"


def test_no_import_goes_up_the_layers() -> None:
    names = [layer for layer, _ in LAYERS]
    wrong = []
    for name in MODULES:
        own = layer_of(name)
        assert own is not None
        for line, target, _ in imports_of(name):
            if not target.startswith("ecrcrypt"):
                continue
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                wrong.append(
                    f"{_rel(MODULES[name])}:{line} imports {target}: "
                    f"the {names[own]} layer may not import the {names[theirs]} layer"
                )
    assert not wrong, "wrong-way imports (order: " + " < ".join(names) + "):\n" + "\n".join(wrong)


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(internal_edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_subpackages() -> None:
    def package_of(module: str) -> str:
        return module if _is_package(module) else module.rpartition(".")[0]

    graph: dict[str, set[str]] = {}
    for source, targets in internal_edges().items():
        src = package_of(source)
        graph.setdefault(src, set())
        for target in targets:
            dst = package_of(target)
            graph.setdefault(dst, set())
            # A package's __init__ re-exporting its own modules is containment, not a cycle.
            if dst != src and not dst.startswith(src + ".") and not src.startswith(dst + "."):
                graph[src].add(dst)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between subpackages: " + " -> ".join(cycle or [])


def test_imports_stand_at_module_top_except_optional_dependencies() -> None:
    late = []
    for name in MODULES:
        for line, target, top in imports_of(name):
            if not top and target.split(".")[0] not in OPTIONAL_DEPENDENCIES:
                late.append(f"{_rel(MODULES[name])}:{line} imports {target} inside a function")
    assert not late, "\n".join(late)


def test_the_checker_catches_a_wrong_way_import(tmp_path: Path) -> None:
    # The check must be able to fail: a streams module importing the ECR layer is reported.
    probe = "ecrcrypt.streams._probe"
    MODULES[probe] = tmp_path / "_probe.py"
    MODULES[probe].write_text("from ecrcrypt.ecr.registry import Registry\n")
    try:
        with pytest.raises(AssertionError, match=r"_probe.py:1 imports ecrcrypt.ecr.registry: the streams layer"):
            test_no_import_goes_up_the_layers()
    finally:
        del MODULES[probe]


def test_the_checker_catches_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_ecrcrypt_loads_no_optional_dependency() -> None:
    import subprocess

    code = (
        "import sys, ecrcrypt; "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(OPTIONAL_DEPENDENCIES)!r}); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import ecrcrypt loaded optional dependencies: {out}"


def test_architecture_doc_shows_the_layer_table() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for layer, prefixes in LAYERS:
        row = f"| `{layer}` | " + ", ".join(f"`{p}`" for p in prefixes) + " |"
        assert row in doc, f"docs/architecture.md does not show the layer row {row!r}"
