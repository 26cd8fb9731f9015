"""Seeded synthetic datasets with the Matryoshka (MRL) property: leading dimensions matter most.

Matryoshka-trained embeddings, and ordinary ones after a PCA rotation, put most of their
variance in the first dimensions, so a prefix of each vector is a coarser embedding of the
same point. This generator gives the Gaussian mixture of ``bench.datasets.synthetic`` that
shape by scaling dimension ``i`` (0-based) of

- the cluster centres by ``(i + 1) ** -CENTER_DECAY`` (which cluster a point is in, the
  coarse "topic", is mostly told by the first dimensions), and
- each point's deviation from its centre by ``(i + 1) ** -SPREAD_DECAY`` (the fine
  differences between neighbours decay more slowly, so they reach far into the tail).

The exponents were chosen so that the set resembles the shared npm-minilm-384 embeddings
after a PCA rotation (exact search, 300 queries, cosine; this set at 200,000 x 768, npm at
its 50,000 x 384):

| property                                    | this set | npm-minilm-384 + PCA |
|---------------------------------------------|----------|----------------------|
| mean distance / 10th-neighbour distance     | 2.4      | 2.3                  |
| recall@10 of the 64-d prefix alone          | 0.44     | 0.57                 |
| true top-10 among the 64-d prefix's top 100 | 0.97     | 0.94                 |
| recall@10 of the 256-d prefix alone         | 0.68     | 0.96                 |

So 64- to 128-d prefixes are informative (a few hundred prefix candidates hold nearly all
true neighbours) but not sufficient (alone they find about half of them): the funnel's
exact re-rank at full dimension is needed. At 50,000 points, the same spread decay as the
centres' (0.5) made prefixes nearly sufficient (64-d prefix recall 0.8, its top 50 held
every true neighbour) and no spread decay made them useless (64-d prefix recall 0.03).
"""

from __future__ import annotations

import numpy as np

from bench.datasets.dataset import Dataset
from bench.datasets.synthetic import default_cluster_count, sample_gaussian_mixture
from bench.vectors import check_metric, normalize_rows

CENTER_DECAY = 0.5
SPREAD_DECAY = 0.3


def decay_scales(dim: int, exponent: float) -> np.ndarray:
    """``(i + 1) ** -exponent`` for dimensions ``i = 0 .. dim - 1``, as float32."""
    return (np.arange(1, dim + 1, dtype=np.float64) ** -exponent).astype(np.float32)


def synthetic_mrl_name(n_base: int, dim: int, metric: str, n_queries: int, seed: int) -> str:
    """The dataset name that identifies a synthetic MRL set by all its parameters."""
    return f"synthetic-mrl-{n_base}x{dim}-{metric}-q{n_queries}-seed{seed}"


def make_synthetic_mrl(
    n_base: int,
    dim: int,
    metric: str = "cosine",
    n_queries: int = 1000,
    seed: int = 0,
    n_clusters: int | None = None,
) -> Dataset:
    """A clustered dataset whose per-dimension scale decays; the same arguments always give
    the same vectors.

    Queries come from the same mixture as the base but are separate draws. For cosine both
    are normalized to unit length (after the scaling, so the decay survives).
    """
    check_metric(metric)
    if n_base < 1 or dim < 1 or n_queries < 1:
        raise ValueError(f"need n_base, dim, n_queries >= 1; got {n_base}, {dim}, {n_queries}")
    rng = np.random.default_rng(seed)
    points = sample_gaussian_mixture(
        n_base + n_queries,
        dim,
        n_clusters or default_cluster_count(n_base),
        rng,
        center_scales=decay_scales(dim, CENTER_DECAY),
        spread_scales=decay_scales(dim, SPREAD_DECAY),
    ).points
    if metric == "cosine":
        points = normalize_rows(points)
    return Dataset(
        name=synthetic_mrl_name(n_base, dim, metric, n_queries, seed),
        base=np.ascontiguousarray(points[:n_base]),
        queries=np.ascontiguousarray(points[n_base:]),
        metric=metric,
    )
