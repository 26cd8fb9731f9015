"""Qdrant's local mode (``qdrant_client.QdrantClient(path=...)``): Qdrant without a server,
the database a Python user gets from ``pip install qdrant-client`` alone.

Local mode is pure Python: it keeps every point in NumPy arrays and persists each one as it
is upserted (a pickled row in SQLite, one transaction per point), searchable at once; opening
the folder loads every point, and a search scans every vector (exact, recall 1.0). It builds
no HNSW index and ignores ``search_params`` (``hnsw_ef``, ``exact``), so its sweep has a
single setting, and the HNSW settings every other database shares do not apply to it. Qdrant
warns that local mode is not meant for more than 20,000 points; the benchmark measures it all
the same, since it is what an embedded Qdrant is.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np

from bench.durable.databases.base import DurableDatabase, Milestones, OpenCollection, Setting
from bench.durable.points import batches, payloads_for
from bench.optional import QDRANT_CLIENT


@contextlib.contextmanager
def _client(folder: Path) -> Iterator[Any]:
    """A local-mode client on ``folder``, closed on exit (it holds a lock on the folder)."""
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(folder))
    try:
        yield client
    finally:
        client.close()


def ingest(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path) -> Milestones:
    from qdrant_client import models

    distance = {"l2": models.Distance.EUCLID, "cosine": models.Distance.COSINE, "ip": models.Distance.DOT}[metric]
    with _client(folder) as client:
        client.create_collection("bench", vectors_config=models.VectorParams(size=base.shape[1], distance=distance))
        for rows, vectors in batches(base, params["batch"]):
            client.upsert("bench", points=models.Batch(ids=list(rows), vectors=vectors, payloads=payloads_for(rows)))
        done = time.perf_counter()
    return {"durable": done, "indexed": done}  # no index: searched by an exact scan


@contextlib.contextmanager
def open_collection(folder: Path, metric: str, setting: Setting) -> Iterator[OpenCollection]:
    """The stored collection (every point loaded from SQLite); ``setting`` is always empty."""
    with _client(folder) as client:
        def search(query: np.ndarray, k: int) -> List[int]:
            return [point.id for point in client.query_points("bench", query=query, limit=k, with_payload=False).points]

        yield OpenCollection(search=search, index_source=lambda: "SQLite rows, exact scan")


QDRANT = DurableDatabase("qdrant", QDRANT_CLIENT, ingest, "upserts (one SQLite transaction per point; no index)",
                         open_collection, knob="none (exact scan)", sweep=({},))
