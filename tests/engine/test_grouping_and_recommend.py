"""group_by (the best hits per payload value) and recommend (Qdrant's
strategies) against brute force on an exact index, and their bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from vecdb.errors import InvalidArgumentError
from vecdb.query.recommend import best_scores


@st.composite
def grouped_cases(draw):
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**31))
    return n, seed, draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.sampled_from(["cosine", "l2"]))


@settings(max_examples=40, deadline=None)
@given(grouped_cases())
def test_group_by_matches_brute_force(tmp_path_factory, case):
    n, seed, k, size, metric = case
    rng = np.random.default_rng(seed)
    vectors = rng.integers(-3, 4, size=(n, 3)).astype(np.float32) + 0.01
    docs = rng.integers(0, 5, size=n)
    with vecdb.open(tmp_path_factory.mktemp("g") / "db") as db:
        col = db.create_collection("c", dim=3, metric=metric, index=vecdb.Flat())
        col.upsert(list(range(n)), vectors, [{"doc": int(d)} if i % 7 else {} for i, d in enumerate(docs)])
        query = rng.standard_normal(3).astype(np.float32)
        everything = col.search(query, k=n, with_payload=True)
        groups = col.search(query, k=k, group_by="doc", group_size=size, with_payload=False)
    expected = {}
    for hit in everything:
        if "doc" not in hit.payload:
            continue
        key = hit.payload["doc"]
        if key not in expected and len(expected) == k:
            continue
        expected.setdefault(key, [])
        if len(expected[key]) < size:
            expected[key].append(hit.id)
    assert [(group.key, [hit.id for hit in group.hits]) for group in groups] == list(expected.items())
    assert all(hit.payload is None for group in groups for hit in group.hits)


def test_group_by_over_text_and_list_values(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2)
        col.upsert([1, 2, 3, 4], np.ones((4, 2)), [{"t": "json", "tags": ["a", "b"]}, {"t": "json json", "tags": "a"},
                                                    {"t": "xml", "tags": ["b"]}, {"t": "json", "tags": 3}])
        col.create_text_index("t")
        groups = col.search(text="json", k=5, group_by="tags", group_size=2)
        assert [(g.key, [h.id for h in g.hits]) for g in groups] == [("a", [2, 1]), ("b", [1]), (3, [4])]


@pytest.mark.parametrize("arguments, message", [
    ({"group_by": "", "query": [1.0, 0.0]}, "dotted"),
    ({"group_by": "doc", "group_size": 0, "query": [1.0, 0.0]}, "group_size"),
    ({"group_by": "doc", "query": [[1.0, 0.0], [0.0, 1.0]]}, "batch"),
])
def test_bad_groupings_are_refused(tmp_path, arguments, message):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2)
        col.upsert([1], np.ones((1, 2)), [{"doc": 1}])
        with pytest.raises(InvalidArgumentError, match=message):
            col.search(**arguments)


@st.composite
def recommend_cases(draw):
    return (draw(st.integers(5, 80)), draw(st.integers(0, 2**31)), draw(st.integers(1, 10)),
            draw(st.sampled_from(["cosine", "ip", "l2"])), draw(st.integers(1, 3)), draw(st.integers(0, 2)),
            draw(st.booleans()))


@settings(max_examples=40, deadline=None)
@given(recommend_cases())
def test_best_score_matches_brute_force(tmp_path_factory, case):
    n, seed, k, metric, n_positive, n_negative, filtered = case
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 4)).astype(np.float32)
    with vecdb.open(tmp_path_factory.mktemp("r") / "db") as db:
        col = db.create_collection("c", dim=4, metric=metric, index=vecdb.Flat())
        col.upsert(list(range(n)), vectors, [{"odd": i % 2} for i in range(n)])
        positive = [0] + [rng.standard_normal(4).astype(np.float32) for _ in range(n_positive - 1)]
        negative = [1] * (n_negative > 0) + [rng.standard_normal(4).astype(np.float32) for _ in range(n_negative - 1)]
        hits = col.recommend(positive, negative, k=k, strategy="best_score", with_payload=False,
                             filter={"odd": 1} if filtered else None)
        examples = lambda items: np.array([vectors[i] if isinstance(i, int) else i for i in items]).reshape(-1, 4)
        scores = best_scores(vectors, examples(positive), examples(negative), metric)
        given_ids = {0, 1} if n_negative else {0}
        allowed = [i for i in range(n) if i not in given_ids and (not filtered or i % 2)]
        ranked = sorted(allowed, key=lambda i: -scores[i])[:k]
        np.testing.assert_allclose([hit.score for hit in hits], scores[ranked], rtol=1e-4, atol=1e-5)
        cut = scores[ranked[-1]] if ranked else None
        assert {h.id for h in hits if abs(h.score - cut) > 1e-5} == {i for i in ranked if abs(scores[i] - cut) > 1e-5}


def test_average_vector_is_one_search_of_the_average(tmp_path):
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((200, 4)).astype(np.float32)
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=4, index=vecdb.Flat())
        col.upsert(list(range(200)), vectors)
        hits = col.recommend([3, 5], [7], k=10, with_payload=False)
        query = 2 * (vectors[3] + vectors[5]) / 2 - vectors[7]
        expected = [h.id for h in col.search(query, k=13) if h.id not in (3, 5, 7)][:10]
        assert [h.id for h in hits] == expected and not {3, 5, 7} & {h.id for h in hits}


@pytest.mark.parametrize("arguments, message", [
    ({"positive": []}, "at least one positive"),
    ({"positive": [999]}, "does not exist"),
    ({"positive": [[1.0, 2.0]]}, "dimension"),
    ({"positive": [[np.nan] * 4]}, "NaN"),
    ({"positive": [1], "strategy": "max"}, "strategy"),
    ({"positive": 1}, "list"),
    ({"positive": [1], "negative": {}}, "list"),
    ({"positive": [1], "k": 0}, "k"),
])
def test_bad_recommendations_are_refused(tmp_path, arguments, message):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=4)
        col.upsert([1, 2], np.ones((2, 4)))
        with pytest.raises(vecdb.errors.VecdbError, match=message):
            col.recommend(**arguments)
