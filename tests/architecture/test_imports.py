"""The runtime's import graph: no cycles in lambdas/, the pure domain stays pure, synth imports only contracts.

Every import counts, including those inside functions and under ``TYPE_CHECKING`` (read with ``ast``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAMBDAS = REPO / "lambdas"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of `root` it imports (`from pkg import mod` counts as importing pkg.mod)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: {m for m in imported_modules(path) if m in files and m != name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path that starts and ends at the same module (None when the graph is acyclic)."""
    done: set[str] = set()
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        on_path: dict[str, list[str]] = {}
        while stack:
            node, path = stack.pop()
            if node in done:
                continue
            on_path[node] = path
            for nxt in sorted(graph[node]):
                if nxt in path:
                    return [*path[path.index(nxt) :], nxt]
                stack.append((nxt, [*path, nxt]))
        done.update(on_path)
    return None


def test_find_cycle_sees_a_cycle_and_a_clean_graph() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_in_lambdas() -> None:
    assert find_cycle(import_graph(LAMBDAS)) is None


def test_the_graph_reads_imports_inside_functions(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from pkg import b\n")
    (tmp_path / "pkg" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    assert find_cycle(import_graph(tmp_path)) == ["pkg.a", "pkg.b", "pkg.a"]


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("jobs", {"jobs", "contracts"}),
        ("contracts", {"contracts"}),
        ("lifecycle", {"lifecycle", "jobs", "contracts"}),
        ("fakes", {"fakes", "lifecycle", "jobs", "contracts"}),
    ],
)
def test_layers_import_only_what_is_below_them(package: str, allowed: set[str]) -> None:
    """jobs is the pure domain; lifecycle talks to the world through ports only (no aws, no function package)."""
    graph = import_graph(LAMBDAS)
    offending = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in allowed
    }
    assert not offending


def test_no_runtime_package_imports_the_fakes() -> None:
    """The fakes are for tests and the benchmark: the Lambdas and the worker never import them."""
    graph = import_graph(LAMBDAS)
    root = {name: name.split(".")[0] for name in graph}
    assert not {f"{m} -> {t}" for m, targets in graph.items() for t in targets if root[t] == "fakes" != root[m]}


def test_the_pure_domain_imports_no_aws_sdk_or_powertools() -> None:
    third_party = {
        f"{module_name(path, LAMBDAS)} -> {name}"
        for path in (LAMBDAS / "jobs").rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in {"boto3", "botocore", "aws_lambda_powertools"}
    }
    assert not third_party


def test_contracts_needs_nothing_but_the_standard_library() -> None:
    names = set(imported_modules(LAMBDAS / "contracts.py"))
    assert names <= {"__future__", "typing", "typing.annotations", "typing.Final", "__future__.annotations"}
