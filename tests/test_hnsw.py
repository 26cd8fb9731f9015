"""HNSWIndex against the exact oracle (vecdb.knn), plus its edge cases."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import vecdb
from vecdb.errors import DimensionMismatchError, InvalidArgumentError, InvalidDTypeError


def clustered(rng, n, dim, clusters=20):
    centers = rng.standard_normal((clusters, dim)).astype(np.float32) * 3
    return centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32)


def recall(found, truth):
    return np.mean([len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum()) for f, t in zip(found, truth)])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return clustered(rng, 3000, 24), clustered(rng, 100, 24)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_recall_against_exact_search(data, metric):
    base, queries = data
    if metric == "ip":
        # Inner product is only a proximity measure graphs navigate well on
        # (near) unit vectors, which is how embeddings come; see vecdb.hnsw.
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    index = vecdb.HNSWIndex(24, metric=metric, M=16, ef_construction=100)
    np.testing.assert_array_equal(index.add(base), np.arange(len(base)))
    truth, true_dist = vecdb.knn(base, queries, 10, metric=metric)
    ids, dists = index.search(queries, 10, ef=200)
    assert ids.shape == (100, 10) and ids.dtype == np.int64 and dists.dtype == np.float32
    assert recall(ids, truth) >= 0.97
    # Reported distances are the true distances of the reported ids.
    exact = vecdb.pairwise_distances(queries, base, metric=metric)
    np.testing.assert_allclose(dists, np.take_along_axis(exact, ids, axis=1), rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(dists, axis=1) >= 0)


def test_recall_grows_with_ef(data):
    base, queries = data
    index = vecdb.HNSWIndex(24, metric="l2", M=8, ef_construction=40)
    index.add(base)
    truth, _ = vecdb.knn(base, queries, 10, metric="l2")
    low = recall(index.search(queries, 10, ef=10)[0], truth)
    high = recall(index.search(queries, 10, ef=200)[0], truth)
    assert high > low and high >= 0.93


def test_incremental_batches_and_single_vectors(data):
    base, queries = data
    index = vecdb.HNSWIndex(24, metric="cosine")
    for start in range(0, 1000, 37):
        index.add(base[start:min(start + 37, 1000)])
    index.add(base[1000])
    assert len(index) == 1001
    truth, _ = vecdb.knn(base[:1001], queries, 5, metric="cosine")
    assert recall(index.search(queries, 5)[0], truth) >= 0.97


def test_single_threaded_build_is_deterministic(data):
    base, queries = data
    results = []
    for _ in range(2):
        index = vecdb.HNSWIndex(24, metric="l2", M=8, ef_construction=50, seed=3)
        index.add(base[:1500], threads=1)
        results.append(index.search(queries, 10, ef=20, threads=1))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_fewer_points_than_k_never_raises():
    index = vecdb.HNSWIndex(3, metric="l2")
    index.add(np.eye(3, dtype=np.float32))
    ids, dists = index.search(np.ones(3), 10)
    assert ids.shape == (3,) and sorted(ids.tolist()) == [0, 1, 2]
    ids, dists = index.search(np.ones((2, 3)), 10, allowed=[1])
    assert ids.shape == (2, 3)
    np.testing.assert_array_equal(ids[:, 0], [1, 1])
    assert (ids[:, 1:] == -1).all() and np.isinf(dists[:, 1:]).all()


def test_empty_index():
    ids, dists = vecdb.HNSWIndex(4).search(np.ones((2, 4)), 3)
    assert ids.shape == (2, 0) and dists.shape == (2, 0)


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.02])
def test_filtered_search_returns_only_allowed(data, fraction):
    base, queries = data
    index = vecdb.HNSWIndex(24, metric="l2")
    index.add(base)
    mask = np.random.default_rng(1).random(len(base)) < fraction
    ids, _ = index.search(queries, 10, ef=200, allowed=mask)
    assert np.all(mask[ids[ids >= 0]])
    truth, _ = vecdb.knn(base, queries, 10, metric="l2", allowed=mask)
    assert recall(ids, truth) >= 0.9


def test_duplicate_vectors(rng):
    index = vecdb.HNSWIndex(8, metric="l2", M=4, ef_construction=10)
    index.add(np.ones((300, 8), dtype=np.float32))
    ids, dists = index.search(np.ones(8), 5)
    assert len(set(ids.tolist())) == 5 and np.all(dists == 0)


def test_search_while_adding(data):
    base, queries = data
    index = vecdb.HNSWIndex(24, metric="l2", M=16, ef_construction=100)
    index.add(base[:200])
    errors = []

    def writer():
        for start in range(200, 3000, 200):
            index.add(base[start:start + 200])

    def reader():
        try:
            for _ in range(50):
                n = len(index)
                ids, dists = index.search(queries[:8], 5, ef=20)
                assert ids.min() >= 0 and ids.max() < len(index)
                assert np.all(np.isfinite(dists))
                assert len(index) >= n
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(index) == 3000
    truth, _ = vecdb.knn(base, queries, 10, metric="l2")
    assert recall(index.search(queries, 10, ef=200)[0], truth) >= 0.97


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dim": 0}, InvalidArgumentError, "dimension must be between 1"),
        ({"dim": 4, "M": 1}, InvalidArgumentError, "M must be between 2 and 256"),
        ({"dim": 4, "M": 0}, InvalidArgumentError, "M must be >= 1"),
        ({"dim": 4, "ef_construction": 0}, InvalidArgumentError, "ef_construction must be >= 1"),
        ({"dim": 4, "M": 2.5}, InvalidDTypeError, "M must be an integer"),
        ({"dim": 4, "metric": "manhattan"}, InvalidArgumentError, "unknown metric"),
    ],
)
def test_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        vecdb.HNSWIndex(**kwargs)


def test_bad_inputs():
    index = vecdb.HNSWIndex(4)
    with pytest.raises(DimensionMismatchError, match="dimension 3, expected 4"):
        index.add(np.ones((2, 3)))
    with pytest.raises(InvalidArgumentError, match="row 1 of vectors contains NaN"):
        index.add(np.array([[1, 2, 3, 4], [np.nan, 0, 0, 0]]))
    assert len(index) == 0
    index.add(np.eye(4))
    with pytest.raises(InvalidArgumentError, match="ef must be >= 1"):
        index.search(np.ones(4), 2, ef=0)
    with pytest.raises(InvalidArgumentError, match="k must be >= 1"):
        index.search(np.ones(4), 0)
    with pytest.raises(InvalidArgumentError, match="row 0 of queries contains NaN"):
        index.search(np.full(4, np.inf), 1)


class TestDelete:
    def test_deleted_are_never_returned_and_recall_holds(self, data):
        base, queries = data
        index = vecdb.HNSWIndex(24, metric="l2", M=16, ef_construction=100)
        index.add(base)
        gone = np.arange(0, len(base), 2)
        assert index.delete(gone) == len(gone)
        assert len(index) == len(base) - len(gone) and index.id_bound == len(base)
        ids, _ = index.search(queries, 10, ef=200)
        assert not np.isin(ids, gone).any()
        live = np.setdiff1d(np.arange(len(base)), gone)
        truth, _ = vecdb.knn(base, queries, 10, metric="l2", allowed=live)
        assert recall(ids, truth) >= 0.95

    def test_delete_twice_is_a_no_op_and_bad_ids_delete_nothing(self):
        index = vecdb.HNSWIndex(4, metric="l2")
        index.add(np.eye(4, dtype=np.float32))
        assert index.delete([1]) == 1
        assert index.delete(np.array([1, 1])) == 0
        with pytest.raises(InvalidArgumentError, match="id 4 is out of range"):
            index.delete([2, 4])
        assert len(index) == 3
        with pytest.raises(InvalidDTypeError, match="integers"):
            index.delete([0.5])
        assert len(index) == 3

    def test_everything_deleted_gives_empty_results(self):
        index = vecdb.HNSWIndex(4, metric="l2")
        index.add(np.eye(4, dtype=np.float32))
        index.delete(np.arange(4))
        ids, dists = index.search(np.ones((2, 4)), 3)
        assert ids.shape == (2, 0)
        index.add(np.ones(4))
        ids, _ = index.search(np.ones(4), 3)
        assert ids.tolist() == [4]

    def test_filter_and_delete_combine(self, data):
        base, queries = data
        index = vecdb.HNSWIndex(24, metric="l2")
        index.add(base[:500])
        index.delete(np.arange(100))
        mask = np.zeros(index.id_bound, dtype=bool)
        mask[:200] = True
        ids, _ = index.search(queries[:5], 10, ef=100, allowed=mask)
        kept = ids[ids >= 0]
        assert kept.size and np.all((kept >= 100) & (kept < 200))

    def test_delete_while_searching(self, data):
        base, queries = data
        index = vecdb.HNSWIndex(24, metric="l2", M=8, ef_construction=40)
        index.add(base)
        errors = []
        victims = np.random.default_rng(5).permutation(len(base))[:2000]

        def deleter():
            for chunk in np.array_split(victims, 40):
                index.delete(chunk)

        def reader():
            try:
                for _ in range(40):
                    ids, _ = index.search(queries[:4], 5, ef=32)
                    assert ids.max() < len(base)
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=deleter), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        ids, _ = index.search(queries, 10, ef=100)
        assert not np.isin(ids, victims).any()


def fnv1a64(data: bytes) -> int:
    """The checksum the HNSW format stamps (FNV-1a, 64-bit)."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def restamp(data: bytes) -> bytes:
    """Recompute the trailing checksum after a deliberate edit."""
    body = data[:-8]
    return body + fnv1a64(body).to_bytes(8, "little")


class TestPersistence:
    @pytest.fixture
    def small(self):
        rng = np.random.default_rng(11)
        index = vecdb.HNSWIndex(6, metric="cosine", M=4, ef_construction=20, seed=9)
        index.add(clustered(rng, 300, 6))
        index.delete([5, 17])
        return index, clustered(rng, 10, 6)

    def test_round_trip_through_bytes_and_file(self, tmp_path, small):
        index, queries = small
        path = tmp_path / "graph.hnsw"
        index.save(path)
        assert [p.name for p in tmp_path.iterdir()] == ["graph.hnsw"]  # no temp files left
        for loaded in (vecdb.HNSWIndex.from_bytes(index.to_bytes()), vecdb.HNSWIndex.load(path)):
            assert (len(loaded), loaded.id_bound, loaded.dim, loaded.metric) == (298, 300, 6, "cosine")
            for ef in (4, 50):
                want = index.search(queries, 5, ef=ef)
                got = loaded.search(queries, 5, ef=ef)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
            # Still a working index: it grows and stays searchable.
            loaded.add(queries)
            ids, dists = loaded.search(queries[0], 1)
            assert ids[0] == 300 and dists[0] == pytest.approx(0.0, abs=1e-6)

    def test_empty_index_round_trips(self):
        loaded = vecdb.HNSWIndex.from_bytes(vecdb.HNSWIndex(3, metric="l2").to_bytes())
        assert len(loaded) == 0 and loaded.search(np.ones(3), 2)[0].shape == (0,)

    def test_every_truncation_is_refused(self, small):
        data = small[0].to_bytes()
        for length in list(range(0, 64)) + list(range(64, len(data), 97)) + [len(data) - 1]:
            with pytest.raises(vecdb.errors.CorruptIndexError):
                vecdb.HNSWIndex.from_bytes(data[:length])

    def test_flipped_bits_are_refused(self, small):
        data = bytearray(small[0].to_bytes())
        for position in range(0, len(data), max(1, len(data) // 50)):
            damaged = bytearray(data)
            damaged[position] ^= 0x10
            with pytest.raises(vecdb.errors.CorruptIndexError):
                vecdb.HNSWIndex.from_bytes(bytes(damaged))

    def test_wrong_magic_and_unknown_version(self, small):
        data = small[0].to_bytes()
        with pytest.raises(vecdb.errors.CorruptIndexError, match="magic"):
            vecdb.HNSWIndex.from_bytes(b"NOTVECDB" + data[8:])
        future = restamp(data[:8] + (2).to_bytes(4, "little") + data[12:])
        with pytest.raises(vecdb.errors.CorruptIndexError, match="format version 2"):
            vecdb.HNSWIndex.from_bytes(future)

    def test_consistent_checksum_but_bad_link_is_refused(self, small):
        data = bytearray(small[0].to_bytes())
        header = 8 + 4 + 4 + 8 * 5
        entry_and_levels = 8 + 300
        first_link = header + entry_and_levels + 4  # node 0, layer 0, after its count
        data[first_link:first_link + 4] = (10_000).to_bytes(4, "little")
        with pytest.raises(vecdb.errors.CorruptIndexError, match="bad link"):
            vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))

    def test_not_bytes(self):
        with pytest.raises(InvalidDTypeError, match="must be bytes"):
            vecdb.HNSWIndex.from_bytes("graph")


@pytest.mark.parametrize("dim", [1, 7, 8, 33, 97, 384])
@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_graph_distances_match_exact_kernels(simd_level, rng, dim, metric):
    # The graph's single-pair kernel (four accumulators, all tail paths)
    # against the exact kernels, on every SIMD level.
    base = rng.standard_normal((60, dim)).astype(np.float32)
    queries = rng.standard_normal((4, dim)).astype(np.float32)
    index = vecdb.HNSWIndex(dim, metric=metric, M=8, ef_construction=40)
    index.add(base)
    ids, dists = index.search(queries, 20, ef=60)
    assert (ids >= 0).all()
    exact = vecdb.pairwise_distances(queries, base, metric=metric)
    np.testing.assert_allclose(dists, np.take_along_axis(exact, ids, axis=1), rtol=1e-5, atol=1e-4)
