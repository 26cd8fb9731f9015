"""Duplicate- and tie-heavy data through every exact path: repeated vectors
are distinct points, and a search for k of them must return k.

Regression: the HNSW index's in-place scan (the planner's Scan plan for
graph collections) padded its candidates to a multiple of four with copies
of the last one and let the copies into its top-k heap, so with the
distinct point last, `search(k=2)` returned one hit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from tests.support import reference

INDEXES = {"hnsw": vecdb.HNSW(), "flat": vecdb.Flat()}


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
@pytest.mark.parametrize("index", sorted(INDEXES))
@pytest.mark.parametrize("copies", [1, 2, 3, 4, 5, 500])
def test_scan_returns_k_hits_among_copies(tmp_path, metric, index, copies):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=4, metric=metric, index=INDEXES[index])
        col.upsert(list(range(copies + 1)), [[0, 0, 0, 1]] * copies + [[1, 0, 0, 0]])
        for k in (1, 2, 3, copies + 1, copies + 5):
            hits = col.search([1, 0, 0, 0], k=k, plan=vecdb.plans.Scan())
            assert len(hits) == min(k, copies + 1)
            assert hits[0].id == copies
            assert len({hit.id for hit in hits}) == len(hits)
        # The planner's own choice (a scan at this size) agrees.
        assert [hit.id for hit in col.search([1, 0, 0, 0], k=2)][0] == copies
        assert len(col.search([1, 0, 0, 0], k=2)) == 2


@st.composite
def tie_heavy(draw):
    """A few distinct integer rows repeated many times (exact arithmetic,
    so ties are real ties), queries that often equal a stored row."""
    dim = draw(st.integers(1, 9))
    distinct = draw(st.integers(1, 4))
    n = draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    pool = rng.integers(-2, 3, size=(distinct, dim))
    data = pool[rng.integers(0, distinct, size=n)]
    queries = np.concatenate([pool, rng.integers(-2, 3, size=(2, dim))])
    metric = draw(st.sampled_from(["l2", "ip", "cosine"]))
    k = draw(st.integers(1, n + 3))
    allowed = rng.random(n) < draw(st.floats(0.0, 1.0)) if draw(st.booleans()) else None
    return data.astype(np.float32), queries.astype(np.float32), metric, k, allowed


@settings(max_examples=300, deadline=None)
@given(tie_heavy())
def test_hnsw_exact_search_matches_oracle_on_ties(case):
    data, queries, metric, k, allowed = case
    index = vecdb.HNSWIndex(data.shape[1], metric, M=4, ef_construction=16)
    index.add(data)
    mask = np.ones(len(data), dtype=bool) if allowed is None else allowed
    ids, distances = index.exact_search(queries, k, allowed=mask)
    truth_ids, truth = reference.knn(queries, data, k, metric, allowed=mask)
    tolerance = reference.tolerance(queries, data, metric)
    for row in range(len(queries)):
        expected = truth[row][truth_ids[row] >= 0]
        found = ids[row][ids[row] >= 0]
        assert len(found) == len(expected) == min(k, int(mask.sum()))
        assert len(set(found.tolist())) == len(found)
        assert mask[found].all()
        # Ties may be broken either way: compare the distances, and each
        # returned id's true distance with the distance reported for it.
        np.testing.assert_allclose(distances[row][: len(found)], expected, atol=tolerance)
        own = reference.distances(queries[row:row + 1], data[found], metric)[0]
        np.testing.assert_allclose(own, expected, atol=tolerance)
