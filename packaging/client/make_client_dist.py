"""Builds vecdb-client, the pure-Python client of ``vecdb serve``, from this
tree: an sdist and a ``py3-none-any`` wheel of the modules ``vecdb.connect``
needs and nothing of the engine.

Which modules: the run-time import closure (read from the source with ast:
imports inside functions count, those under ``if TYPE_CHECKING:`` do not) of
the package's ``__init__``, ``vecdb.api``, every ``vecdb.client`` module, and
each module a lazy name of ``vecdb`` lives in (``vecdb._HOMES``) whose own
closure needs neither the native core nor LMDB. Computed rather than listed,
so a module the client starts to import ships with it; a client module that
reaches the engine stops the build instead of shipping a client that cannot
import. The modules are copied beside this folder's pyproject.toml and
README.md into a temporary folder, which ``python -m build`` builds::

    python packaging/client/make_client_dist.py --out dist
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

HERE = Path(__file__).resolve().parent
TREE = HERE.parents[1]
PACKAGE = "vecdb"
# What an install without a compiler cannot have: the native core and LMDB's binding.
ENGINE_IMPORTS = frozenset({"vecdb._core", "lmdb"})
CLIENT_MODULES = ("vecdb", "vecdb.api")
CLIENT_PACKAGE = "vecdb.client"
IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError"})


def package_modules(tree: Path = TREE) -> Dict[str, Path]:
    """Every module of the package in ``tree``: dotted name -> source file."""
    modules = {}
    for path in sorted((tree / PACKAGE).rglob("*.py")):
        parts = path.relative_to(tree).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _walk(node: ast.AST, guarded: bool = False) -> Iterator[Tuple[ast.AST, bool]]:
    """Every node run at import or call time with whether a ``try`` catching
    ImportError encloses it (an optional dependency); skips ``if
    TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
            for other in child.orelse:
                yield other, guarded
                yield from _walk(other, guarded)
            continue
        if isinstance(child, ast.Try):
            optional = guarded or any(_catches_import_errors(handler) for handler in child.handlers)
            for statement in child.body:
                yield statement, optional
                yield from _walk(statement, optional)
            for rest in [*child.handlers, *child.orelse, *child.finalbody]:
                yield rest, guarded
                yield from _walk(rest, guarded)
            continue
        yield child, guarded
        yield from _walk(child, guarded)


def _catches_import_errors(handler: ast.ExceptHandler) -> bool:
    return handler.type is None or any(isinstance(name, ast.Name) and name.id in IMPORT_ERRORS
                                       for name in ast.walk(handler.type))


def imports_of(module: str, modules: Dict[str, Path]) -> Dict[str, bool]:
    """What ``module`` imports: dotted name -> whether every import of it is
    guarded (optional). ``from a.b import c`` counts as ``a.b.c`` when that
    is a module of the package, else ``a.b``; relative imports are resolved."""
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: Dict[str, bool] = {}

    def add(name: str, guarded: bool) -> None:
        found[name] = found.get(name, True) and guarded

    for node, guarded in _walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, guarded)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                add(candidate if candidate in modules or candidate in ENGINE_IMPORTS else base, guarded)
    return found


def closure(roots: List[str], modules: Dict[str, Path]) -> Set[str]:
    """The package modules ``roots`` load, with each one's parent packages."""
    seen: Set[str] = set()
    pending = list(roots)
    while pending:
        module = pending.pop()
        if module in seen or module not in modules:
            continue
        seen.add(module)
        parent = module.rpartition(".")[0]
        pending.extend([parent] if parent else [])
        pending.extend(imported for imported in imports_of(module, modules) if imported in modules)
    return seen


def engine_reached(members: Set[str], modules: Dict[str, Path]) -> Dict[str, List[str]]:
    """Module -> the engine imports it makes (empty when the set is client-safe)."""
    reached = {}
    for module in sorted(members):
        engine = sorted(name for name in imports_of(module, modules)
                        if any(name == e or name.startswith(e + ".") for e in ENGINE_IMPORTS))
        if engine:
            reached[module] = engine
    return reached


def lazy_name_homes(modules: Dict[str, Path]) -> List[str]:
    """The modules ``vecdb.__init__``'s ``_HOMES`` table names."""
    tree = ast.parse(modules[PACKAGE].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_HOMES" for t in node.targets):
            return sorted(set(ast.literal_eval(node.value).values()))
    raise SystemExit(f"{modules[PACKAGE]} has no _HOMES table")


def client_modules(modules: Dict[str, Path]) -> Set[str]:
    """The modules vecdb-client ships (see the module docstring)."""
    roots = [*CLIENT_MODULES, *(name for name in modules
                                 if name == CLIENT_PACKAGE or name.startswith(CLIENT_PACKAGE + "."))]
    members = closure(roots, modules)
    reached = engine_reached(members, modules)
    if reached:
        raise SystemExit(f"the client reaches the engine: {reached}; it must install without the native core")
    for home in lazy_name_homes(modules):
        with_home = closure([home], modules)
        if not engine_reached(with_home, modules):
            members |= with_home
    return members


def third_party_imports(members: Set[str], modules: Dict[str, Path]) -> Dict[str, bool]:
    """Top-level names of the non-stdlib packages ``members`` import -> whether
    every import of it is guarded (an optional dependency)."""
    found: Dict[str, bool] = {}
    for module in members:
        for name, guarded in imports_of(module, modules).items():
            top = name.split(".")[0]
            if top != PACKAGE and top not in sys.stdlib_module_names:
                found[top] = found.get(top, True) and guarded
    return found


def stage(destination: Path, tree: Path = TREE) -> List[str]:
    """Copies vecdb-client's sources into ``destination``; returns its modules."""
    modules = package_modules(tree)
    members = sorted(client_modules(modules))
    for module in members:
        target = destination / modules[module].relative_to(tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(modules[module], target)
    shutil.copy2(tree / PACKAGE / "py.typed", destination / PACKAGE / "py.typed")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(HERE / name, destination / name)
    return members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder the sdist and the wheel are written to")
    out = parser.parse_args().out.resolve()
    with tempfile.TemporaryDirectory(prefix="vecdb-client-") as folder:
        members = stage(Path(folder))
        print(f"vecdb-client: {len(members)} modules: {' '.join(members)}")
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), folder], check=True)


if __name__ == "__main__":
    main()
