"""Brute force in numpy: one matrix product, then argpartition for the top k.

This is what a user without a vector library writes, and the baseline vecdb's flat search
must beat. Threads come from the BLAS library, which reads its thread count from the
environment at import time; the runner sets it before starting the worker process.
"""

from __future__ import annotations

import numpy as np

from bench.optional import NUMPY
from bench.systems.base import System
from bench.vectors import normalize_rows

# Rows of the (queries x base) score matrix computed at once, bounding it to 128 MiB of
# float32 however large the batch; a user would block the same way.
_SCORE_ELEMENTS = 1 << 25


class NumpyFlat(System):
    """Exact search with numpy matrix products.

    Cosine searches normalized copies (the base copy is the index); l2 and ip search the
    caller's matrix in place, adding only the squared norms for l2.
    """

    name = "numpy-flat"
    requirement = NUMPY
    exact = True

    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Keep (a normalized copy of) ``base`` and, for l2, half its squared norms."""
        self._metric = metric
        self._base = normalize_rows(base) if metric == "cosine" else base
        # ||x - q||^2 = ||x||^2 - 2 x.q + ||q||^2 ranks like ||x||^2 / 2 - x.q.
        self._half_norms = 0.5 * np.einsum("ij,ij->i", base, base) if metric == "l2" else None

    def _top_k(self, scores: np.ndarray, k: int) -> np.ndarray:
        """Column indices of the k smallest scores per row, sorted ascending."""
        if k >= scores.shape[-1]:
            return np.argsort(scores, axis=-1)
        part = np.argpartition(scores, k - 1, axis=-1)[..., :k]
        order = np.argsort(np.take_along_axis(scores, part, axis=-1), axis=-1)
        return np.take_along_axis(part, order, axis=-1)

    def _search_block(self, queries: np.ndarray, k: int) -> np.ndarray:
        if self._metric == "cosine":
            queries = normalize_rows(queries)
        scores = queries @ self._base.T
        if self._half_norms is None:
            np.negative(scores, out=scores)
        else:
            np.subtract(self._half_norms, scores, out=scores)
        return self._top_k(scores, k)

    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """Top-k ids by one matrix-vector product (1-D query) or blocked matrix products."""
        if queries.ndim == 1:
            return self._search_block(queries, k)
        rows = max(1, _SCORE_ELEMENTS // self._base.shape[0])
        blocks = [self._search_block(queries[s : s + rows], k) for s in range(0, len(queries), rows)]
        return np.concatenate(blocks)

    def index_bytes(self) -> int:
        """The matrix searched plus the norms kept for l2."""
        norms = 0 if self._half_norms is None else self._half_norms.nbytes
        return int(self._base.nbytes + norms)
