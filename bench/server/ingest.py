"""Putting the dataset into each server through its own Python client, and setting Chroma's
search ef.

Both systems get the same vectors in the same batches, ids = row numbers, no payloads, and
HNSW graphs with the same M and ef_construction (vecdb's defaults). vecdb's ef is a field of
every search request; Chroma's is a collection setting (``ef_search``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from bench.server.processes import LOOPBACK, ServerProcess

HNSW_M = 16
EF_CONSTRUCTION = 200


@dataclass(frozen=True)
class Ingested:
    """Where the data went and how long it took (``seconds``: every upsert or add call)."""

    collection: str
    collection_id: str
    seconds: float
    points: int


def ingest_vecdb(server: ServerProcess, name: str, base: np.ndarray, metric: str, batch: int) -> Ingested:
    """Create collection ``name`` on a running ``vecdb serve`` and upsert ``base`` through
    ``vecdb.connect`` (MessagePack, vectors as float32 bytes); the time includes waiting for
    the background indexer (the searches measured after are the graph's)."""
    import vecdb

    with vecdb.connect(server.url) as database:
        collection = database.create_collection(name, dim=base.shape[1], metric=metric,
                                                index=vecdb.HNSW(M=HNSW_M, ef_construction=EF_CONSTRUCTION))
        start = time.perf_counter()
        for first in range(0, len(base), batch):
            rows = range(first, min(first + batch, len(base)))
            collection.upsert(ids=list(rows), vectors=base[rows.start:rows.stop])
        collection.wait_indexed()  # until the graph holds every point, as Chroma's add does before it returns
        seconds = time.perf_counter() - start
        stored = collection.count()
    if stored != len(base):
        raise RuntimeError(f"vecdb serve holds {stored} points after upserting {len(base)}")
    return Ingested(collection=name, collection_id=name, seconds=seconds, points=stored)


@contextlib.contextmanager
def chroma_client(server: ServerProcess) -> Iterator[Any]:
    """chromadb.HttpClient for a running ``chroma run``, telemetry off, closed on exit
    (chromadb is imported here, not at module level: it is an optional dependency)."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=Settings(anonymized_telemetry=False))
    try:
        yield client
    finally:
        client.close()


def ingest_chroma(server: ServerProcess, name: str, base: np.ndarray, metric: str, batch: int,
                  ef_search: int) -> Ingested:
    """Create collection ``name`` (HNSW space ``metric``, M and ef_construction as vecdb's)
    on a running ``chroma run`` and add ``base`` through chromadb.HttpClient."""
    with chroma_client(server) as client:
        collection = client.create_collection(
            name, embedding_function=None,
            configuration={"hnsw": {"space": metric, "max_neighbors": HNSW_M, "ef_construction": EF_CONSTRUCTION,
                                    "ef_search": ef_search}})
        start = time.perf_counter()
        for first in range(0, len(base), batch):
            rows = range(first, min(first + batch, len(base)))
            collection.add(ids=[str(row) for row in rows], embeddings=base[rows.start:rows.stop])
        seconds = time.perf_counter() - start
        stored = collection.count()
    if stored != len(base):
        raise RuntimeError(f"chroma run holds {stored} points after adding {len(base)}")
    return Ingested(collection=name, collection_id=str(collection.id), seconds=seconds, points=stored)


def set_chroma_ef(server: ServerProcess, name: str, ef_search: int) -> None:
    """Set the collection's ``ef_search`` and restart the server. Chroma stores the new
    setting at once, but an index it has already loaded keeps searching with the old ef
    (checked with chromadb 1.5: recall stays the same until a restart), so the server is
    restarted to load the index again with the new one."""
    with chroma_client(server) as client:
        client.get_collection(name, embedding_function=None).modify(configuration={"hnsw": {"ef_search": ef_search}})
    server.restart()
    with chroma_client(server) as client:
        configured = client.get_collection(name, embedding_function=None).configuration["hnsw"]
    if configured["ef_search"] != ef_search:
        raise RuntimeError(f"chroma kept ef_search={configured['ef_search']} after it was set to {ef_search}")
