"""Property-based tests: for any shape, metric, dtype, k and filter, exact
search agrees with the brute-force numpy oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from tests.support import reference


@st.composite
def search_cases(draw):
    dim = draw(st.integers(1, 70))
    n = draw(st.integers(1, 120))
    m = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    metric = draw(st.sampled_from(["l2", "ip", "cosine"]))
    storage = draw(st.sampled_from(["float32", "float16", "int8"]))
    k = draw(st.integers(1, n + 5))
    filtered = draw(st.booleans())
    rng = np.random.default_rng(seed)
    # Small integers: exact arithmetic in every dtype, frequent ties.
    data = rng.integers(-3, 4, size=(n, dim))
    queries = rng.integers(-3, 4, size=(m, dim))
    allowed = rng.random(n) < draw(st.floats(0.0, 1.0)) if filtered else None
    return data, queries, metric, storage, k, allowed


@settings(max_examples=300, deadline=None)
@given(search_cases())
def test_knn_matches_oracle(case):
    data, queries, metric, storage, k, allowed = case
    stored = data.astype(storage)
    query_dtype = np.int8 if storage == "int8" else np.float32
    ids, dists = vecdb.knn(stored, queries.astype(query_dtype), k, metric=metric, allowed=allowed)
    width = min(k, len(data))
    assert ids.shape == dists.shape == (len(queries), width)
    want_ids, want_dists = reference.knn(queries, data, width, metric, allowed=allowed)
    if metric == "cosine":
        # Cosine divides by norms: compare distances with a tolerance, and
        # ids only where the oracle's distances are not near-tied.
        np.testing.assert_allclose(dists, want_dists, atol=1e-5)
        full = reference.distances(queries, data, metric)
        if allowed is not None:
            full = np.where(allowed[None, :], full, np.inf)
        got = np.where(ids >= 0, np.take_along_axis(full, np.maximum(ids, 0), axis=1), np.inf)
        np.testing.assert_allclose(got, want_dists, atol=1e-5)
        np.testing.assert_array_equal(ids == -1, want_ids == -1)
    else:
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(dists, want_dists.astype(np.float32))


@st.composite
def graph_cases(draw):
    dim = draw(st.integers(1, 40))
    n = draw(st.integers(1, 150))
    seed = draw(st.integers(0, 2**32 - 1))
    metric = draw(st.sampled_from(["l2", "ip", "cosine"]))
    dtype = draw(st.sampled_from(["float32", "float16"]))
    M = draw(st.integers(2, 12))
    k = draw(st.integers(1, n + 3))
    deleted = draw(st.floats(0.0, 0.6))
    compact = draw(st.booleans())
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim)).astype(np.float32)
    queries = rng.standard_normal((5, dim)).astype(np.float32)
    gone = np.flatnonzero(rng.random(n) < deleted)
    return data, queries, metric, dtype, M, k, gone, compact


@settings(max_examples=150, deadline=None)
@given(graph_cases())
def test_hnsw_results_are_live_unique_sorted_and_exactly_scored(case):
    # Whatever the data, parameters, deletes and compaction: every result is
    # a live id, at most once, closest first, with its true distance (to the
    # stored vector). Exact recall is not a property of HNSW (near-duplicate
    # points can leave a node unreachable); the recall tests measure it. But
    # with ef >= the number of points, every live point is found (nodes that
    # pruned links left unreachable from the entry are walked too).
    data, queries, metric, dtype, M, k, gone, compact = case
    index = vecdb.HNSWIndex(data.shape[1], metric=metric, M=M, ef_construction=2 * M, dtype=dtype)
    index.add(data)
    assert index.delete(gone) == len(gone)
    if compact:
        index.compact()
    live = np.setdiff1d(np.arange(len(data)), gone)
    ids, dists = index.search(queries, k, ef=len(data))
    assert ids.shape == dists.shape == (5, min(k, len(live)))
    if not len(live):
        return
    stored = index.get_vectors(live)
    if metric == "cosine":  # the index scores normalized queries against stored (normalized) rows
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = reference.distances(queries, stored, "ip" if metric == "cosine" else metric)
    position = {int(id_): i for i, id_ in enumerate(live)}
    for row_ids, row_dists, row_exact in zip(ids, dists, exact):
        found = row_ids >= 0
        assert found.sum() == min(k, len(live)) and np.array_equal(found, np.sort(found)[::-1])  # padding at the end
        kept = row_ids[found]
        assert len(set(kept.tolist())) == len(kept) and np.isin(kept, live).all()
        assert np.all(np.diff(row_dists[found]) >= 0) and np.isinf(row_dists[~found]).all()
        np.testing.assert_allclose(row_dists[found], row_exact[[position[int(i)] for i in kept]],
                                   rtol=1e-4, atol=1e-4)
