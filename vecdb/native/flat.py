"""Exact (brute-force) nearest-neighbour search: the reference for recall.

Results follow FAISS's contract: for m queries, ``ids`` is an ``(m, k)``
int64 array and ``distances`` an ``(m, k)`` float32 array, closest first,
ties broken by the smaller id. ``k`` larger than the number of vectors is
clipped to it; when a filter leaves fewer than ``k`` candidates the
remaining slots hold id ``-1`` and distance ``inf``. A single 1-D query
returns 1-D arrays. See :mod:`vecdb.metrics` for what distances mean.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from vecdb import _core
from vecdb.checks import check_k
from vecdb.native.base import NativeIndex
from vecdb.native.arrays import (
    allowed_bitset,
    as_data_matrix,
    as_matrix,
    check_threads,
    parse_dtype,
    query_dtype,
)
from vecdb.errors import InvalidDTypeError
from vecdb.metrics import parse_metric
from vecdb.native.results import SearchResult, unwrap_single

def knn(
    data: Any,
    queries: Any,
    k: int = 10,
    *,
    metric: str = "cosine",
    allowed: Any = None,
    threads: Optional[int] = None,
) -> SearchResult:
    """Exact k nearest neighbours of each query among the rows of ``data``.

    ``data`` is searched in place, without a copy, when it is a C-contiguous
    float32, float16 or int8 array; other numeric arrays are converted to
    float32 first. Queries are float32 (int8 when ``data`` is int8).

    Args:
        data: ``(n, d)`` array of vectors.
        queries: ``(m, d)`` array, or one ``(d,)`` vector.
        k: neighbours per query (clipped to ``n``).
        metric: ``"l2"``, ``"ip"`` or ``"cosine"``.
        allowed: optional filter: boolean mask of length ``n`` or array of row ids.
        threads: worker threads; ``None`` uses every core.

    Returns:
        ``(ids, distances)``; see the module docstring for shapes and padding.
    """
    metric = parse_metric(metric)
    k = check_k(k)
    base = as_data_matrix(data)
    query_matrix, single = as_matrix(queries, query_dtype(base.dtype.name), base.shape[1], "queries")
    words = allowed_bitset(allowed, base.shape[0])
    result = _core.knn(base, query_matrix, k, metric, words, check_threads(threads))
    return unwrap_single(result, single)


def pairwise_distances(
    queries: Any, data: Any, *, metric: str = "cosine", threads: Optional[int] = None
) -> np.ndarray:
    """Distance matrix between query rows and data rows, from the SIMD kernels.

    Returns a float32 array of shape ``(m, n)`` (``(n,)`` for a 1-D query).
    ``data`` may be float32, float16 or int8; see :func:`knn` for conversions.
    """
    metric = parse_metric(metric)
    base = as_data_matrix(data)
    query_matrix, single = as_matrix(queries, query_dtype(base.dtype.name), base.shape[1], "queries")
    out = _core.pairwise(base, query_matrix, metric, check_threads(threads))
    return out[0] if single else out


class FlatIndex(NativeIndex):
    """An exact index: vectors held contiguously in memory, searched by full scan.

    Args:
        dim: vector dimension (1 to 32768).
        metric: ``"l2"``, ``"ip"`` or ``"cosine"`` (see :mod:`vecdb.metrics`).
        dtype: storage type, ``"float32"``, ``"float16"`` (half the memory,
            queries stay float32) or ``"int8"`` (vectors and queries int8).

    Example:
        >>> index = FlatIndex(384, metric="cosine")
        >>> ids = index.add(vectors)
        >>> neighbours, distances = index.search(query, k=10)
    """

    def __init__(self, dim: int, metric: str = "cosine", dtype: str = "float32") -> None:
        self._native = _core.FlatIndex(dim, parse_metric(metric), parse_dtype(dtype))

    @property
    def dtype(self) -> str:
        """Storage dtype name."""
        return self._native.dtype

    def __repr__(self) -> str:
        return f"FlatIndex(dim={self.dim}, metric={self.metric!r}, dtype={self.dtype!r}, size={len(self)})"

    def add(self, vectors: Any, *, threads: Optional[int] = None) -> np.ndarray:
        """Append vectors (``(n, dim)`` or one ``(dim,)``); returns their int64 ids.

        Ids are consecutive, starting at the current size. Nothing is added
        when any row is invalid (NaN, infinity, out of the dtype's range).
        """
        return self._add(vectors, self.dtype, threads)

    def search(
        self, queries: Any, k: int = 10, *, allowed: Any = None, threads: Optional[int] = None
    ) -> SearchResult:
        """Exact k nearest neighbours of each query.

        Args:
            queries: ``(m, dim)`` array or one ``(dim,)`` vector.
            k: neighbours per query (clipped to ``len(self)``).
            allowed: optional filter: boolean mask of length ``len(self)`` or ids.
            threads: worker threads; ``None`` uses every core.

        Returns:
            ``(ids, distances)``; see :mod:`vecdb.native.flat` for shapes and padding.
        """
        k = check_k(k)
        matrix, single = as_matrix(queries, query_dtype(self.dtype), self.dim, "queries")
        # Search the rows present now; rows another thread adds meanwhile
        # are not seen (and the filter stays sized right).
        visible = len(self)
        words = allowed_bitset(allowed, visible)
        result = self._native.search(matrix, k, words, check_threads(threads), visible)
        return unwrap_single(result, single)

    def get(self, ids: Any) -> np.ndarray:
        """Copies of the stored vectors with the given ids, in the storage dtype."""
        id_array = np.atleast_1d(np.asarray(ids))
        if id_array.dtype.kind not in "iu" and id_array.size:
            raise InvalidDTypeError(f"ids must be integers, got dtype {id_array.dtype}")
        return self._native.copy_rows(np.ascontiguousarray(id_array, dtype=np.int64).ravel())
