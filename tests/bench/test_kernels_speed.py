"""Distance-kernel micro-benchmarks: vecdb.pairwise_distances against numpy.

Run with ``pytest tests/bench/test_kernels_speed.py --benchmark-only`` (add
``--benchmark-columns=mean,stddev,ops`` for a compact table). Each group holds one
shape, dimension and metric, with a vecdb and a numpy row, so the ratio is read off
directly. Both sides compute the full distance matrix from raw inputs on every call, in
one thread (vecdb's ``threads=1``, numpy's BLAS limited with threadpoolctl), so the
comparison is kernel against kernel. Every benchmarked result is also checked against a
float64 reference.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import vecdb
from threadpoolctl import threadpool_limits

N_VECTORS = 10_000
SHAPES = {"1x10k": 1, "64x10k": 64}
DIMS = (128, 384, 768)
METRICS = ("l2", "ip", "cosine")


def numpy_pairwise(queries: np.ndarray, data: np.ndarray, metric: str) -> np.ndarray:
    """Distances in vecdb's convention with numpy matrix products (l2 squared, ip/cosine 1 - similarity)."""
    dots = queries @ data.T
    if metric == "ip":
        return 1.0 - dots
    data_sq = np.einsum("ij,ij->i", data, data)
    query_sq = np.einsum("...j,...j->...", queries, queries)
    if metric == "l2":
        return np.maximum(np.add.outer(query_sq, data_sq) - 2.0 * dots, 0.0)
    return 1.0 - dots / np.sqrt(np.multiply.outer(query_sq, data_sq))


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Keep numpy's BLAS to one thread for the whole module."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("implementation", ("vecdb", "numpy"))
def test_pairwise_speed(benchmark, implementation: str, shape: str, dim: int, metric: str) -> None:
    """Time one distance matrix; group by (shape, dim, metric) so vecdb and numpy sit together."""
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((N_VECTORS, dim), dtype=np.float32)
    queries = rng.standard_normal((SHAPES[shape], dim), dtype=np.float32)
    if SHAPES[shape] == 1:
        queries = queries[0]
    benchmark.group = f"{shape} d={dim} {metric}"
    if implementation == "vecdb":
        result = benchmark(vecdb.pairwise_distances, queries, data, metric=metric, threads=1)
    else:
        result = benchmark(numpy_pairwise, queries, data, metric)
    reference = numpy_pairwise(queries.astype(np.float64), data.astype(np.float64), metric)
    # float32 sums of dim products: absolute error grows with the squared norms (about dim).
    np.testing.assert_allclose(result, reference, rtol=1e-4, atol=1e-5 * dim)
