"""vecdb's HNSW graph (vecdb.HNSWIndex); ef is a per-call argument."""

from __future__ import annotations

import numpy as np

from bench.optional import VECDB, require
from bench.systems.base import GraphSystem


class VecdbHnsw(GraphSystem):
    """vecdb.HNSWIndex over float32 vectors, M and ef_construction from the settings."""

    name = "vecdb-hnsw"
    requirement = VECDB
    dtype = "float32"

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Insert ``base`` on ``threads`` threads."""
        vecdb = require(self.requirement, self.name)
        self._threads = threads
        self._index = vecdb.HNSWIndex(
            base.shape[1], metric=metric, M=self.settings.m, ef_construction=self.settings.ef_construction,
            dtype=self.dtype,
        )
        self._index.add(base, threads=threads)

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """HNSWIndex.search with ef = ``param``."""
        ids, _ = self._index.search(queries, k, ef=param, threads=self._threads)
        return ids

    def index_bytes(self) -> int:
        """HNSWIndex.nbytes (vectors, links and the id map)."""
        return int(self._index.nbytes)


class VecdbHnswF16(VecdbHnsw):
    """The same graph over vectors stored as IEEE half (half the vector memory)."""

    name = "vecdb-hnsw-f16"
    dtype = "float16"
