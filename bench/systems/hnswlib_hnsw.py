"""hnswlib's HNSW. Its ef is index-wide state (set_ef), so the adapter sets it on change."""

from __future__ import annotations

import numpy as np

from bench.optional import HNSWLIB, require
from bench.systems.base import GraphSystem

_SPACES = {"l2": "l2", "ip": "ip", "cosine": "cosine"}
# Fixed so repeated builds produce the same graph.
_RANDOM_SEED = 100


class Hnswlib(GraphSystem):
    """hnswlib.Index, with num_threads passed to every add and query call."""

    name = "hnswlib"
    requirement = HNSWLIB

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Insert ``base`` with M and ef_construction from the settings."""
        hnswlib = require(self.requirement, self.name)
        self._threads = threads
        self._index = hnswlib.Index(space=_SPACES[metric], dim=base.shape[1])
        self._index.init_index(
            max_elements=base.shape[0],
            M=self.settings.m,
            ef_construction=self.settings.ef_construction,
            random_seed=_RANDOM_SEED,
        )
        self._index.add_items(base, np.arange(base.shape[0]), num_threads=threads)
        self._ef: int | None = None

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """knn_query with ef = ``param``; hnswlib searches with max(ef, k)."""
        if param != self._ef:
            self._index.set_ef(param)
            self._ef = param
        labels, _ = self._index.knn_query(queries, k=k, num_threads=self._threads)
        ids = labels.astype(np.int64)
        return ids[0] if queries.ndim == 1 else ids

    def index_bytes(self) -> int:
        """Size hnswlib reports for the saved index (vectors, graph and labels)."""
        return int(self._index.index_file_size())
