"""Property-based tests: for any shape, metric, dtype, k and filter, exact
search agrees with the brute-force numpy oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from tests import reference


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
