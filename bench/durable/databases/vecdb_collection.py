"""vecdb's embedded collection (``vecdb.open``), the native index alone, and collections with
product quantization (for ``bench.durable.pq``).

A collection's upserts are searchable as they commit, and closing the database writes the
index snapshot a reopen loads: ingest ends after the close, so everything is on disk. The
native ``HNSWIndex`` is ingested in memory only: the cost durability is measured against.
Search is ``Collection.search(query, k, ef=..., with_payload=False)``, one query per call.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np

from bench.durable.databases.base import EF_SWEEP, DurableDatabase, OpenCollection, Setting
from bench.durable.points import batches, payloads_for
from bench.optional import VECDB


def ingest_collection(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path, flat: bool = False,
                      quantized: bool = False) -> None:
    import vecdb

    index = vecdb.Flat() if flat else vecdb.HNSW(M=params["M"], ef_construction=params["ef_construction"])
    quantization = vecdb.PQ(m=params.get("pq_m"), rerank=params.get("rerank", 100),
                            train_size=params.get("train_size", 10_000)) if quantized else None
    with vecdb.open(folder) as db:
        col = db.create_collection("bench", dim=base.shape[1], metric=metric, index=index, quantization=quantization)
        col.create_payload_index("bucket", "integer")
        for rows, vectors in batches(base, params["batch"]):
            col.upsert(ids=list(rows), vectors=vectors, payloads=payloads_for(rows))


def ingest_native(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path) -> None:
    import vecdb

    index = vecdb.HNSWIndex(base.shape[1], metric, M=params["M"], ef_construction=params["ef_construction"])
    for _, vectors in batches(base, params["batch"]):
        index.add(vectors)


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


_COLLECTION_INGEST = "upserts (the index built as they commit) and closing the database (writes the index snapshot)"
VECDB_COLLECTION = DurableDatabase("vecdb", VECDB, ingest_collection, _COLLECTION_INGEST, open_collection, knob="ef",
                                   sweep=EF_SWEEP)
VECDB_NATIVE = DurableDatabase("vecdb-native", VECDB, ingest_native,
                               "`HNSWIndex.add` in memory only, the cost durability is measured against")
# PQ codes in RAM, re-ranked with vectors read from LMDB: an HNSW graph over the codes, or a scan of them.
VECDB_PQ = DurableDatabase("vecdb-pq", VECDB, partial(ingest_collection, quantized=True), _COLLECTION_INGEST,
                           open_collection)
VECDB_FLAT_PQ = DurableDatabase("vecdb-flat-pq", VECDB, partial(ingest_collection, flat=True, quantized=True),
                                _COLLECTION_INGEST, open_collection)
