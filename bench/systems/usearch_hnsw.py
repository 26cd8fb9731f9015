"""USearch's HNSW. Its expansion_search is index-wide state, so the adapter sets it on change."""

from __future__ import annotations

import numpy as np

from bench.optional import USEARCH, require
from bench.systems.base import GraphSystem

_METRICS = {"l2": "l2sq", "ip": "ip", "cosine": "cos"}


class Usearch(GraphSystem):
    """usearch.index.Index over float32 vectors, with threads passed to add and search."""

    name = "usearch"
    requirement = USEARCH
    dtype = "f32"

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Insert ``base`` with connectivity M and expansion_add efConstruction from the settings."""
        usearch_index = require(self.requirement, self.name)
        self._threads = threads
        self._index = usearch_index.Index(
            ndim=base.shape[1],
            metric=_METRICS[metric],
            dtype=self.dtype,
            connectivity=self.settings.m,
            expansion_add=self.settings.ef_construction,
        )
        self._index.add(np.arange(base.shape[0]), base, threads=threads)

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """Index.search with expansion_search = ``param``.

        USearch fills missing results with the all-ones key, which becomes -1 as int64.
        """
        if self._index.expansion_search != param:
            self._index.expansion_search = param
        keys = self._index.search(queries, k, threads=self._threads).keys
        return keys.astype(np.int64)

    def index_bytes(self) -> int:
        """Serialized size of the index (vectors and graph)."""
        return int(self._index.serialized_length)


class UsearchF16(Usearch):
    """The same index over vectors stored as IEEE half (compare with vecdb-hnsw-f16)."""

    name = "usearch-f16"
    dtype = "f16"
