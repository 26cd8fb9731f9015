"""FAISS product quantization peers, each wrapped in IndexRefineFlat (full vectors in RAM,
the shortlist re-ranked exactly) with the same code size as vecdb's PQ systems:

- faiss-pq: IndexPQ (a scan of every code), k_factor = rerank / k;
- faiss-opq: the same after a learned OPQ rotation (OPQMatrix, 8 rotation rounds like
  vecdb's instead of FAISS's default 50, which took minutes on 50k vectors);
- faiss-ivfpq: IndexIVFPQ (4 * sqrt(n) lists, residual codes), swept over nprobe, 100 re-ranked;
- faiss-hnsw-pq: IndexHNSWPQ, swept over efSearch, min(efSearch, 100) re-ranked.

Cosine searches inner product over normalized vectors (L2 for faiss-hnsw-pq, see there)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.optional import FAISS, require
from bench.systems.base import PQ_SHORTLIST, GraphSystem
from bench.systems.faiss_flat import faiss_metric_vectors


class FaissPq(GraphSystem):
    """IndexRefineFlat(IndexPQ), swept over the number of candidates re-ranked."""

    name = "faiss-pq"
    requirement = FAISS
    param_name = "rerank"

    def sweep(self) -> Sequence[int | None]:
        """Candidates re-ranked (k itself: ADC order only)."""
        return list(self.settings.rerank)

    def _compressed(self, faiss, dim: int, n: int, faiss_metric: int):
        """The index of codes the refine step wraps."""
        return faiss.IndexPQ(dim, self.settings.pq_bytes(dim), 8, faiss_metric)

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Train on ``base`` and add it (codes in the compressed index, vectors in the refine)."""
        faiss = require(self.requirement, self.name)
        faiss.omp_set_num_threads(threads)
        self._faiss, self._metric = faiss, metric
        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        vectors = faiss_metric_vectors(base, metric)
        self._base_index = self._compressed(faiss, base.shape[1], base.shape[0], faiss_metric)
        self._index = faiss.IndexRefineFlat(self._base_index)
        self._index.train(vectors)
        self._index.add(vectors)

    def _parameters(self, k: int, param: int | None):
        return self._faiss.IndexRefineSearchParameters(k_factor=max(param or k, k) / k)

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """Index.search with this sweep value's parameters."""
        _, ids = self._index.search(faiss_metric_vectors(queries, self._metric), k, params=self._parameters(k, param))
        return ids[0] if queries.ndim == 1 else ids

    def index_bytes(self) -> int:
        """The compressed index alone (the refine step also keeps every vector in RAM)."""
        return int(self._faiss.serialize_index(self._base_index).nbytes)


class FaissOpq(FaissPq):
    """IndexRefineFlat(OPQMatrix + IndexPQ): PQ after a learned rotation."""

    name = "faiss-opq"

    def _compressed(self, faiss, dim: int, n: int, faiss_metric: int):
        m = self.settings.pq_bytes(dim)
        rotation = faiss.OPQMatrix(dim, m)
        rotation.niter = 8
        return faiss.IndexPreTransform(rotation, faiss.IndexPQ(dim, m, 8, faiss_metric))


class FaissIvfPq(FaissPq):
    """IndexRefineFlat(IndexIVFPQ) with 4 * sqrt(n) lists, swept over nprobe; 100 re-ranked."""

    name = "faiss-ivfpq"
    param_name = "nprobe"

    def sweep(self) -> Sequence[int | None]:
        """The configured nprobe values."""
        return list(self.settings.nprobe)

    def _compressed(self, faiss, dim: int, n: int, faiss_metric: int):
        lists = int(4 * np.sqrt(n))
        self._coarse = faiss.IndexFlatL2(dim) if faiss_metric == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
        return faiss.IndexIVFPQ(self._coarse, dim, lists, self.settings.pq_bytes(dim), 8, faiss_metric)

    def _parameters(self, k: int, param: int | None):
        return self._faiss.IndexRefineSearchParameters(
            k_factor=max(PQ_SHORTLIST, k) / k, base_index_params=self._faiss.SearchParametersIVF(nprobe=param))


class FaissHnswPq(FaissPq):
    """IndexRefineFlat(IndexHNSWPQ) (M, efConstruction from the settings), swept over
    efSearch; min(efSearch, 100) re-ranked."""

    name = "faiss-hnsw-pq"
    param_name = "ef_search"

    def sweep(self) -> Sequence[int | None]:
        """The configured ef_search values."""
        return list(self.settings.ef_search)

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """As the other PQ systems, with cosine searched as L2 over normalized vectors (the same
        ranking): IndexHNSWPQ with METRIC_INNER_PRODUCT returned recall@10 0.11-0.31 on the
        sentence embeddings at every efSearch."""
        self._cosine_as_l2 = metric == "cosine"
        super().build(base, metric, threads)

    def _compressed(self, faiss, dim: int, n: int, faiss_metric: int):
        if self._cosine_as_l2:
            faiss_metric = faiss.METRIC_L2
        index = faiss.IndexHNSWPQ(dim, self.settings.pq_bytes(dim), self.settings.m, 8, faiss_metric)
        index.hnsw.efConstruction = self.settings.ef_construction
        return index

    def _parameters(self, k: int, param: int | None):
        width = max(min(param or k, PQ_SHORTLIST), k)
        return self._faiss.IndexRefineSearchParameters(
            k_factor=width / k, base_index_params=self._faiss.SearchParametersHNSW(efSearch=param))
