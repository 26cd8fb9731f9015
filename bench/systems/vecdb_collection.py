"""vecdb's embedded collection: what a user calls, not the index under it.

The same HNSW graph as ``vecdb-hnsw`` (same M and ef_construction), built by upserting the
base vectors into a collection of an embedded database (LMDB in a temporary folder), and
searched through ``Collection.search(..., ef=..., with_payload=False)``: the argument
checks, the planner, the read of each hit's id and the ``Hit`` objects are all timed, as a
user pays them. ``vecdb-collection-payload`` stores a small payload per point and asks for
it with every hit. Side by side with ``vecdb-hnsw`` in one run, the ratio is what the
layers above the core cost.

A batch search in a collection uses every core (it has no thread setting), so compare its
batches with the other systems' ``threads=all`` rows; one query per call runs on one
thread either way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, List

import numpy as np

from bench.optional import VECDB, require
from bench.systems.base import GraphSystem

# Points per upsert while building (each upsert is one durable LMDB transaction).
UPSERT_BATCH = 5000


def _ids(hits: List[Any], k: int) -> np.ndarray:
    """One query's hits as the harness's ids: (k,) int64, -1 past the last hit."""
    ids = np.full(k, -1, dtype=np.int64)
    ids[: len(hits)] = [hit.id for hit in hits]
    return ids


class VecdbCollection(GraphSystem):
    """An embedded vecdb collection with an HNSW index, ids = row numbers, no payloads."""

    name = "vecdb-collection"
    requirement = VECDB
    with_payload = False

    def _payloads(self, first: int, stop: int) -> Any:
        return None

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Upsert ``base`` in batches of UPSERT_BATCH, then wait for the background indexer
        (the graph inserts on every core: a collection has no thread setting). Searches are
        then of the same graph as vecdb-hnsw's, not partly a scan of points still waiting."""
        vecdb = require(self.requirement, self.name)
        from vecdb.progress import silent

        self._folder = tempfile.TemporaryDirectory(prefix="vecdb-collection-")
        self._database = vecdb.open(Path(self._folder.name) / "db", progress=silent)
        self._collection = self._database.create_collection(
            "bench", dim=base.shape[1], metric=metric,
            index=vecdb.HNSW(M=self.settings.m, ef_construction=self.settings.ef_construction))
        for first in range(0, len(base), UPSERT_BATCH):
            stop = min(first + UPSERT_BATCH, len(base))
            self._collection.upsert(list(range(first, stop)), base[first:stop], self._payloads(first, stop))
        self._collection.wait_indexed()

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """Collection.search with ef = ``param``; hits turned into ids."""
        hits = self._collection.search(queries, k=k, ef=param, with_payload=self.with_payload)
        if queries.ndim == 1:
            return _ids(hits, k)
        return np.stack([_ids(row, k) for row in hits]) if hits else np.zeros((0, k), dtype=np.int64)

    def index_bytes(self) -> int:
        """The collection's index memory (stats()["index_memory_bytes"]): the graph, as
        vecdb-hnsw reports it; the vectors in LMDB are on disk, not counted."""
        return int(self._collection.stats()["index_memory_bytes"])


class VecdbCollectionPayload(VecdbCollection):
    """The same collection with a small payload per point, returned with every hit."""

    name = "vecdb-collection-payload"
    with_payload = True

    def _payloads(self, first: int, stop: int) -> Any:
        return [{"row": row, "title": f"document {row}"} for row in range(first, stop)]
