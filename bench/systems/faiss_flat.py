"""FAISS exact search: IndexFlatIP over normalized vectors for cosine, IndexFlatIP for ip,
IndexFlatL2 for l2."""

from __future__ import annotations

import numpy as np

from bench.optional import FAISS, require
from bench.systems.base import System
from bench.vectors import normalize_rows


def faiss_metric_vectors(vectors: np.ndarray, metric: str) -> np.ndarray:
    """2-D float32 rows in the form FAISS searches: normalized for cosine, unchanged otherwise."""
    rows = np.atleast_2d(vectors)
    return normalize_rows(rows) if metric == "cosine" else np.ascontiguousarray(rows, dtype=np.float32)


class FaissFlat(System):
    """faiss.IndexFlat; threads set with faiss.omp_set_num_threads for build and search."""

    name = "faiss-flat"
    requirement = FAISS
    exact = True

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Copy ``base`` into a new flat index."""
        faiss = require(self.requirement, self.name)
        faiss.omp_set_num_threads(threads)
        self._faiss = faiss
        self._metric = metric
        dim = base.shape[1]
        self._index = faiss.IndexFlatL2(dim) if metric == "l2" else faiss.IndexFlatIP(dim)
        self._index.add(faiss_metric_vectors(base, metric))

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """Index.search; FAISS takes only 2-D batches, so a 1-D query is a batch of one."""
        _, ids = self._index.search(faiss_metric_vectors(queries, self._metric), k)
        return ids[0] if queries.ndim == 1 else ids

    def index_bytes(self) -> int:
        """Size of the serialized index."""
        return int(self._faiss.serialize_index(self._index).nbytes)
