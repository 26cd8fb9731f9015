"""Exact search (vecdb.knn, vecdb.FlatIndex) against the numpy oracle."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import vecdb
from tests.support import reference

METRICS = ["l2", "ip", "cosine"]


def tied_data(rng, n, dim):
    """Few distinct integer values: many exact distance ties, so the id
    tie-break is tested, and all arithmetic is exact in float32."""
    return rng.integers(-2, 3, size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize("metric", ["l2", "ip"])
@pytest.mark.parametrize("n_queries", [1, 3, 70])
def test_ties_broken_by_smaller_id(simd_level, rng, metric, n_queries):
    data = tied_data(rng, 500, 5)
    queries = tied_data(rng, n_queries, 5)
    ids, dists = vecdb.knn(data, queries, 20, metric=metric)
    want_ids, want_dists = reference.knn(queries, data, 20, metric)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(dists, want_dists)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dim", [1, 3, 17, 97, 257])
def test_matches_reference_on_random_data(simd_level, rng, metric, dim):
    data = rng.standard_normal((300, dim)).astype(np.float32)
    queries = rng.standard_normal((9, dim)).astype(np.float32)
    k = 10
    ids, dists = vecdb.knn(data, queries, k, metric=metric)
    full = reference.distances(queries, data, metric)
    tol = reference.tolerance(queries, data, metric)
    # Distances reported are the true distances of the ids reported...
    np.testing.assert_allclose(dists, np.take_along_axis(full, ids, axis=1), rtol=1e-5, atol=tol)
    # ...sorted, and nothing closer than the k-th was left out.
    assert np.all(np.diff(dists, axis=1) >= 0)
    kth = np.sort(full, axis=1)[:, k - 1]
    np.testing.assert_allclose(dists[:, -1], kth, rtol=1e-5, atol=tol)
    for row, query_ids in enumerate(ids):
        must_have = np.flatnonzero(full[row] < kth[row] - tol)
        assert set(must_have) <= set(query_ids)


def test_single_and_batch_agree_and_threads_agree(rng):
    data = rng.standard_normal((5000, 64)).astype(np.float32)
    queries = rng.standard_normal((40, 64)).astype(np.float32)
    batch = vecdb.knn(data, queries, 7, metric="cosine", threads=2)
    one_thread = vecdb.knn(data, queries, 7, metric="cosine", threads=1)
    np.testing.assert_array_equal(batch[0], one_thread[0])
    np.testing.assert_array_equal(batch[1], one_thread[1])
    for i in range(3):
        ids, dists = vecdb.knn(data, queries[i], 7, metric="cosine", threads=2)
        assert ids.shape == (7,)
        np.testing.assert_array_equal(ids, batch[0][i])
        np.testing.assert_array_equal(dists, batch[1][i])


def test_large_scan_uses_threads_and_stays_exact(rng):
    # Big enough to take the parallel paths (query split and base split).
    data = tied_data(rng, 40000, 32)
    for n_queries in (1, 3, 64):
        queries = tied_data(rng, n_queries, 32)
        ids, dists = vecdb.knn(data, queries, 5, metric="l2", threads=2)
        want_ids, want_dists = reference.knn(queries, data, 5, "l2")
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(dists, want_dists)


def test_streaming_path_matches_batched_path(simd_level, rng):
    # Over 16 MiB of rows and fewer than 4 queries: the scan takes the DRAM
    # streaming kernels; a batch of 8 takes the cached-rows kernels. Same bits.
    data = rng.standard_normal((140_000, 32)).astype(np.float32)
    assert data.nbytes > 16 << 20
    queries = rng.standard_normal((8, 32)).astype(np.float32)
    for metric in METRICS:
        batch_ids, batch_dists = vecdb.knn(data, queries, 10, metric=metric)
        for i in range(2):
            ids, dists = vecdb.knn(data, queries[i], 10, metric=metric)
            np.testing.assert_array_equal(ids, batch_ids[i])
            np.testing.assert_array_equal(dists, batch_dists[i])
    tied = tied_data(rng, 140_000, 32)
    ids, dists = vecdb.knn(tied, tied[:2], 7, metric="l2", threads=1)
    want_ids, want_dists = reference.knn(tied[:2], tied, 7, "l2")
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(dists, want_dists)


def test_k_larger_than_collection_is_clipped(rng):
    data = rng.standard_normal((4, 8)).astype(np.float32)
    ids, dists = vecdb.knn(data, data[:2], 10, metric="l2")
    assert ids.shape == (2, 4) and dists.shape == (2, 4)
    assert sorted(ids[0]) == [0, 1, 2, 3]
    assert ids[0, 0] == 0 and dists[0, 0] == 0.0


@pytest.mark.parametrize("selectivity", [0.0, 0.01, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("n_queries", [1, 50])
def test_filters(simd_level, rng, selectivity, n_queries):
    data = tied_data(rng, 3000, 8)
    queries = tied_data(rng, n_queries, 8)
    mask = rng.random(3000) < selectivity
    for allowed in (mask, np.flatnonzero(mask)):
        ids, dists = vecdb.knn(data, queries, 10, metric="l2", allowed=allowed)
        want_ids, want_dists = reference.knn(queries, data, 10, "l2", allowed=mask)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(dists, want_dists)


def test_filter_with_fewer_matches_than_k_pads(rng):
    data = rng.standard_normal((100, 4)).astype(np.float32)
    ids, dists = vecdb.knn(data, data[5], 5, metric="l2", allowed=[5, 9])
    assert list(ids[:2]) == [5, 9]
    np.testing.assert_array_equal(ids[2:], [-1, -1, -1])
    assert np.all(np.isinf(dists[2:]))
    empty_ids, empty_dists = vecdb.knn(data, data[:3], 4, metric="l2", allowed=np.zeros(100, dtype=bool))
    assert (empty_ids == -1).all() and np.isinf(empty_dists).all()


def test_non_float32_inputs_are_converted(rng):
    data64 = rng.standard_normal((50, 6))
    fortran = np.asfortranarray(data64.astype(np.float32))
    strided_queries = rng.standard_normal((4, 12)).astype(np.float32)[:, ::2]
    swapped = data64.astype(">f4")
    want = vecdb.knn(data64.astype(np.float32), strided_queries.copy(), 3, metric="l2")
    for data in (data64, fortran, swapped, data64.tolist()):
        got = vecdb.knn(data, strided_queries, 3, metric="l2")
        np.testing.assert_array_equal(got[0], want[0])


class TestFlatIndex:
    @pytest.mark.parametrize("metric", METRICS)
    def test_add_and_search_match_knn(self, rng, metric):
        data = rng.standard_normal((1000, 48)).astype(np.float32)
        index = vecdb.FlatIndex(48, metric=metric)
        ids = index.add(data[:600])
        np.testing.assert_array_equal(ids, np.arange(600))
        np.testing.assert_array_equal(index.add(data[600:]), np.arange(600, 1000))
        assert len(index) == 1000
        queries = rng.standard_normal((12, 48)).astype(np.float32)
        got = index.search(queries, 10)
        want = vecdb.knn(data, queries, 10, metric=metric)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-6)

    def test_get_returns_stored_vectors(self, rng):
        data = rng.standard_normal((10, 5)).astype(np.float32)
        index = vecdb.FlatIndex(5, metric="l2")
        index.add(data)
        np.testing.assert_array_equal(index.get([3, 0, 3]), data[[3, 0, 3]])
        with pytest.raises(vecdb.errors.InvalidArgumentError, match="out of range"):
            index.get([10])

    def test_float16_index(self, rng):
        data = rng.standard_normal((500, 33)).astype(np.float32)
        index = vecdb.FlatIndex(33, metric="cosine", dtype="float16")
        index.add(data)
        assert index.nbytes >= 500 * 33 * 2 and index.nbytes < 500 * 33 * 4
        stored = index.get(np.arange(500))
        assert stored.dtype == np.float16
        queries = rng.standard_normal((5, 33)).astype(np.float32)
        ids, dists = index.search(queries, 5)
        want_ids, want_dists = vecdb.knn(stored, queries, 5, metric="cosine")
        np.testing.assert_array_equal(ids, want_ids)
        ref = reference.distances(queries, stored.astype(np.float32), "cosine")
        np.testing.assert_allclose(dists, np.take_along_axis(ref, ids, axis=1), atol=1e-5)

    def test_int8_index(self, rng):
        data = rng.integers(-128, 128, size=(400, 20)).astype(np.int8)
        index = vecdb.FlatIndex(20, metric="l2", dtype="int8")
        index.add(data)
        queries = rng.integers(-128, 128, size=(6, 20))
        ids, dists = index.search(queries, 8)
        want_ids, want_dists = reference.knn(queries, data, 8, "l2")
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(dists, want_dists)

    def test_empty_index_returns_empty_results(self):
        index = vecdb.FlatIndex(4)
        ids, dists = index.search(np.ones((3, 4)), 5)
        assert ids.shape == (3, 0) and dists.shape == (3, 0)

    def test_filter_on_index(self, rng):
        data = tied_data(rng, 200, 6)
        index = vecdb.FlatIndex(6, metric="l2")
        index.add(data)
        mask = np.arange(200) % 3 == 0
        ids, _ = index.search(data[:4], 5, allowed=mask)
        assert np.all(ids % 3 == 0)
        want_ids, _ = reference.knn(data[:4], data, 5, "l2", allowed=mask)
        np.testing.assert_array_equal(ids, want_ids)

    def test_search_while_adding_from_other_threads(self, rng):
        # add() may reallocate storage; searches running at the same time
        # must see a consistent prefix, never freed memory.
        index = vecdb.FlatIndex(16, metric="l2")
        batches = [rng.standard_normal((500, 16)).astype(np.float32) for _ in range(40)]
        index.add(batches[0])
        errors = []

        def writer():
            for batch in batches[1:]:
                index.add(batch)

        def reader():
            try:
                for _ in range(60):
                    n_before = len(index)
                    ids, dists = index.search(batches[0][:4], 3)
                    assert ids[:, 0].tolist() == [0, 1, 2, 3]
                    assert np.all(dists[:, 0] == 0.0)
                    assert ids.max() < len(index) and len(index) >= n_before
            except Exception as exc:  # surfaced in the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(index) == 500 * 40
        all_data = np.concatenate(batches)
        np.testing.assert_array_equal(index.get(np.arange(len(all_data))), all_data)
