"""SIMD distance kernels against a float64 numpy reference, on every SIMD
level this CPU supports, across dimensions that hit every tail length."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from tests.support import reference

METRICS = ["l2", "ip", "cosine"]
# Every tail length for 8- and 16-lane kernels, the odd sizes the issue names,
# and the large end.
DIMS = sorted(set(range(1, 40)) | {47, 63, 64, 65, 97, 127, 128, 129, 255, 257, 384, 511, 768, 1023, 1024, 1030, 4097})


def integer_vectors(rng, shape, low=-8, high=8):
    """Integer-valued floats: every product and sum is exact in float32 (and
    representable in float16), so kernels must match the reference exactly."""
    return rng.integers(low, high + 1, size=shape).astype(np.float32)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_float32_exact_on_integer_data(simd_level, rng, dim, metric):
    queries = integer_vectors(rng, (6, dim))
    data = integer_vectors(rng, (11, dim))
    got = vecdb.pairwise_distances(queries, data, metric=metric)
    np.testing.assert_array_equal(got, reference.distances(queries, data, metric))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("metric", METRICS)
def test_float32_random(simd_level, rng, dim, metric):
    queries = rng.standard_normal((5, dim)).astype(np.float32)
    data = rng.standard_normal((9, dim)).astype(np.float32)
    got = vecdb.pairwise_distances(queries, data, metric=metric)
    want = reference.distances(queries, data, metric)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=reference.tolerance(queries, data, metric))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("metric", METRICS)
def test_float16_storage(simd_level, rng, dim, metric):
    queries = rng.standard_normal((5, dim)).astype(np.float32)
    data = rng.standard_normal((9, dim)).astype(np.float16)
    got = vecdb.pairwise_distances(queries, data, metric=metric)
    # The reference sees exactly the half values the kernel reads.
    want = reference.distances(queries, data.astype(np.float32), metric)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=reference.tolerance(queries, data, metric))


@pytest.mark.parametrize("dim", [1, 7, 8, 9, 63, 64, 65, 384, 1030])
def test_float16_exact_on_integer_data(simd_level, rng, dim):
    queries = integer_vectors(rng, (4, dim))
    data = integer_vectors(rng, (7, dim)).astype(np.float16)
    for metric in ["l2", "ip"]:
        got = vecdb.pairwise_distances(queries, data, metric=metric)
        np.testing.assert_array_equal(got, reference.distances(queries, data, metric))


def test_float16_special_values_convert_exactly(simd_level):
    # Subnormals, the largest half, negative zero: the portable path converts
    # bits by hand, the F16C path in hardware; both must be exact.
    values = np.array([6e-8, -6e-8, 6.1e-5, 65504.0, -65504.0, -0.0, 1.0, 0.333], dtype=np.float16)
    data = values.reshape(-1, 1)  # one value per row: dot with 1.0 is the value itself
    got = vecdb.pairwise_distances(np.ones((1, 1), dtype=np.float32), data, metric="ip")[0]
    np.testing.assert_array_equal(got, np.float32(1.0) - values.astype(np.float32))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("metric", METRICS)
def test_int8_exact(simd_level, rng, dim, metric):
    queries = rng.integers(-128, 128, size=(5, dim)).astype(np.int8)
    data = rng.integers(-128, 128, size=(9, dim)).astype(np.int8)
    got = vecdb.pairwise_distances(queries, data, metric=metric)
    want = reference.distances(queries, data, metric)
    if metric == "cosine":
        np.testing.assert_allclose(got, want, atol=1e-5)
    else:
        # Integer sums are exact; float32 rounding only above 2**24.
        np.testing.assert_allclose(got, want, rtol=2**-23, atol=0)


def test_int8_extremes_do_not_overflow(simd_level):
    dim = 4097
    data = np.full((1, dim), -128, dtype=np.int8)
    query = np.full((1, dim), 127, dtype=np.int8)
    l2 = vecdb.pairwise_distances(query, data, metric="l2")[0, 0]
    assert l2 == np.float32(255 * 255 * dim)
    ip = vecdb.pairwise_distances(query, data, metric="ip")[0, 0]
    assert ip == np.float32(1 + 128 * 127 * dim)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 13])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 200])
@pytest.mark.parametrize("metric", METRICS)
def test_block_shapes_agree_bitwise(simd_level, rng, m, n, metric):
    # A batch must give the same bits as one query at a time: every pair is
    # accumulated in the same order whatever the register-block shape.
    dim = 45
    queries = rng.standard_normal((m, dim)).astype(np.float32)
    data = rng.standard_normal((n, dim)).astype(np.float32)
    batch = vecdb.pairwise_distances(queries, data, metric=metric)
    for i in range(m):
        single = vecdb.pairwise_distances(queries[i], data, metric=metric)
        np.testing.assert_array_equal(batch[i], single)


def test_unaligned_inputs(simd_level, rng):
    dim, n = 37, 50
    storage = np.empty(n * dim + 1, dtype=np.float32)
    data = storage[1:].reshape(n, dim)  # 4 bytes off any SIMD alignment
    data[:] = rng.standard_normal((n, dim))
    assert data.ctypes.data % 32 != 0 and data.flags.c_contiguous
    query_storage = np.empty(dim + 1, dtype=np.float32)
    query = query_storage[1:]
    query[:] = rng.standard_normal(dim)
    for metric in METRICS:
        got = vecdb.pairwise_distances(query, data, metric=metric)
        want = reference.distances(query[None], data, metric)[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_levels_agree(rng):
    queries = rng.standard_normal((7, 301)).astype(np.float32)
    data = rng.standard_normal((50, 301)).astype(np.float32)
    previous = vecdb.simd_level()
    results = {}
    try:
        for level in vecdb.simd_levels():
            vecdb.set_simd_level(level)
            results[level] = vecdb.pairwise_distances(queries, data, metric="l2")
    finally:
        vecdb.set_simd_level(previous)
    for level, got in results.items():
        np.testing.assert_allclose(got, results["portable"], rtol=1e-5, err_msg=level)


def test_zero_vectors_have_cosine_distance_one(simd_level):
    data = np.zeros((3, 10), dtype=np.float32)
    data[1, 0] = 1.0
    query = np.zeros(10, dtype=np.float32)
    np.testing.assert_array_equal(vecdb.pairwise_distances(query, data, metric="cosine"), [1.0, 1.0, 1.0])


def test_cpu_features_report_active_level():
    features = vecdb.cpu_features()
    assert features["simd_level"] == vecdb.simd_level()
    assert features["simd_levels"][0] == "portable"
    assert features["simd_level"] in features["simd_levels"]
    # The default is the fastest level this CPU runs.
    assert vecdb.simd_levels()[-1] == features["simd_levels"][-1]
    if features["avx2"] and features["fma"] and features["f16c"]:
        assert "avx2" in features["simd_levels"]
    if not features["avx512f"]:
        assert "avx512" not in features["simd_levels"]


def test_forcing_an_unknown_or_unsupported_level_is_refused():
    with pytest.raises(vecdb.errors.InvalidArgumentError, match="unknown SIMD level"):
        vecdb.set_simd_level("sse9")
    if "avx512" not in vecdb.simd_levels():
        with pytest.raises(vecdb.errors.InvalidArgumentError, match="not supported"):
            vecdb.set_simd_level("avx512")
