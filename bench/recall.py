"""Recall@k of returned ids against the exact neighbours, robust to float rounding ties.

A returned id counts as a hit when it is among the true top-k, or when its exact distance
(recomputed in float64) equals the true k-th distance up to float32 rounding. Without the
second rule two exact searches that sum dot products in different orders could disagree
on a near-tie at rank k and report each other below 1.0.
"""

from __future__ import annotations

import numpy as np

# float32 dot products of length d carry relative errors of about d * 2^-24 in the worst
# case and far less typically; 1e-5 of the magnitudes involved covers d up to a few thousand.
_TIE_TOLERANCE = 1e-5


def pair_distances(queries: np.ndarray, vectors: np.ndarray, metric: str) -> np.ndarray:
    """Float64 distances between row i of ``queries`` and row i of ``vectors`` in vecdb's convention."""
    q = queries.astype(np.float64)
    x = vectors.astype(np.float64)
    if metric == "l2":
        return np.einsum("ij,ij->i", q - x, q - x)
    dots = np.einsum("ij,ij->i", q, x)
    if metric == "ip":
        return 1.0 - dots
    norms = np.linalg.norm(q, axis=1) * np.linalg.norm(x, axis=1)
    return 1.0 - dots / np.where(norms == 0, 1.0, norms)


def _rounding_scale(queries: np.ndarray, vectors: np.ndarray, metric: str) -> np.ndarray:
    """The magnitude a float32 distance's rounding error is proportional to, per pair."""
    query_norms = np.linalg.norm(queries.astype(np.float64), axis=1)
    vector_norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    if metric == "l2":
        return query_norms**2 + vector_norms**2
    if metric == "ip":
        return query_norms * vector_norms
    return np.ones_like(query_norms)


def recall_at_k(
    found_ids: np.ndarray,
    true_ids: np.ndarray,
    base: np.ndarray,
    queries: np.ndarray,
    metric: str,
) -> float:
    """Mean recall@k over queries, k being ``true_ids.shape[1]``.

    ``found_ids`` has one row per query (row i answers ``queries[i]``); only its first k
    columns count, -1 marks a missing result, and a repeated id counts once.
    """
    k = true_ids.shape[1]
    found = np.sort(found_ids[:, :k].astype(np.int64), axis=1)
    valid = found >= 0
    valid[:, 1:] &= found[:, 1:] != found[:, :-1]
    in_truth = (found[:, :, None] == true_ids[:, None, :]).any(axis=2) & valid
    rows, columns = np.nonzero(valid & ~in_truth)
    ties = 0
    if rows.size:
        candidates = base[found[rows, columns]]
        kth_true = base[true_ids[rows, -1]]
        candidate_distances = pair_distances(queries[rows], candidates, metric)
        kth_distances = pair_distances(queries[rows], kth_true, metric)
        tolerance = _TIE_TOLERANCE * _rounding_scale(queries[rows], candidates, metric)
        ties = int(np.count_nonzero(candidate_distances <= kth_distances + tolerance))
    return (int(in_truth.sum()) + ties) / (true_ids.shape[0] * k)
