"""The client and the Protocols load no engine: a client-only install (no
native core, no LMDB) can import them, and connecting costs no engine
start-up. tests/package/test_layers.py checks the imports as written; this
checks what a fresh interpreter actually loads, lazy names included."""

from __future__ import annotations

import json
import subprocess
import sys

# The engine and what it stands on; none of it may load for the client.
ENGINE = ("vecdb._core", "lmdb", "vecdb.native", "vecdb.storage", "vecdb.index", "vecdb.query", "vecdb.transfer",
          "vecdb.collection", "vecdb.database")

PROGRAM = """
import json, sys
import vecdb.client, vecdb.api
import vecdb
vecdb.connect, vecdb.RemoteDatabase, vecdb.RemoteCollection, vecdb.DatabaseAPI, vecdb.CollectionAPI, vecdb.Hit
vecdb.HNSW, vecdb.PQ, vecdb.Flat, vecdb.Explanation, vecdb.TuneReport, vecdb.errors, vecdb.plans
print(json.dumps(sorted(sys.modules)))
"""


def test_the_client_and_the_protocols_load_no_engine():
    loaded = json.loads(subprocess.run([sys.executable, "-c", PROGRAM], check=True, capture_output=True,
                                       text=True).stdout)
    assert "vecdb.client.remote" in loaded and "vecdb.api" in loaded
    engine = [module for module in loaded if any(module == name or module.startswith(name + ".") for name in ENGINE)]
    assert engine == []
