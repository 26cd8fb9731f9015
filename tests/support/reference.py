"""Float64 numpy reference implementations: the oracle for the native core."""

from __future__ import annotations

import numpy as np


def distances(queries: np.ndarray, data: np.ndarray, metric: str) -> np.ndarray:
    """(m, n) float64 distance matrix with vecdb's metric definitions."""
    q = np.asarray(queries, dtype=np.float64)
    x = np.asarray(data, dtype=np.float64)
    if metric == "l2":
        return ((q[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1)
    dots = q @ x.T
    if metric == "ip":
        return 1.0 - dots
    qn = np.linalg.norm(q, axis=1)
    xn = np.linalg.norm(x, axis=1)
    q_inv = np.divide(1.0, qn, out=np.zeros_like(qn), where=qn > 0)
    x_inv = np.divide(1.0, xn, out=np.zeros_like(xn), where=xn > 0)
    return 1.0 - dots * q_inv[:, None] * x_inv[None, :]


def knn(queries: np.ndarray, data: np.ndarray, k: int, metric: str, allowed=None):
    """Exact top-k by (distance, id), float64; padded with -1 / inf like vecdb."""
    d = distances(queries, data, metric)
    if allowed is not None:
        d = np.where(allowed[None, :], d, np.inf)
    ids = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=-1)[:, :k]
    dist = np.take_along_axis(d, ids, axis=1)
    ids = np.where(np.isinf(dist), -1, ids)
    return ids, dist


def tolerance(queries: np.ndarray, data: np.ndarray, metric: str) -> float:
    """Absolute error bound for float32 accumulation at this scale."""
    q = np.abs(np.asarray(queries, dtype=np.float64))
    x = np.abs(np.asarray(data, dtype=np.float64))
    dim = q.shape[-1]
    if metric == "cosine":
        return 1e-5 * np.sqrt(dim) + 1e-6
    scale = (q.max(initial=0) + x.max(initial=0)) ** 2 * dim
    return 1e-6 * np.sqrt(dim) * scale + 1e-6


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row's true neighbours (ids >= 0) that were found."""
    found = np.atleast_2d(found)
    truth = np.atleast_2d(truth)
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) / max(1, int((t >= 0).sum()))
            for f, t in zip(found, truth)]
    return float(np.mean(hits))


def tie_aware_recall(found: np.ndarray, queries: np.ndarray, data: np.ndarray, k: int, metric: str,
                     tolerance: float = 1e-5) -> float:
    """Recall@k when many points tie (copies of one vector): any of the points
    tied at the k-th true distance (within ``tolerance``) is a right answer
    for the places the closer points leave, and no more of them count (ten
    copies returned in place of the one closer point score 9 of 10)."""
    d = distances(queries, data, metric)
    width = min(k, d.shape[1])
    kth = np.partition(d, width - 1, axis=1)[:, width - 1]
    found = np.atleast_2d(found)[:, :width]
    hits = []
    for row, row_d, bound in zip(found, d, kth):
        ids = np.unique(row[row >= 0])
        closer = row_d[ids] < bound - tolerance
        tied = np.abs(row_d[ids] - bound) <= tolerance
        hits.append(closer.sum() + min(tied.sum(), width - (row_d < bound - tolerance).sum()))
    return float(np.mean(hits)) / width
