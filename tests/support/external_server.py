"""What a run against an external server (VECDB_TEST_SERVER, see
tests/conftest.py) does differently, as a pytest plugin tests/conftest.py
registers then. It may run from a client-only install (vecdb-client), so
the engine's modules may be absent; what needs them is left out, and said:

- a test file importing an absent engine module at its top is not
  collected (tests/api/test_planner.py imports vecdb.index);
- a test taking no ``db`` is deselected: it is about the embedded engine;
- a test that reaches for the engine while running (its oracle is
  vecdb.knn, it asks whether the database is a vecdb.Database) is skipped
  with what it reached for.

The full suite runs every one of them on every backend."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Dict, List

import pytest

import vecdb

_UNCOLLECTED: Dict[str, List[str]] = {}


def absent_engine_module(module: str) -> bool:
    """Whether ``module`` belongs to a vecdb subpackage this install lacks."""
    subpackage = ".".join(module.split(".")[:2])
    return subpackage.startswith("vecdb.") and importlib.util.find_spec(subpackage) is None


def _top_level_imports(path: Path) -> List[str]:
    tree = ast.parse(path.read_text(), str(path))
    return ([alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
            + [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module])


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    absent = [module for module in _top_level_imports(collection_path) if absent_engine_module(module)]
    if not absent:
        return None
    _UNCOLLECTED[str(collection_path.relative_to(config.rootpath))] = absent
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    config.hook.pytest_deselected(items=[item for item in items if "db" not in item.fixturenames])
    items[:] = [item for item in items if "db" in item.fixturenames]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    except (ImportError, AttributeError) as error:
        if isinstance(error, ImportError):
            missing = error.name or ""
        else:  # vecdb.<subpackage>, never imported here
            missing = f"vecdb.{error.name}" if getattr(error, "obj", None) is vecdb else ""
        if missing and absent_engine_module(missing):
            pytest.skip(f"needs the engine: {error}")
        raise


def pytest_terminal_summary(terminalreporter) -> None:
    if _UNCOLLECTED:
        terminalreporter.section("not collected: they import the engine, absent from this install")
        for path, modules in sorted(_UNCOLLECTED.items()):
            terminalreporter.line(f"{path}: {', '.join(modules)}")
