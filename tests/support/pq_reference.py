"""A float64 numpy implementation of product quantization: the oracle the
native codes, decoded vectors and ADC distances are checked against. It
takes the native quantizer's centroids (training is checked by what it
achieves, not bit for bit)."""

from __future__ import annotations

import numpy as np


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float64)
    if metric != "cosine":
        return x
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def sub_distances(vectors: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    """(n, m, 256) squared L2 distances of each prepared sub-vector to its centroids."""
    m, k, d = centroids.shape
    x = prepare(vectors, metric).reshape(len(vectors), m, d)
    c = centroids.astype(np.float64)
    return ((x[:, :, None, :] - c[None, :, :, :]) ** 2).sum(axis=-1)


def encode(vectors: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    return sub_distances(vectors, centroids, metric).argmin(axis=-1).astype(np.uint8)


def decode(codes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    m = centroids.shape[0]
    return np.concatenate([centroids[j][codes[:, j]] for j in range(m)], axis=1)


def lookup_tables(queries: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    """(nq, m, 256): squared sub-distances for l2, negated sub-dot products otherwise."""
    m, k, d = centroids.shape
    q = prepare(queries, metric).reshape(len(queries), m, d)
    c = centroids.astype(np.float64)
    if metric == "l2":
        return ((q[:, :, None, :] - c[None]) ** 2).sum(axis=-1)
    return -np.einsum("qjd,jkd->qjk", q, c)


def adc_distances(queries: np.ndarray, codes: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    """(nq, n) ADC distances: bias + sum over sub-vectors of table entries."""
    tables = lookup_tables(queries, centroids, metric)
    m = centroids.shape[0]
    bias = 0.0 if metric == "l2" else 1.0
    return bias + sum(tables[:, j, codes[:, j]] for j in range(m))
