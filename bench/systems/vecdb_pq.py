"""vecdb product quantization: a scan of every code (vecdb.ProductQuantizer.search) or an
HNSW graph over codes (vecdb.HNSWIndex with a quantizer), each followed by an exact
re-rank (vecdb.rerank) of the shortlist with the full vectors, which the harness holds in
RAM (as FAISS's IndexRefineFlat does); the -opq variants learn an OPQ rotation first."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.optional import VECDB, require
from bench.systems.base import PQ_SHORTLIST, GraphSystem


class VecdbPq(GraphSystem):
    """ProductQuantizer (m = dim / 8 bytes) scan, then the best ``rerank`` candidates re-ranked."""

    name = "vecdb-pq"
    requirement = VECDB
    param_name = "rerank"
    opq = False

    def sweep(self) -> Sequence[int | None]:
        """Candidates re-ranked (k itself: ADC order only)."""
        return list(self.settings.rerank)

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Train the codebooks on ``base`` and encode it."""
        vecdb = require(self.requirement, self.name)
        self._vecdb, self._base, self._metric, self._threads = vecdb, base, metric, threads
        self._pq = vecdb.ProductQuantizer(base.shape[1], self.settings.pq_bytes(base.shape[1]), metric, opq=self.opq)
        self._pq.train(base, threads=threads)
        self._codes = self._pq.encode(base, threads=threads)

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """A shortlist (ADC order), re-ranked exactly to k."""
        shortlist = self._shortlist(queries, k, param)
        ids, _ = self._vecdb.rerank(queries, shortlist, self._base, k=k, metric=self._metric, threads=self._threads)
        return ids

    def _shortlist(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """The max(param, k) code rows nearest by ADC."""
        rows, _ = self._pq.search(queries, self._codes, k=max(param or k, k), threads=self._threads)
        return rows

    def index_bytes(self) -> int:
        """Codes, codebooks and any OPQ rotation (the full vectors for re-ranking stay outside)."""
        rotation = self._pq.rotation
        return int(self._codes.nbytes + self._pq.centroids.nbytes + (0 if rotation is None else rotation.nbytes))


class VecdbHnswPq(VecdbPq):
    """vecdb.HNSWIndex over PQ codes (M, ef_construction from the settings), searched with
    ef = ``param``; the best min(ef, 100) are re-ranked."""

    name = "vecdb-hnsw-pq"
    param_name = "ef_search"

    def sweep(self) -> Sequence[int | None]:
        """The configured ef_search values."""
        return list(self.settings.ef_search)

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Train the codebooks on ``base``, then insert it into a graph that keeps codes."""
        super().build(base, metric, threads)
        self._index = self._vecdb.HNSWIndex(base.shape[1], metric, M=self.settings.m,
                                            ef_construction=self.settings.ef_construction, quantizer=self._pq)
        del self._codes
        self._index.add(base, threads=threads)

    def _shortlist(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """The graph's best max(min(ef, 100), k) by ADC, with ef = ``param``."""
        width = max(min(param or k, PQ_SHORTLIST), k)
        shortlist, _ = self._index.search(queries, width, ef=param, threads=self._threads)
        return shortlist

    def index_bytes(self) -> int:
        """HNSWIndex.nbytes: codes, codebooks (and rotation), links and the id map."""
        return int(self._index.nbytes)


class VecdbOpq(VecdbPq):
    """The code scan with an OPQ rotation learned first."""

    name = "vecdb-opq"
    opq = True


class VecdbHnswOpq(VecdbHnswPq):
    """The graph over codes with an OPQ rotation learned first."""

    name = "vecdb-hnsw-opq"
    opq = True
