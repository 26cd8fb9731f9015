"""Exact re-ranking of candidate shortlists: the second stage of every
two-stage search (PQ codes or an MRL prefix first, full vectors last), as
FAISS's ``IndexRefineFlat``.

Example:
    >>> rows, _ = pq.search(queries, codes, k=100)        # a coarse shortlist
    >>> ids, distances = rerank(queries, rows, vectors, k=10, metric="cosine")
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np

from vecdb import _core
from vecdb.checks import check_k
from vecdb.errors import DimensionMismatchError, InvalidArgumentError
from vecdb.metrics import parse_metric
from vecdb.native.arrays import as_matrix, candidate_ids, check_threads
from vecdb.native.results import SearchResult, unwrap_single

# Floats of candidate vectors gathered at once by rerank() (64 MB).
_GATHER_FLOATS = 16 << 20

VectorSource = Union[np.ndarray, Callable[[np.ndarray], np.ndarray]]


def rerank(queries: Any, candidates: Any, vectors: VectorSource, k: int = 10, *, metric: str = "cosine",
           threads: Optional[int] = None) -> SearchResult:
    """Exact k nearest of each query among its candidates.

    Args:
        queries: ``(m, dim)`` array or one ``(dim,)`` vector.
        candidates: ``(m, r)`` candidate ids per query (``-1`` entries, as
            searches pad with, are skipped); ids must be distinct per query.
        vectors: where the full vectors are: an array indexed by id (a
            ``np.memmap`` works, read only where needed), or a callable
            taking an int64 id array and returning their ``(len, dim)`` rows.
        k: results per query (clipped to ``r``).
        metric: the exact distance to rank by.

    Returns ``(ids, distances)`` as every search does.
    """
    k = check_k(k)
    matrix, single = as_matrix(queries, "float32", None, "queries")
    ids = candidate_ids(candidates, matrix.shape[0])
    metric, threads = parse_metric(metric), check_threads(threads)
    # Candidate vectors are gathered a slice of queries at a time, so a large
    # batch never holds more than ~_GATHER_FLOATS of them at once.
    per_slice = max(1, _GATHER_FLOATS // max(1, ids.shape[1] * matrix.shape[1]))
    parts = [_rerank_slice(matrix[start:start + per_slice], ids[start:start + per_slice], vectors, k, metric, threads)
             for start in range(0, matrix.shape[0], per_slice)]
    if len(parts) == 1:
        return unwrap_single(parts[0], single)
    return unwrap_single((np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])), single)


def _rerank_slice(queries: np.ndarray, ids: np.ndarray, vectors: VectorSource, k: int, metric: str,
                  threads: int) -> SearchResult:
    wanted = ids.ravel()
    present = wanted >= 0
    fetched, _ = as_matrix(_fetch(vectors, wanted[present]), "float32", queries.shape[1], "candidate vectors")
    if fetched.shape[0] != int(present.sum()):
        raise DimensionMismatchError(f"vectors returned {fetched.shape[0]} rows for {int(present.sum())} candidate ids")
    if present.all():
        rows = fetched
    else:
        rows = np.zeros((wanted.size, queries.shape[1]), dtype=np.float32)
        rows[present] = fetched
    return _core.rerank(queries, ids, rows, metric, k, threads)

def _fetch(vectors: VectorSource, ids: np.ndarray) -> Any:
    if callable(vectors):
        return vectors(ids)
    source = np.asarray(vectors)
    if ids.size and int(ids.max()) >= source.shape[0]:
        raise InvalidArgumentError(f"candidate id {int(ids.max())} is past the end of vectors ({source.shape[0]} rows)")
    return source[ids]
