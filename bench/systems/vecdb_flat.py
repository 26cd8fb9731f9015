"""vecdb's exact flat index (vecdb.FlatIndex)."""

from __future__ import annotations

import numpy as np

from bench.optional import VECDB, require
from bench.systems.base import System


class VecdbFlat(System):
    """vecdb.FlatIndex holding a float32 copy of the base; searched with an explicit thread count."""

    name = "vecdb-flat"
    requirement = VECDB
    exact = True

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Add ``base`` to a new FlatIndex."""
        vecdb = require(self.requirement, self.name)
        self._threads = threads
        self._index = vecdb.FlatIndex(base.shape[1], metric=metric, dtype="float32")
        self._index.add(base, threads=threads)

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """FlatIndex.search; a 1-D query takes vecdb's single-query path."""
        ids, _ = self._index.search(queries, k, threads=self._threads)
        return ids

    def index_bytes(self) -> int:
        """FlatIndex.nbytes."""
        return int(self._index.nbytes)
