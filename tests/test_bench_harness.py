"""The benchmark harness (bench/): loaders, synthetic data, ground-truth cache, recall, and
one tiny end-to-end run of ``python -m bench`` with the two exact systems.

Needs numpy, vecdb, h5py, matplotlib and tqdm; no FAISS, hnswlib, USearch or shared data.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from bench import ground_truth
from bench.__main__ import main as bench_main
from bench.datasets import DatasetSpec, load_dataset, resolve_spec_text
from bench.datasets.ann_hdf5 import load_ann_hdf5
from bench.datasets.dataset import Dataset
from bench.datasets.synthetic import make_synthetic, sample_gaussian_mixture
from bench.datasets.texmex import read_vecs, write_vecs
from bench.recall import recall_at_k
from tests import reference


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize(
    "suffix, values",
    [
        (".fvecs", lambda rng: rng.standard_normal((13, 7)).astype(np.float32)),
        (".ivecs", lambda rng: rng.integers(-(2**31), 2**31 - 1, size=(13, 7), dtype=np.int32)),
        (".bvecs", lambda rng: rng.integers(0, 256, size=(13, 7), dtype=np.uint8)),
    ],
)
def test_texmex_round_trip(tmp_path, rng, suffix, values):
    vectors = values(rng)
    path = tmp_path / f"v{suffix}"
    write_vecs(path, vectors)
    assert path.stat().st_size == 13 * (4 + 7 * vectors.itemsize)
    loaded = read_vecs(path)
    assert loaded.dtype == vectors.dtype
    np.testing.assert_array_equal(loaded, vectors)
    np.testing.assert_array_equal(read_vecs(path, count=4), vectors[:4])


def test_texmex_rejects_mixed_dimensions(tmp_path):
    path = tmp_path / "bad.fvecs"
    write_vecs(path, np.ones((3, 4), dtype=np.float32))
    raw = np.fromfile(path, dtype="<i4")
    raw[5] = 9  # the second vector's dimension header
    raw.tofile(path)
    with pytest.raises(ValueError, match="vector 1 has dimension 9"):
        read_vecs(path)


def test_texmex_dataset_with_ground_truth(tmp_path, rng):
    base = rng.standard_normal((40, 6)).astype(np.float32)
    queries = rng.standard_normal((5, 6)).astype(np.float32)
    truth = np.arange(50, dtype=np.int32).reshape(5, 10)
    write_vecs(tmp_path / "toy_base.fvecs", base)
    write_vecs(tmp_path / "toy_query.fvecs", queries)
    write_vecs(tmp_path / "toy_groundtruth.ivecs", truth)
    dataset = load_dataset(DatasetSpec(text=resolve_spec_text(str(tmp_path / "toy_base.fvecs"))))
    assert (dataset.name, dataset.metric) == ("toy", "l2")
    np.testing.assert_array_equal(dataset.base, base)
    np.testing.assert_array_equal(dataset.queries, queries)
    np.testing.assert_array_equal(dataset.neighbors, truth)


def test_npy_folder_widens_float16(tmp_path, rng):
    base = rng.standard_normal((30, 8)).astype(np.float16)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    neighbors = rng.integers(0, 30, size=(4, 3), dtype=np.int32)
    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "queries.npy", queries)
    np.save(tmp_path / "neighbors.npy", neighbors)
    dataset = load_dataset(DatasetSpec(text=str(tmp_path), metric="cosine"))
    assert dataset.base.dtype == np.float32 and dataset.base.flags.c_contiguous
    np.testing.assert_array_equal(dataset.base, base.astype(np.float32))
    np.testing.assert_array_equal(dataset.queries, queries)
    np.testing.assert_array_equal(dataset.neighbors, neighbors)
    assert dataset.distances is None and dataset.metric == "cosine"
    assert dataset.first_queries(2).queries.shape == (2, 8)
    assert dataset.first_queries(2).neighbors.shape == (2, 3)


@pytest.mark.parametrize("distance, metric", [("euclidean", "l2"), ("angular", "cosine")])
def test_ann_benchmarks_hdf5(tmp_path, rng, distance, metric):
    train = rng.standard_normal((25, 5)).astype(np.float32)
    test = rng.standard_normal((3, 5)).astype(np.float32)
    distances = np.array([[0.5, 1.0], [2.0, 3.0], [1.5, 4.0]], dtype=np.float32)
    path = tmp_path / f"toy-5-{distance}.hdf5"
    with h5py.File(path, "w") as file:
        file.attrs["distance"] = distance
        file["train"], file["test"] = train, test
        file["neighbors"] = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int32)
        file["distances"] = distances
    dataset = load_ann_hdf5(path)
    assert (dataset.name, dataset.metric) == (f"toy-5-{distance}", metric)
    np.testing.assert_array_equal(dataset.base, train)
    np.testing.assert_array_equal(dataset.queries, test)
    np.testing.assert_array_equal(dataset.neighbors[2], [5, 6])
    # ann-benchmarks stores plain Euclidean distances; vecdb's l2 is squared.
    expected = distances**2 if metric == "l2" else distances
    np.testing.assert_allclose(dataset.distances, expected)
    assert load_ann_hdf5(path, metric="ip").neighbors is None


def test_synthetic_is_deterministic_under_a_seed():
    first = make_synthetic(500, 12, "cosine", n_queries=20, seed=3)
    again = make_synthetic(500, 12, "cosine", n_queries=20, seed=3)
    other = make_synthetic(500, 12, "cosine", n_queries=20, seed=4)
    np.testing.assert_array_equal(first.base, again.base)
    np.testing.assert_array_equal(first.queries, again.queries)
    assert not np.array_equal(first.base, other.base)
    assert first.base.shape == (500, 12) and first.queries.shape == (20, 12)
    assert first.base.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first.base, axis=1), 1.0, rtol=1e-5)
    shared_rows = (first.queries[:, None, :] == first.base[None, :, :]).all(axis=2)
    assert not shared_rows.any()


def test_synthetic_data_is_clustered(rng):
    sample = sample_gaussian_mixture(2000, 32, 10, rng)
    to_centers = reference.distances(sample.points, sample.centers, "l2")
    assert np.mean(to_centers.argmin(axis=1) == sample.labels) > 0.99
    pairwise = reference.distances(sample.points[:300], sample.points, "l2")
    np.fill_diagonal(pairwise, np.inf)
    nearest = pairwise.min(axis=1)
    typical = np.median(pairwise[np.isfinite(pairwise)])
    # Uniform noise in 32-d has nearest neighbours at about 0.8 of the typical distance.
    assert np.median(nearest) < 0.3 * typical
    # Uneven cluster sizes, as in real corpora.
    sizes = np.bincount(sample.labels, minlength=10)
    assert sizes.max() > 1.5 * sizes.min()


def test_ground_truth_is_exact_and_cached(tmp_path, monkeypatch):
    dataset = make_synthetic(800, 10, "l2", n_queries=30, seed=1)
    truth, path = ground_truth.load_or_compute_ground_truth(dataset, 5, tmp_path)
    assert path.is_file() and path.parent == tmp_path / "ground_truth"
    want_ids, want_distances = reference.knn(dataset.queries, dataset.base, 5, "l2")
    np.testing.assert_array_equal(truth.ids, want_ids)
    np.testing.assert_allclose(truth.distances, want_distances, rtol=1e-4, atol=1e-4)
    assert truth.metadata["k"] == 5 and truth.metadata["computed_with"] == "vecdb.knn"

    def must_not_compute(*_):
        raise AssertionError("the second call must read the cache")

    monkeypatch.setattr(ground_truth, "compute_ground_truth", must_not_compute)
    cached, cached_path = ground_truth.load_or_compute_ground_truth(dataset, 5, tmp_path)
    assert cached_path == path
    np.testing.assert_array_equal(cached.ids, truth.ids)
    np.testing.assert_array_equal(cached.distances, truth.distances)
    other_k = ground_truth.cache_path(dataset, 7, tmp_path)
    other_metric = ground_truth.cache_path(make_synthetic(800, 10, "ip", 30, seed=1), 5, tmp_path)
    assert len({path, other_k, other_metric}) == 3


def test_ground_truth_checks_shipped_neighbors(tmp_path):
    synthetic = make_synthetic(300, 6, "cosine", n_queries=8, seed=2)
    shipped_ids, shipped_distances = reference.knn(synthetic.queries, synthetic.base, 10, "cosine")
    shipped_ids[:, 9] = shipped_ids[:, 8]  # one wrong id in ten per query
    dataset = Dataset(
        name="shipped",
        base=synthetic.base,
        queries=synthetic.queries,
        metric="cosine",
        neighbors=shipped_ids,
        distances=shipped_distances.astype(np.float32),
    )
    truth, _ = ground_truth.load_or_compute_ground_truth(dataset, 10, tmp_path)
    check = truth.metadata["shipped_ground_truth_check"]
    assert check["id_agreement"] == pytest.approx(0.9)
    assert check["max_distance_difference"] < 1e-5


def test_recall_counts_hits_ties_and_duplicates():
    base = np.array([[0.0], [1.0], [2.0], [-1.0], [5.0]], dtype=np.float32)
    queries = np.array([[0.0]], dtype=np.float32)
    true_ids = np.array([[0, 1]])  # ids 1 and 3 tie at distance 1
    assert recall_at_k(np.array([[0, 1]]), true_ids, base, queries, "l2") == 1.0
    assert recall_at_k(np.array([[3, 0]]), true_ids, base, queries, "l2") == 1.0
    assert recall_at_k(np.array([[0, 4]]), true_ids, base, queries, "l2") == 0.5
    assert recall_at_k(np.array([[0, 0]]), true_ids, base, queries, "l2") == 0.5
    assert recall_at_k(np.array([[0, -1]]), true_ids, base, queries, "l2") == 0.5


def test_end_to_end_run_with_exact_systems(tmp_path):
    out = tmp_path / "results"
    status = bench_main(
        [
            "--dataset", "synthetic:3000:24:cosine",
            "--systems", "vecdb-flat,numpy-flat",
            "--batch", "1,100",
            "--threads", "1",
            "--synthetic-queries", "60",
            "--min-time", "0.05",
            "--repeats", "2",
            "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"),
        ]
    )
    assert status == 0
    document = json.loads((out / "results.json").read_text())
    measurements = document["measurements"]
    assert sorted((m["system"], m["batch"]) for m in measurements) == [
        ("numpy-flat", 1), ("numpy-flat", 100), ("vecdb-flat", 1), ("vecdb-flat", 100),
    ]
    for measurement in measurements:
        assert measurement["recall"] == 1.0
        assert measurement["recall_queries"] >= 1
        assert measurement["qps"] > 0 and measurement["threads"] == 1
        assert measurement["index_mb"] == pytest.approx(3000 * 24 * 4 / 2**20, rel=0.1)
    assert document["machine"]["usable_cores"] >= 1
    assert "simd_level" in document["machine"]["vecdb_cpu_features"]

    table = (out / "results.md").read_text()
    assert "| vecdb-flat | 1 | 1 | exact | 1.0000 |" in table
    assert "| numpy-flat | 100 | 1 | exact | 1.0000 |" in table
    plots = list(out.glob("*.png"))
    assert len(plots) == 1 and plots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rebuilt = tmp_path / "rebuilt"
    assert bench_main(["report", str(out / "results.json"), "--out", str(rebuilt)]) == 0
    assert (rebuilt / "results.md").read_text() == table
    assert (rebuilt / plots[0].name).stat().st_size > 10_000
