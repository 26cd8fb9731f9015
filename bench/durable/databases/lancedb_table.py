"""LanceDB (``lancedb.connect(path)``): a table in Lance files, searched through its vector index.

Ingest creates the table with its schema (id, vector, and the payload's fields as columns),
appends the same batches (``Table.add``, each a new table version), then builds the vector
index: LanceDB searches rows that no index covers by brute force, so the build is part of
"ingest until searchable". The index is IVF_HNSW_SQ (``lancedb.index.HnswSq``), the HNSW
graph of every other database here (same M and ef_construction) over 8-bit scalar-quantized
vectors, with LanceDB's default partitioning (one partition up to about a million rows, so
nprobes has nothing to choose). The sweep varies the graph search's ``ef`` (LanceDB asks
``ef >= k``); results are not re-ranked with full vectors (``refine_factor``), so the scalar
quantization may cap recall.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np

from bench.durable.databases.base import EF_SWEEP, DurableDatabase, Milestones, OpenCollection, Setting
from bench.durable.points import batches, payloads_for
from bench.optional import LANCEDB

# vecdb's metric names as LanceDB's distance types (the order of results is what counts).
_DISTANCE_TYPES = {"l2": "l2", "cosine": "cosine", "ip": "dot"}


def _arrow_batch(rows: range, vectors: np.ndarray) -> Any:
    import pyarrow as pa

    payloads = payloads_for(rows)
    return pa.table({
        "id": pa.array(rows, pa.int64()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), vectors.shape[1]),
        "bucket": pa.array([p["bucket"] for p in payloads], pa.int64()),
        "group": pa.array([p["group"] for p in payloads], pa.string()),
    })


def ingest(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path) -> Milestones:
    import lancedb
    from lancedb.index import HnswSq

    schema = _arrow_batch(range(0), base[:0]).schema
    table = lancedb.connect(folder).create_table("bench", schema=schema)
    for rows, vectors in batches(base, params["batch"]):
        table.add(_arrow_batch(rows, vectors))
    durable = time.perf_counter()  # searchable from here, by a scan
    table.create_index("vector", config=HnswSq(distance_type=_DISTANCE_TYPES[metric], m=params["M"],
                                               ef_construction=params["ef_construction"]))
    return {"durable": durable, "indexed": time.perf_counter()}


@contextlib.contextmanager
def open_collection(folder: Path, metric: str, setting: Setting) -> Iterator[OpenCollection]:
    """The stored table, searched through its index with ``setting["ef"]`` (LanceDB's default,
    1.5 k, without one), returning the id column (and the distance, which LanceDB adds anyway)."""
    import lancedb

    table = lancedb.connect(folder).open_table("bench")
    distance_type = _DISTANCE_TYPES[metric]

    def search(query: np.ndarray, k: int) -> List[int]:
        builder = table.search(query, vector_column_name="vector").distance_type(distance_type).limit(k)
        if "ef" in setting:
            builder = builder.ef(setting["ef"])
        return builder.select(["id", "_distance"]).to_arrow()["id"].to_pylist()

    yield OpenCollection(search=search, index_source=lambda: ", ".join(
        f"{index.index_type} on {', '.join(index.columns)}" for index in table.list_indices()))


LANCE = DurableDatabase("lancedb", LANCEDB, ingest, "`add` calls, then building the IVF_HNSW_SQ index (`create_index`)",
                        open_collection, knob="ef", sweep=EF_SWEEP)
