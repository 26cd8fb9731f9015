"""The package's layers (README "Architecture"): every module imports only
modules of its own layer or below, the client only the shared vocabulary,
and no import cycle exists. Read from the source with ast, so an import
hidden inside a function counts too; imports under ``if TYPE_CHECKING:``
(annotations only) do not."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vecdb"

# Longest matching prefix wins. Vocabulary is what every layer (and the
# client) speaks (embeddings too: a remote client embeds on its side); the
# engine's backup() delegates to transfer/, which otherwise works on storage
# alone; a collection copy moves points between
# open databases, so it sits above the engine. The framework adapters open
# either database, embedded or remote, as the CLI does.
LAYERS = {
    "vecdb._version": 0, "vecdb._files": 0, "vecdb.errors": 0, "vecdb.checks": 0, "vecdb.metrics": 0,
    "vecdb.payload_fields": 0, "vecdb.records": 0, "vecdb.plans": 0, "vecdb.reports": 0, "vecdb.config": 0,
    "vecdb.wire": 0, "vecdb.progress": 0, "vecdb.api": 0, "vecdb.gate": 0, "vecdb.fusion": 0, "vecdb.sparse": 0,
    "vecdb.text": 0, "vecdb.text_in": 0, "vecdb.embeddings": 0, "vecdb.arrow": 0,
    "vecdb._core": 1, "vecdb.native": 1,
    "vecdb.storage": 2,
    "vecdb.index": 3,
    "vecdb.query": 4,
    "vecdb.transfer": 5,
    "vecdb.collection": 6, "vecdb.database": 6, "vecdb.integrity": 6, "vecdb.write_steps": 6,
    "vecdb.named_vectors": 6,
    "vecdb.transfer.collection_copy": 7, "vecdb.cluster": 7, "vecdb.transfer.collection_backup": 7,
    "vecdb.client": 8, "vecdb.server": 8,
    "vecdb.cli": 9, "vecdb.__main__": 9, "vecdb.integrations": 9,
}
VOCABULARY = 0


def layer_of(module: str) -> int:
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and to the README's Architecture section")
    return LAYERS[max(matches, key=len)]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(path: Path) -> Set[str]:
    """The vecdb modules ``path`` imports at run time (``from vecdb.x import
    y`` counts as vecdb.x.y when that is a module, else vecdb.x)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("vecdb"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vecdb"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES or candidate == "vecdb._core" else node.module)
    return found - {"vecdb"}


MODULES: Dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
IMPORTS: Dict[str, Set[str]] = {name: imports_of(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name != "vecdb"))
def test_a_module_imports_nothing_above_its_layer(module):
    above = sorted(imported for imported in IMPORTS[module] if layer_of(imported) > layer_of(module))
    assert not above, f"{module} (layer {layer_of(module)}) imports {above} from a layer above"


def test_the_client_imports_only_the_shared_vocabulary():
    for module in (name for name in MODULES if name.startswith("vecdb.client")):
        outside = sorted(imported for imported in IMPORTS[module]
                         if not imported.startswith("vecdb.client") and layer_of(imported) != VOCABULARY)
        assert not outside, f"{module} imports {outside}: the client must install without the native core"


def test_no_import_cycle():
    graph = {module: {imported for imported in imports if imported in MODULES} for module, imports in IMPORTS.items()
             if module != "vecdb"}
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycle = path[path.index(imported):] + [imported]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_layer_table_is_checked_against_real_modules():
    """A prefix naming no module is a stale entry."""
    stale = [prefix for prefix in LAYERS
             if prefix != "vecdb._core" and not any(m == prefix or m.startswith(prefix + ".") for m in MODULES)]
    assert not stale, stale
