"""Data the index tests run on: seeded synthetic clusters and a slice of real
sentence embeddings kept in tests/data (see its README)."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

DATA = Path(__file__).parents[1] / "data"


def clustered(rng: np.random.Generator, n: int, dim: int, clusters: int = 20) -> np.ndarray:
    """Gaussian mixture: unit-variance blobs around centres spread 3x wider."""
    centers = rng.standard_normal((clusters, dim)).astype(np.float32) * 3
    return centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32)


def low_rank_clusters(rng: np.random.Generator, n: int, n_queries: int, dim: int, clusters: int = 50,
                      latent_dim: int = 32) -> Tuple[np.ndarray, np.ndarray]:
    """Base vectors and queries from one mixture whose clusters live near a
    latent_dim-dimensional subspace: like real embeddings, the intrinsic
    dimension is far below dim (isotropic Gaussians in 128-d are not, and
    no graph index finds their neighbours cheaply)."""
    centers = rng.standard_normal((clusters, latent_dim)) * 3
    latent = centers[rng.integers(0, clusters, n + n_queries)] + rng.standard_normal((n + n_queries, latent_dim))
    projection = rng.standard_normal((latent_dim, dim)) / np.sqrt(latent_dim)
    points = (latent @ projection + 0.1 * rng.standard_normal((n + n_queries, dim))).astype(np.float32)
    return points[:n], points[n:]


def minilm() -> Tuple[np.ndarray, np.ndarray]:
    """3000 real 384-d sentence embeddings and 100 queries (cosine), float32."""
    base = np.load(DATA / "minilm_base_3000.npy").astype(np.float32)
    queries = np.load(DATA / "minilm_queries_100.npy").astype(np.float32)
    return base, queries
