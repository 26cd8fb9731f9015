"""bench/duplicates.py: its tie-aware recall, and its first case on vecdb."""

from __future__ import annotations

import numpy as np

from bench.duplicates import K, TieAwareRecall, copies_and_one, vecdb_index
from bench.recall import recall_at_k


def test_ties_fill_only_the_places_closer_points_leave():
    _, data, _, queries, metric = copies_and_one(500)  # queries: the distinct point (row 500), the copy
    recall = TieAwareRecall(data, queries, metric, K)
    assert recall(np.vstack([np.r_[500, np.arange(9)], np.arange(100, 110)])) == 1.0
    # Ten copies in place of the distinct point: 9 of 10 for that query.
    assert recall(np.vstack([np.arange(10), np.arange(10)])) == 0.95
    assert recall(np.full((2, K), -1)) == 0.0


def test_without_ties_it_is_plain_recall(rng):
    data = rng.standard_normal((300, 8)).astype(np.float32)
    queries = rng.standard_normal((20, 8)).astype(np.float32)
    found = np.argsort(((queries[:, None, :] - data[None]) ** 2).sum(axis=2), axis=1)[:, :K]
    truth = found.copy()
    found[:, ::3] = rng.integers(0, 300, (20, 4))  # some right by chance, most wrong
    for metric in ("l2", "cosine"):
        if metric == "cosine":
            truth = np.argsort(-(queries @ data.T) / np.linalg.norm(data, axis=1), axis=1)[:, :K]
        expected = recall_at_k(found, truth, data, queries, metric)
        assert abs(TieAwareRecall(data, queries, metric, K)(found) - expected) < 1e-12


def test_vecdb_finds_the_distinct_point_among_500_copies():
    for position in (0, 250, 500):
        _, data, _, queries, metric = copies_and_one(position)
        found = vecdb_index(data, metric, threads=1)["vecdb HNSWIndex"](queries, 16)
        assert found[0, 0] == position
        assert TieAwareRecall(data, queries, metric, K)(found) == 1.0
