"""Product quantization against the numpy reference (tests/support/pq_reference.py):
codes, decoded vectors, lookup tables, ADC search, exact re-ranking,
persistence and the errors a caller can provoke."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from vecdb.errors import CorruptIndexError, DimensionMismatchError, InvalidArgumentError, InvalidDTypeError
from tests.support import pq_reference as ref
from tests.support import reference
from tests.support.datasets import clustered, low_rank_clusters, minilm

METRICS = ["l2", "ip", "cosine"]


def trained(data: np.ndarray, m: int, metric: str, **kwargs) -> vecdb.ProductQuantizer:
    return vecdb.ProductQuantizer(data.shape[1], m, metric).train(data, **kwargs)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.mark.parametrize("metric", METRICS)
def test_codes_and_decoding_match_the_reference(simd_level, rng, metric):
    data = clustered(rng, 3000, 32)
    pq = trained(data, 8, metric, iterations=5)
    codes = pq.encode(data)
    assert codes.shape == (3000, 8) and codes.dtype == np.uint8
    expected = ref.encode(data, pq.centroids, metric)
    # A code may differ only where two centroids are equally near (float32
    # against float64 rounding): its sub-distance must then tie.
    sub = ref.sub_distances(data, pq.centroids, metric)
    chosen = np.take_along_axis(sub, codes[:, :, None].astype(np.int64), axis=-1)[..., 0]
    best = np.take_along_axis(sub, expected[:, :, None].astype(np.int64), axis=-1)[..., 0]
    np.testing.assert_allclose(chosen, best, rtol=1e-4, atol=1e-5)
    assert np.mean(codes == expected) > 0.999
    np.testing.assert_array_equal(pq.decode(codes), ref.decode(codes, pq.centroids).astype(np.float32))


@pytest.mark.parametrize("metric", METRICS)
def test_lookup_tables_and_adc_distances_match_the_reference(simd_level, rng, metric):
    data = clustered(rng, 2000, 48)
    queries = clustered(rng, 20, 48)
    pq = trained(data, 12, metric, iterations=4)
    tables = pq.lookup_tables(queries)
    expected_tables = ref.lookup_tables(queries, pq.centroids, metric)
    np.testing.assert_allclose(tables, expected_tables, rtol=1e-4, atol=1e-3)
    codes = pq.encode(data)
    rows, distances = pq.search(queries, codes, k=25)
    adc = ref.adc_distances(queries, codes, pq.centroids, metric)
    np.testing.assert_allclose(distances, np.take_along_axis(adc, rows, axis=1), rtol=1e-4, atol=1e-3)
    # Rank by rank, the native k-th distance is the reference's k-th (ties may swap rows).
    np.testing.assert_allclose(distances, np.sort(adc, axis=1)[:, :25], rtol=1e-4, atol=1e-3)


def test_search_respects_allowed_rows_and_pads(rng):
    data = clustered(rng, 1000, 16)
    pq = trained(data, 4, "l2", iterations=3)
    codes = pq.encode(data)
    allowed = np.zeros(1000, dtype=bool)
    allowed[[3, 500, 999]] = True
    rows, distances = pq.search(data[:4], codes, k=5, allowed=allowed)
    assert set(rows[rows >= 0].ravel()) <= {3, 500, 999}
    assert (rows[:, 3:] == -1).all() and np.isinf(distances[:, 3:]).all()
    rows, _ = pq.search(data[:2], codes, k=2, allowed=np.array([7, 8]))
    assert sorted(rows[0]) == [7, 8]
    single_rows, single_distances = pq.search(data[0], codes, k=3)
    assert single_rows.shape == (3,) and single_distances.shape == (3,)


def test_recall_improves_with_m(rng):
    base, queries = low_rank_clusters(rng, 4000, 50, 64)
    truth, _ = reference.knn(queries, base, 10, "l2")
    recalls = []
    for m in (2, 8, 32):
        pq = trained(base, m, "l2", iterations=8)
        rows, _ = pq.search(queries, pq.encode(base), k=10)
        recalls.append(recall(rows, truth))
    assert recalls[0] < recalls[1] < recalls[2], recalls


@pytest.mark.parametrize("metric", METRICS)
def test_rerank_returns_exact_distances(rng, metric):
    base, queries = low_rank_clusters(rng, 3000, 30, 64)
    pq = trained(base, 16, metric, iterations=6)
    shortlist, _ = pq.search(queries, pq.encode(base), k=100)
    ids, distances = vecdb.rerank(queries, shortlist, base, k=10, metric=metric)
    exact = reference.distances(queries, base, metric)
    np.testing.assert_allclose(distances, np.take_along_axis(exact, ids, axis=1), rtol=1e-5, atol=1e-4)
    # The best 10 of each shortlist, by exact distance.
    shortlisted = np.take_along_axis(exact, shortlist, axis=1)
    np.testing.assert_allclose(distances, np.sort(shortlisted, axis=1)[:, :10], rtol=1e-5, atol=1e-4)
    truth, _ = reference.knn(queries, base, 10, metric)
    assert recall(ids, truth) >= 0.9


def test_rerank_skips_padding_and_takes_a_callable(rng):
    base = rng.standard_normal((50, 8)).astype(np.float32)
    queries = base[:2] + 0.01
    candidates = np.array([[0, 5, -1, -1], [1, -1, 7, 3]])
    fetched = []

    def fetch(ids):
        fetched.append(ids.copy())
        return base[ids]

    ids, distances = vecdb.rerank(queries, candidates, fetch, k=3, metric="l2")
    np.testing.assert_array_equal(np.concatenate(fetched), [0, 5, 1, 7, 3])
    assert ids[0, 0] == 0 and ids[0, 2] == -1 and np.isinf(distances[0, 2])
    assert ids[1, 0] == 1 and set(ids[1]) == {1, 7, 3}
    with pytest.raises(InvalidArgumentError, match="past the end"):
        vecdb.rerank(queries, np.array([[0], [50]]), base, k=1, metric="l2")
    with pytest.raises(DimensionMismatchError):
        vecdb.rerank(queries, np.array([[0]]), base, k=1, metric="l2")


def test_real_embeddings_recall_after_rerank():
    base, queries = minilm()
    truth, _ = reference.knn(queries, base, 10, "cosine")
    pq = trained(base, 48, "cosine")
    codes = pq.encode(base)
    rows, _ = pq.search(queries, codes, k=10)
    without = recall(rows, truth)
    shortlist, _ = pq.search(queries, codes, k=100)
    ids, _ = vecdb.rerank(queries, shortlist, base, k=10, metric="cosine")
    assert recall(ids, truth) >= 0.95 > without


def test_training_is_deterministic_across_threads(rng):
    data = clustered(rng, 2000, 32)
    one = trained(data, 8, "l2", iterations=5, seed=3, threads=1, max_samples=1500)
    two = trained(data, 8, "l2", iterations=5, seed=3, threads=2, max_samples=1500)
    np.testing.assert_array_equal(one.centroids, two.centroids)
    other = trained(data, 8, "l2", iterations=5, seed=4, threads=1, max_samples=1500)
    assert not np.array_equal(one.centroids, other.centroids)


def test_training_lowers_quantization_error(rng):
    data = clustered(rng, 3000, 32)
    errors = []
    for iterations in (1, 10):
        pq = trained(data, 8, "l2", iterations=iterations)
        errors.append(float(((pq.decode(pq.encode(data)) - data) ** 2).sum()))
    assert errors[1] < errors[0]


def test_persistence_round_trip(tmp_path, rng):
    data = clustered(rng, 1000, 24)
    pq = trained(data, 6, "ip", iterations=3)
    copy = vecdb.ProductQuantizer.from_bytes(pq.to_bytes())
    assert (copy.dim, copy.m, copy.metric, copy.trained) == (24, 6, "ip", True)
    np.testing.assert_array_equal(copy.centroids, pq.centroids)
    np.testing.assert_array_equal(copy.encode(data), pq.encode(data))
    pq.save(tmp_path / "codebooks.pq")
    loaded = vecdb.ProductQuantizer.load(tmp_path / "codebooks.pq")
    np.testing.assert_array_equal(loaded.centroids, pq.centroids)


def test_corrupted_codebooks_are_rejected(rng):
    data = clustered(rng, 1000, 16)
    blob = bytearray(trained(data, 4, "l2", iterations=2).to_bytes())
    for position in (0, 9, 40, len(blob) // 2, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[position] ^= 0x10
        with pytest.raises(CorruptIndexError):
            vecdb.ProductQuantizer.from_bytes(bytes(damaged))
    for length in (0, 7, 30, len(blob) - 8, len(blob) - 1):
        with pytest.raises(CorruptIndexError):
            vecdb.ProductQuantizer.from_bytes(bytes(blob[:length]))
    with pytest.raises(CorruptIndexError):
        vecdb.ProductQuantizer.from_bytes(bytes(blob) + b"\0")
    # An untrained quantizer has nothing to save.
    with pytest.raises(InvalidArgumentError, match="not trained"):
        vecdb.ProductQuantizer(16, 4, "l2").to_bytes()


def test_errors_name_the_problem(rng):
    with pytest.raises(InvalidArgumentError, match="does not divide the dimension 384.*48"):
        vecdb.ProductQuantizer(384, 50)
    with pytest.raises(InvalidArgumentError, match="at least 256 vectors"):
        vecdb.ProductQuantizer(16, 4).train(rng.standard_normal((255, 16)))
    pq = vecdb.ProductQuantizer(16, 4, "l2")
    with pytest.raises(InvalidArgumentError, match="not trained"):
        pq.encode(rng.standard_normal((3, 16)))
    pq.train(rng.standard_normal((300, 16)), iterations=2)
    with pytest.raises(DimensionMismatchError):
        pq.encode(rng.standard_normal((3, 15)))
    with pytest.raises(InvalidDTypeError):
        pq.decode(np.zeros((2, 4), dtype=np.int32))
    with pytest.raises(DimensionMismatchError):
        pq.decode(np.zeros((2, 5), dtype=np.uint8))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        pq.encode(np.full((1, 16), np.nan))
    with pytest.raises(InvalidArgumentError):
        pq.train(rng.standard_normal((300, 16)), iterations=0)


@pytest.mark.parametrize("metric", METRICS)
def test_hnsw_over_codes_finds_neighbours_after_rerank(rng, metric):
    base, queries = low_rank_clusters(rng, 3000, 40, 64)
    pq = trained(base, 16, metric, iterations=8)
    index = vecdb.HNSWIndex(64, metric, quantizer=pq)
    index.add(base)
    assert index.dtype == "pq8" and len(index) == 3000
    shortlist, distances = index.search(queries, k=50, ef=100)
    # Graph search ranks by the same ADC distances as a scan of the codes.
    codes = pq.encode(base)
    adc = ref.adc_distances(queries, codes, pq.centroids, metric)
    np.testing.assert_allclose(distances, np.take_along_axis(adc, shortlist, axis=1), rtol=1e-4, atol=1e-3)
    ids, _ = vecdb.rerank(queries, shortlist, base, k=10, metric=metric)
    truth, _ = reference.knn(queries, base, 10, metric)
    assert recall(ids, truth) >= 0.9
    np.testing.assert_allclose(index.get_vectors([0, 5]), pq.decode(codes[[0, 5]]), rtol=1e-6)


def test_hnsw_over_codes_memory_persistence_and_compaction(rng):
    base, queries = low_rank_clusters(rng, 2000, 10, 64)
    pq = trained(base, 8, "l2", iterations=4)
    index = vecdb.HNSWIndex(64, "l2", M=8, quantizer=pq)
    index.add(base)
    floats = vecdb.HNSWIndex(64, "l2", M=8)
    floats.add(base)
    assert index.stats()["vector_bytes"] < floats.stats()["vector_bytes"] / 4
    copy = vecdb.HNSWIndex.from_bytes(index.to_bytes())
    assert copy.dtype == "pq8"
    np.testing.assert_array_equal(copy.quantizer.centroids, pq.centroids)
    np.testing.assert_array_equal(copy.search(queries, k=10)[0], index.search(queries, k=10)[0])
    index.delete(np.arange(0, 2000, 2))
    assert index.compact() == 1000
    found, _ = index.search(queries, k=10)
    assert (found % 2 == 1).all()
    # The index keeps its own copy: retraining the caller's quantizer changes nothing.
    before = index.search(queries, k=5)
    pq.train(base, iterations=1, seed=9)
    np.testing.assert_array_equal(index.search(queries, k=5)[0], before[0])


def test_hnsw_refuses_a_mismatched_quantizer(rng):
    data = rng.standard_normal((300, 16)).astype(np.float32)
    with pytest.raises(InvalidArgumentError, match="trained"):
        vecdb.HNSWIndex(16, "l2", quantizer=vecdb.ProductQuantizer(16, 4, "l2"))
    pq = trained(data, 4, "l2", iterations=1)
    with pytest.raises(InvalidArgumentError, match="dimension"):
        vecdb.HNSWIndex(32, "l2", quantizer=pq)
    with pytest.raises(InvalidArgumentError, match="metric"):
        vecdb.HNSWIndex(16, "cosine", quantizer=pq)
    with pytest.raises(InvalidArgumentError, match="ProductQuantizer"):
        vecdb.HNSWIndex(16, "l2", quantizer="pq")


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(256, 700),
    m=st.sampled_from([1, 2, 4, 8]),
    metric=st.sampled_from(METRICS),
    k=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    filtered=st.booleans(),
)
def test_adc_search_matches_brute_force(n, m, metric, k, seed, filtered):
    rng = np.random.default_rng(seed)
    data = (rng.standard_normal((n, 16)) * rng.uniform(0.1, 10)).astype(np.float32)
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    pq = trained(data, m, metric, iterations=2, seed=seed % 1000)
    codes = pq.encode(data)
    allowed = rng.random(n) < 0.3 if filtered else None
    rows, distances = pq.search(queries, codes, k=k, allowed=allowed)
    adc = ref.adc_distances(queries, codes, pq.centroids, metric)
    if allowed is not None:
        adc = np.where(allowed[None, :], adc, np.inf)
    expected = np.sort(adc, axis=1)[:, :k]
    found = np.isfinite(expected)
    assert ((rows >= 0) == found).all()
    scale = max(1.0, float(np.abs(adc[np.isfinite(adc)]).max()))
    np.testing.assert_allclose(distances[found], expected[found], rtol=1e-4, atol=1e-4 * scale)


def test_rerank_in_slices_matches_one_pass(rng, monkeypatch):
    base = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((37, 16)).astype(np.float32)
    candidates = np.stack([rng.permutation(500)[:40] for _ in range(37)])
    whole = vecdb.rerank(queries, candidates, base, k=7, metric="l2")
    monkeypatch.setattr("vecdb.native.rerank._GATHER_FLOATS", 16 * 40 * 5)  # five queries per slice
    sliced = vecdb.rerank(queries, candidates, base, k=7, metric="l2")
    np.testing.assert_array_equal(sliced[0], whole[0])
    np.testing.assert_array_equal(sliced[1], whole[1])


@pytest.mark.parametrize("metric", METRICS)
def test_opq_rotation_is_orthonormal_and_codes_match_the_reference(rng, metric):
    base, queries = low_rank_clusters(rng, 3000, 20, 32)
    pq = vecdb.ProductQuantizer(32, 8, metric, opq=True).train(base, iterations=4)
    rotation = pq.rotation
    assert pq.opq and rotation.shape == (32, 32)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(32), atol=1e-4)
    rotated = ref.prepare(base, metric) @ rotation
    codes = pq.encode(base)
    assert np.mean(codes == ref.encode(rotated, pq.centroids, "l2")) > 0.999
    # decode() returns to the caller's space; ADC distances are those of the rotated query.
    np.testing.assert_allclose(pq.decode(codes), ref.decode(codes, pq.centroids) @ rotation.T, atol=1e-4)
    rows, distances = pq.search(queries, codes, k=10)
    rotated_queries = ref.prepare(queries, metric) @ rotation
    adc = ref.adc_distances(rotated_queries, codes, pq.centroids, "l2" if metric == "l2" else "ip")
    np.testing.assert_allclose(distances, np.take_along_axis(adc, rows, axis=1), rtol=1e-4, atol=1e-3)


def test_opq_lowers_quantization_error_and_persists(rng):
    base, _ = low_rank_clusters(rng, 4000, 1, 64)
    plain = trained(base, 8, "l2", iterations=8)
    rotated = vecdb.ProductQuantizer(64, 8, "l2", opq=True).train(base, iterations=8)
    error = [float(((q.decode(q.encode(base)) - base) ** 2).sum()) for q in (plain, rotated)]
    assert error[1] < error[0]
    copy = vecdb.ProductQuantizer.from_bytes(rotated.to_bytes())
    assert copy.opq and not vecdb.ProductQuantizer.from_bytes(plain.to_bytes()).opq
    np.testing.assert_array_equal(copy.rotation, rotated.rotation)
    np.testing.assert_array_equal(copy.encode(base), rotated.encode(base))


def test_hnsw_over_opq_codes(rng):
    base, queries = low_rank_clusters(rng, 2000, 20, 64)
    pq = vecdb.ProductQuantizer(64, 16, "cosine", opq=True).train(base, iterations=6)
    index = vecdb.HNSWIndex(64, "cosine", quantizer=pq)
    index.add(base)
    shortlist, distances = index.search(queries, k=50, ef=100)
    codes = pq.encode(base)
    rotated_queries = ref.prepare(queries, "cosine") @ pq.rotation
    adc = ref.adc_distances(rotated_queries, codes, pq.centroids, "ip")
    np.testing.assert_allclose(distances, np.take_along_axis(adc, shortlist, axis=1), rtol=1e-4, atol=1e-3)
    ids, _ = vecdb.rerank(queries, shortlist, base, k=10, metric="cosine")
    truth, _ = reference.knn(queries, base, 10, "cosine")
    assert recall(ids, truth) >= 0.9
    copy = vecdb.HNSWIndex.from_bytes(index.to_bytes())
    np.testing.assert_array_equal(copy.quantizer.rotation, pq.rotation)
    np.testing.assert_array_equal(copy.search(queries, k=10)[0], index.search(queries, k=10)[0])


def test_failed_training_leaves_the_quantizer_as_it_was(rng):
    data = rng.standard_normal((600, 16)).astype(np.float32)
    for opq in (False, True):
        pq = vecdb.ProductQuantizer(16, 4, "l2", opq=opq).train(data, iterations=3)
        centroids, rotation = pq.centroids, pq.rotation
        bad = data.copy()
        bad[5, 3] = np.nan
        with pytest.raises(InvalidArgumentError, match="NaN"):
            pq.train(bad)
        with pytest.raises(InvalidArgumentError, match="at most 1000"):
            pq.train(data, iterations=1001)
        np.testing.assert_array_equal(pq.centroids, centroids)
        assert (rotation is None) == (pq.rotation is None)
        if rotation is not None:
            np.testing.assert_array_equal(pq.rotation, rotation)
    with pytest.raises(InvalidArgumentError, match="not trained"):
        vecdb.ProductQuantizer(16, 4).centroids


def test_overflowing_distances_still_fill_k(rng):
    data = rng.standard_normal((400, 16)).astype(np.float32)
    pq = trained(data, 4, "l2", iterations=2)
    rows, distances = pq.search(np.full((1, 16), 1e30, dtype=np.float32), pq.encode(data), k=3)
    assert (rows >= 0).all() and len(set(rows[0])) == 3


def test_rerank_refuses_malformed_candidates(rng):
    base = rng.standard_normal((20, 4)).astype(np.float32)
    with pytest.raises(InvalidArgumentError, match="rectangular"):
        vecdb.rerank(base[:2], [[0, 1], [2]], base, k=1, metric="l2")
    with pytest.raises(InvalidDTypeError, match="integer"):
        vecdb.rerank(base[:1], np.array([[0.5, 1.0]]), base, k=1, metric="l2")
    with pytest.raises(DimensionMismatchError):
        vecdb.rerank(base[:1], np.zeros((1, 2, 2), dtype=np.int64), base, k=1, metric="l2")
