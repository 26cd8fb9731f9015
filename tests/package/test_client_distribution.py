"""vecdb-client, the pure-Python distribution packaging/client/ builds from
this tree (make dist): it holds the client, the protocols and the shared
vocabulary and nothing of the engine, everything it must import is one of
its declared dependencies, and a name of the engine asked of it says which
distribution to install. .ci/wheel-smoke installs the built wheel into a
fresh virtualenv and runs the API suite with it; this checks the staged
tree, quickly, in the suite."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "packaging" / "client"
_spec = importlib.util.spec_from_file_location("make_client_dist", CLIENT / "make_client_dist.py")
assert _spec is not None and _spec.loader is not None
make_client_dist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_client_dist)

MODULES = make_client_dist.package_modules()
MEMBERS = make_client_dist.client_modules(MODULES)


def test_it_holds_the_client_and_the_protocols_and_no_engine():
    client = {name for name in MODULES if name == "vecdb.client" or name.startswith("vecdb.client.")}
    assert client | {"vecdb", "vecdb.api", "vecdb.errors", "vecdb.records", "vecdb.config"} <= MEMBERS
    engine = ("vecdb.native", "vecdb.storage", "vecdb.index", "vecdb.query", "vecdb.transfer", "vecdb.collection",
              "vecdb.database", "vecdb.server", "vecdb.cli", "vecdb.cluster")
    assert sorted(m for m in MEMBERS if any(m == e or m.startswith(e + ".") for e in engine)) == []
    assert make_client_dist.engine_reached(MEMBERS, MODULES) == {}


def test_what_it_must_import_it_declares():
    tomllib = pytest.importorskip("tomllib")
    declared = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("-", "_")
                for requirement in tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]["dependencies"]}
    imported = make_client_dist.third_party_imports(MEMBERS, MODULES)
    required = sorted(name for name, optional in imported.items() if not optional)
    assert set(required) <= declared, f"imported unguarded but not a dependency: {set(required) - declared}"


def test_engine_names_ask_for_the_engine_distribution(tmp_path):
    """The staged tree on the path with the site-packages (numpy, msgpack)
    but without their .pth files (-S): an editable install of vecdb-engine
    would otherwise supply the engine's modules. The client and the
    vocabulary load; vecdb.open says to pip install vecdb-engine."""
    make_client_dist.stage(tmp_path)
    site_packages = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    program = """
import json, vecdb
found = {}
for name in ("connect", "RemoteDatabase", "Hit", "HNSW", "RRF", "SparseVector", "Explanation", "open", "knn",
             "Database", "simd_levels"):
    try:
        getattr(vecdb, name)
        found[name] = "ok"
    except ImportError as error:
        found[name] = str(error)
print(json.dumps({"file": vecdb.__file__, "found": found}))
"""
    path = os.pathsep.join([str(tmp_path), *site_packages])
    result = subprocess.run([sys.executable, "-S", "-c", program], check=True, capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": path})
    answer = json.loads(result.stdout)
    assert Path(answer["file"]).resolve() == (tmp_path / "vecdb" / "__init__.py").resolve()
    found = answer["found"]
    for name in ("connect", "RemoteDatabase", "Hit", "HNSW", "RRF", "SparseVector", "Explanation"):
        assert found[name] == "ok", (name, found[name])
    for name in ("open", "knn", "Database", "simd_levels"):
        assert f"vecdb.{name} is part of the embedded engine" in found[name], found[name]
        assert "pip install vecdb-engine" in found[name], found[name]
