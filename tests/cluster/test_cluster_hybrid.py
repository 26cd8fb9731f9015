"""Sparse, hybrid and grouped searches, recommendations and payload updates
on a cluster answer as one embedded collection does on the same points:
each hybrid branch is merged over the shards before the fusion, so the
fused hits are the same ids with the same scores, in the same order,
through writes and filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecdb
from tests.support.text_reference import assert_top_k

DATA = Path(__file__).resolve().parents[1] / "data"
TEXTS = (DATA / "minilm_base_3000_texts.txt").read_text(encoding="utf-8").split("\n")[:500]
QUERIES = (DATA / "minilm_queries_100_texts.txt").read_text(encoding="utf-8").split("\n")[:10]
FILTERS = [None, {"tag": "a"}, {"tag": {"$ne": "b"}}]
FUSIONS = [vecdb.RRF(), vecdb.RRF(k=3, alpha=0.6, candidates=25), vecdb.DBSF(), vecdb.DBSF(alpha=0.3, candidates=12)]


@pytest.fixture(scope="module")
def cluster(ray_cluster, tmp_path_factory):
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path_factory.mktemp("hybrid-cluster") / "db", shards=3) as database:
        yield database


@pytest.fixture(params=["cosine", "l2"])
def both(cluster, tmp_path, request):
    """The same collection, 500 points with texts and sparse vectors, on the
    cluster and in one embedded database."""
    rng = np.random.default_rng(8)
    ids = [i if i % 2 else f"p{i}" for i in range(len(TEXTS))]
    vectors = rng.integers(-2, 3, size=(len(TEXTS), 5)).astype(np.float32) + 0.5  # ties across shards
    payloads = [{"body": text, "tag": ["a", "b", "c"][i % 3], "doc": i // 5} for i, text in enumerate(TEXTS)]
    sparse = [None if i % 7 == 0 else (sorted(rng.choice(30, 3, replace=False).tolist()), [1.0, 2.0, 1.0])
              for i in range(len(TEXTS))]
    with vecdb.open(tmp_path / "single") as single:
        pair = [database.create_collection("hybrid", 5, request.param, index=vecdb.Flat(), sparse=["s"])
                for database in (cluster, single)]
        try:
            for collection in pair:
                collection.upsert(ids[:250], vectors[:250], payloads[:250], sparse={"s": sparse[:250]})
                collection.create_text_index("body")
                collection.upsert(ids[250:], vectors[250:], payloads[250:], sparse={"s": sparse[250:]})
            yield pair, vectors
        finally:
            cluster.drop_collection("hybrid")


def assert_same(ours, theirs, sign=1.0):
    """The same hits, scores and order but where scores tie (``sign``: -1
    for distances, lower first)."""
    assert_top_k([str(hit.id) for hit in ours], [sign * hit.score for hit in ours],
                 {str(hit.id): sign * hit.score for hit in theirs}, len(theirs), rtol=1e-5, atol=1e-6)
    assert len(ours) == len(theirs)


def test_sparse_and_hybrid_searches_give_the_embedded_hits(both):
    (ours, theirs), vectors = both
    for number, text in enumerate(QUERIES):
        sparse = {"s": ([number, number + 3, 20], [1.0, 0.5, 2.0])}
        for where in FILTERS:
            assert_same(ours.search(sparse=sparse, k=15, filter=where), theirs.search(sparse=sparse, k=15, filter=where))
            for fusion in FUSIONS:
                for arguments in ({"query": vectors[number], "text": text}, {"text": text, "sparse": sparse},
                                  {"query": vectors[number], "text": text, "sparse": sparse}):
                    got = ours.search(**arguments, fusion=fusion, k=10, filter=where)
                    expected = theirs.search(**arguments, fusion=fusion, k=10, filter=where)
                    assert [hit.id for hit in got] == [hit.id for hit in expected]
                    np.testing.assert_allclose([hit.score for hit in got], [hit.score for hit in expected],
                                               rtol=1e-6)
                    assert [hit.payload for hit in got] == [hit.payload for hit in expected]


def test_groups_recommendations_and_payload_updates_give_the_embedded_answers(both):
    (ours, theirs), vectors = both
    for collection in (ours, theirs):
        assert collection.update_payload(["p0", 1, 3], {"tag": "z"}) == 3
        assert collection.update_payload(payload={"doc": -1, "body": "renamed"}, filter={"tag": "c"},
                                         merge=False) == 166
        assert collection.delete_payload_keys(keys=["doc"], filter={"tag": "a"}) == 165
        collection.delete([5, "p6"])
    assert ours.scroll(limit=1000)[0] == theirs.scroll(limit=1000)[0]
    for number in range(5):
        for arguments in ({"query": vectors[number]}, {"text": QUERIES[number]},
                          {"query": vectors[number], "text": QUERIES[number], "fusion": vecdb.RRF()}):
            got = ours.search(**arguments, k=6, group_by="doc", group_size=2)
            expected = theirs.search(**arguments, k=6, group_by="doc", group_size=2)
            assert [(group.key, [hit.id for hit in group.hits]) for group in got] == \
                [(group.key, [hit.id for hit in group.hits]) for group in expected]
        for strategy in ("average_vector", "best_score"):
            positive, negative = ["p2", vectors[number + 10]], [7]
            got = ours.recommend(positive, negative, k=12, strategy=strategy, filter={"tag": {"$ne": "z"}})
            expected = theirs.recommend(positive, negative, k=12, strategy=strategy, filter={"tag": {"$ne": "z"}})
            assert_same(got, expected, -1.0 if strategy == "average_vector" and ours.metric == "l2" else 1.0)
