"""vecdb's embedded collection (``vecdb.open``), the native index alone, and collections with
product quantization (for ``bench.durable.pq``).

A collection's upserts return once committed, every point searchable (the graph is built
by a background indexer; points it has not reached are searched exactly): that is the
"durable" milestone. ``wait_indexed`` marks "indexed", and closing the database writes the
index snapshot a reopen loads: ingest ends after the close, so everything is on disk. The
native ``HNSWIndex`` is ingested in memory only: the cost durability is measured against.
Search is ``Collection.search(query, k, ef=..., with_payload=False)``, one query per call.
"""

from __future__ import annotations

import contextlib
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np

from bench.durable.databases.base import EF_SWEEP, DurableDatabase, Milestones, OpenCollection, Setting
from bench.durable.points import batches, payloads_for
from bench.optional import VECDB


def ingest_collection(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path, flat: bool = False,
                      quantized: bool = False) -> Milestones:
    return _ingest(base, metric, params, folder, flat, quantized, searches=None)


def ingest_while_searching(base: np.ndarray, queries: np.ndarray, metric: str, params: Dict[str, Any],
                           folder: Path) -> Dict[str, Any]:
    """Ingest as :func:`ingest_collection` while another thread searches the collection, one
    query per call (k=10, the default ef): the searches' count and latencies during the upserts
    (until "durable") and after them, while the indexer catches up (until "indexed")."""
    latencies: List[tuple] = []  # (phase, seconds)
    phase = ["ingest"]
    stop = threading.Event()
    started = time.perf_counter()

    def search(col: Any) -> None:
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            col.search(queries[i % len(queries)], k=10, with_payload=False)
            latencies.append((phase[0], time.perf_counter() - start))
            i += 1

    def on_phase(name: str) -> None:
        phase[0] = name

    milestones = _ingest(base, metric, params, folder, False, False, searches=(search, stop, on_phase))
    by_phase: Dict[str, Any] = {}
    for name, until, since in (("ingest", "durable", started), ("indexing", "indexed", milestones["durable"])):
        seconds = sorted(s for p, s in latencies if p == name)
        span = milestones[until] - since
        by_phase[name] = {"seconds": span, "searches": len(seconds), "qps": len(seconds) / span if span else 0.0,
                          "p50_ms": 1e3 * seconds[len(seconds) // 2] if seconds else None,
                          "p99_ms": 1e3 * seconds[int(0.99 * (len(seconds) - 1))] if seconds else None}
    return {"milestones": {k: v - started for k, v in milestones.items()}, "phases": by_phase}


def _ingest(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path, flat: bool, quantized: bool,
            searches: Any) -> Milestones:
    import vecdb

    index = vecdb.Flat() if flat else vecdb.HNSW(M=params["M"], ef_construction=params["ef_construction"])
    quantization = vecdb.PQ(m=params.get("pq_m"), rerank=params.get("rerank", 100),
                            train_size=params.get("train_size", 10_000)) if quantized else None
    milestones: Milestones = {}
    with vecdb.open(folder) as db:  # the default backlog: upserts return before the graph holds them
        col = db.create_collection("bench", dim=base.shape[1], metric=metric, index=index, quantization=quantization)
        col.create_payload_index("bucket", "integer")
        searcher = None
        if searches is not None:
            searcher = threading.Thread(target=searches[0], args=(col,))
            searcher.start()
        try:
            for rows, vectors in batches(base, params["batch"]):
                col.upsert(ids=list(rows), vectors=vectors, payloads=payloads_for(rows))
            milestones["durable"] = time.perf_counter()
            if searches is not None:
                searches[2]("indexing")
            col.wait_indexed()
            milestones["indexed"] = time.perf_counter()
        finally:
            if searches is not None:
                searches[1].set()
                searcher.join()
    return milestones


def ingest_native(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path) -> Milestones:
    import vecdb

    index = vecdb.HNSWIndex(base.shape[1], metric, M=params["M"], ef_construction=params["ef_construction"])
    for _, vectors in batches(base, params["batch"]):
        index.add(vectors)
    return {"indexed": time.perf_counter()}  # in memory: never durable


@contextlib.contextmanager
def open_collection(folder: Path, metric: str, setting: Setting) -> Iterator[OpenCollection]:
    """The collection as a user opens it (``vecdb.open(folder)``, a writer), searched with
    ``setting["ef"]`` (the collection's default ef without one)."""
    import vecdb

    with vecdb.open(folder) as db:
        col = db.get_collection("bench")
        ef = setting.get("ef")

        def search(query: np.ndarray, k: int) -> List[int]:
            return [hit.id for hit in col.search(query, k=k, ef=ef, with_payload=False)]

        yield OpenCollection(search=search, index_source=lambda: col.stats()["index_source"])


_COLLECTION_INGEST = ("upserts (durable: each returns once committed, its points searchable; the background indexer "
                      "builds the graph), `wait_indexed` (indexed), closing the database (writes the index snapshot)")
VECDB_COLLECTION = DurableDatabase("vecdb", VECDB, ingest_collection, _COLLECTION_INGEST, open_collection, knob="ef",
                                   sweep=EF_SWEEP)
VECDB_NATIVE = DurableDatabase("vecdb-native", VECDB, ingest_native,
                               "`HNSWIndex.add` in memory only, the cost durability is measured against")
# PQ codes in RAM, re-ranked with vectors read from LMDB: an HNSW graph over the codes, or a scan of them.
VECDB_PQ = DurableDatabase("vecdb-pq", VECDB, partial(ingest_collection, quantized=True), _COLLECTION_INGEST,
                           open_collection)
VECDB_FLAT_PQ = DurableDatabase("vecdb-flat-pq", VECDB, partial(ingest_collection, flat=True, quantized=True),
                                _COLLECTION_INGEST, open_collection)
