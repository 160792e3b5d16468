"""The metrics modules import one another one way only, and the classifier's training module runs as ``python -m``
without Python's "imported twice" warning."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import lightning_gans.metrics

PACKAGE = "lightning_gans.metrics"
ROOT = Path(lightning_gans.metrics.__file__).resolve().parents[2]


def metrics_import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the modules of the package it imports anywhere, in functions too.

    Imports inside functions count: a cycle hidden behind a lazy import is still a cycle. ``__init__`` stands for
    the package itself (``from lightning_gans.metrics import X`` imports it).
    """
    folder = Path(lightning_gans.metrics.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")}

    def node(dotted: str) -> str | None:
        if dotted == PACKAGE:
            return "__init__"
        if dotted.startswith(PACKAGE + "."):
            return dotted[len(PACKAGE) + 1 :].split(".")[0]
        return None

    graph: dict[str, set[str]] = {}
    for name in modules:
        targets: set[str] = set()
        for stmt in ast.walk(ast.parse((folder / f"{name}.py").read_text())):
            if isinstance(stmt, ast.Import):
                targets.update(n for n in (node(a.name) for a in stmt.names) if n)
            elif isinstance(stmt, ast.ImportFrom):
                base = stmt.module or ""
                if stmt.level:  # relative: from . import x, from .x import y
                    base = ".".join([PACKAGE, base]) if base else PACKAGE
                target = node(base)
                if target == "__init__":  # from lightning_gans.metrics import cache -> the submodule cache
                    submodules = [a.name for a in stmt.names if a.name in modules]
                    targets.update(submodules or ["__init__"])
                elif target:
                    targets.add(target)
        graph[name] = targets - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path that returns to its start, or ``None``."""
    done: set[str] = set()

    def visit(n: str, path: list[str]) -> list[str] | None:
        if n in path:
            return path[path.index(n) :] + [n]
        if n in done:
            return None
        for m in sorted(graph.get(n, ())):
            found = visit(m, path + [n])
            if found:
                return found
        done.add(n)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_find_cycle_finds_a_lazy_import_cycle():
    assert find_cycle({"extractors": {"classifier"}, "classifier": {"extractors"}}) == [
        "classifier",
        "extractors",
        "classifier",
    ]
    assert find_cycle({"extractors": {"extractor_base"}, "classifier": {"extractor_base"}}) is None


def test_metrics_modules_import_one_way_only():
    graph = metrics_import_graph()
    assert "extractor_base" in graph["mnist_classifier"] and "mnist_classifier" in graph["extractors"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_nothing_imported_by_the_package_imports_the_training_module():
    """``python -m lightning_gans.metrics.classifier`` imports the package first; had that imported the module,
    Python would warn that it runs a module already imported."""
    graph = metrics_import_graph()
    eager = {m for m in graph if m not in ("__init__", "classifier")}
    assert not [m for m in eager if "classifier" in graph[m]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "lightning_gans.metrics.classifier", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Train the MNIST classifier" in result.stdout and "Warning" not in result.stderr
