"""The native fusion of rankings against a Python reference: RRF and DBSF,
with repeated labels across branches, ties, empty branches and weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdb import _core
from vecdb.errors import InvalidArgumentError


def reference(rankings, weights, kind, rrf_k, k):
    totals = {}
    for (labels, scores), weight in zip(rankings, weights):
        if not len(labels) or weight == 0:
            continue
        if kind == "dbsf":
            scores = np.asarray(scores, dtype=np.float32).astype(np.float64)
            mean, spread = scores.mean(), np.sqrt(((scores - scores.mean()) ** 2).mean())
            parts = [weight * (0.5 if spread == 0 else min(max((s - (mean - 3 * spread)) / (6 * spread), 0.0), 1.0))
                     for s in scores]
        else:
            parts = [weight / (rrf_k + rank) for rank in range(1, len(labels) + 1)]
        for label, part in zip(labels, parts):
            totals[label] = totals.get(label, 0.0) + part
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:k]


ranking = st.lists(st.integers(0, 30), unique=True, max_size=12).flatmap(
    lambda labels: st.tuples(st.just(labels), st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5, -1.0]),
                                                        min_size=len(labels), max_size=len(labels))))


@settings(max_examples=300, deadline=None)
@given(st.lists(ranking, min_size=1, max_size=3), st.sampled_from(["rrf", "dbsf"]),
       st.sampled_from([0.0, 1.0, 60.0]), st.integers(1, 20), st.data())
def test_fusion_matches_the_reference(rankings, kind, rrf_k, k, data):
    weights = data.draw(st.lists(st.sampled_from([1.0, 0.5, 0.0, 0.25]), min_size=len(rankings),
                                 max_size=len(rankings)))
    labels, scores = _core.fuse([np.array(r[0], dtype=np.int64) for r in rankings],
                                [np.array(r[1], dtype=np.float32) for r in rankings], weights, kind, rrf_k, k)
    expected = reference(rankings, weights, kind, rrf_k, k)
    assert labels.tolist() == [label for label, _ in expected]
    np.testing.assert_allclose(scores, [score for _, score in expected], rtol=1e-12)


@pytest.mark.parametrize("arguments, message", [
    (([np.array([1])], [np.array([1.0])], [1.0], "max", 60.0, 3), "kind"),
    (([np.array([1])], [np.array([1.0, 2.0])], [1.0], "rrf", 60.0, 3), "as many scores"),
    (([np.array([1])], [np.array([1.0])], [], "rrf", 60.0, 3), "a weight for each"),
    (([np.array([1])], [np.array([1.0])], [float("nan")], "rrf", 60.0, 3), "finite"),
    (([np.array([1])], [np.array([1.0])], [1.0], "rrf", -1.0, 3), "rrf k"),
    (([np.array([1])], [np.array([1.0])], [1.0], "rrf", 60.0, 0), "k must"),
])
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(InvalidArgumentError, match=message):
        _core.fuse(*arguments)
