"""Seeded synthetic datasets drawn from a Gaussian mixture.

Uniform noise is a poor stand-in for embeddings: in high dimension all its points are
nearly equidistant, so graph indexes and early-exit tricks behave unlike on real data.
Clusters of uneven size and spread give near neighbours that are meaningfully nearer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.datasets.dataset import Dataset
from bench.vectors import check_metric, normalize_rows

# Cluster spreads relative to the unit-variance centres: neighbours within a cluster are
# clearly nearer than other clusters, yet clusters are wide enough to hold real structure.
_SPREAD_RANGE = (0.3, 0.7)
# Dirichlet concentration of cluster weights; small values give uneven cluster sizes.
_WEIGHT_CONCENTRATION = 2.0


@dataclass(frozen=True)
class MixtureSample:
    """Points drawn from a Gaussian mixture with the cluster each came from."""

    points: np.ndarray
    labels: np.ndarray
    centers: np.ndarray


def default_cluster_count(n_points: int) -> int:
    """About sqrt(n) clusters, kept between 4 and 1024."""
    return min(1024, max(4, int(math.sqrt(n_points))))


def sample_gaussian_mixture(
    n_points: int,
    dim: int,
    n_clusters: int,
    rng: np.random.Generator,
    center_scales: np.ndarray | None = None,
    spread_scales: np.ndarray | None = None,
) -> MixtureSample:
    """Draw ``n_points`` float32 points of ``dim`` dimensions from a random mixture of ``n_clusters``.

    ``center_scales`` and ``spread_scales`` (``dim`` values each) multiply the centres and
    the within-cluster deviations per dimension; without them every dimension has the same
    scale. They consume no random numbers, so the same ``rng`` draws the same mixture either way.
    """
    centers = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    if center_scales is not None:
        centers *= center_scales
    weights = rng.dirichlet(np.full(n_clusters, _WEIGHT_CONCENTRATION))
    spreads = rng.uniform(*_SPREAD_RANGE, size=n_clusters).astype(np.float32)
    labels = rng.choice(n_clusters, size=n_points, p=weights)
    points = rng.standard_normal((n_points, dim), dtype=np.float32)
    points *= spreads[labels, None]
    if spread_scales is not None:
        points *= spread_scales
    points += centers[labels]
    return MixtureSample(points=points, labels=labels, centers=centers)


def synthetic_name(n_base: int, dim: int, metric: str, n_queries: int, seed: int) -> str:
    """The dataset name that identifies a synthetic set by all its parameters."""
    return f"synthetic-{n_base}x{dim}-{metric}-q{n_queries}-seed{seed}"


def make_synthetic(
    n_base: int,
    dim: int,
    metric: str = "l2",
    n_queries: int = 1000,
    seed: int = 0,
    n_clusters: int | None = None,
) -> Dataset:
    """A clustered dataset; the same arguments always give the same vectors.

    Queries come from the same mixture as the base but are separate draws, so no query is
    a base vector. For cosine both are normalized to unit length.
    """
    check_metric(metric)
    if n_base < 1 or dim < 1 or n_queries < 1:
        raise ValueError(f"need n_base, dim, n_queries >= 1; got {n_base}, {dim}, {n_queries}")
    rng = np.random.default_rng(seed)
    clusters = n_clusters or default_cluster_count(n_base)
    points = sample_gaussian_mixture(n_base + n_queries, dim, clusters, rng).points
    if metric == "cosine":
        points = normalize_rows(points)
    return Dataset(
        name=synthetic_name(n_base, dim, metric, n_queries, seed),
        base=np.ascontiguousarray(points[:n_base]),
        queries=np.ascontiguousarray(points[n_base:]),
        metric=metric,
    )
