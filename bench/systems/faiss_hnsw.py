"""FAISS HNSW (IndexHNSWFlat), with efSearch passed per call through SearchParametersHNSW."""

from __future__ import annotations

import numpy as np

from bench.optional import FAISS, require
from bench.systems.base import GraphSystem
from bench.systems.faiss_flat import faiss_metric_vectors


class FaissHnsw(GraphSystem):
    """faiss.IndexHNSWFlat; inner product over normalized vectors for cosine."""

    name = "faiss-hnsw"
    requirement = FAISS

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Insert ``base`` into a new graph with M and efConstruction from the settings."""
        faiss = require(self.requirement, self.name)
        faiss.omp_set_num_threads(threads)
        self._faiss = faiss
        self._metric = metric
        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        self._index = faiss.IndexHNSWFlat(base.shape[1], self.settings.m, faiss_metric)
        self._index.hnsw.efConstruction = self.settings.ef_construction
        self._index.add(faiss_metric_vectors(base, metric))
        # One parameter object per ef_search, made here so searches do not allocate it.
        self._parameters = {ef: faiss.SearchParametersHNSW(efSearch=ef) for ef in self.sweep()}

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """Index.search with efSearch = ``param``."""
        batch = faiss_metric_vectors(queries, self._metric)
        _, ids = self._index.search(batch, k, params=self._parameters[param])
        return ids[0] if queries.ndim == 1 else ids

    def index_bytes(self) -> int:
        """Size of the serialized index (vectors and graph)."""
        return int(self._faiss.serialize_index(self._index).nbytes)
