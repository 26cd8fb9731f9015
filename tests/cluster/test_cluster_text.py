"""Full-text search on a cluster answers as one embedded collection does on
the same points: the shards score with the whole collection's BM25
statistics (summed over them), so the hits are the same ids with the same
scores, in the same order, through writes, filters and a choice of text
index; a text index is made on every shard or on none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidPayloadError
from tests.support.text_reference import assert_top_k

DATA = Path(__file__).resolve().parents[1] / "data"
TEXTS = (DATA / "minilm_base_3000_texts.txt").read_text(encoding="utf-8").split("\n")[:600]
QUERIES = (DATA / "minilm_queries_100_texts.txt").read_text(encoding="utf-8").split("\n")[:40] + [
    "react", "react component", "the", "zzzz nothing"]
FILTERS = [None, {"tag": "a"}, {"tag": {"$ne": "b"}}, {"tag": "none"}]


@pytest.fixture(scope="module")
def cluster(ray_cluster, tmp_path_factory):
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path_factory.mktemp("text-cluster") / "db", shards=3) as database:
        yield database


@pytest.fixture
def both(cluster, tmp_path):
    """The same collection on the cluster and in one embedded database."""
    with vecdb.open(tmp_path / "single") as single:
        pair = [database.create_collection("texts", 4, "l2", index=vecdb.Flat()) for database in (cluster, single)]
        try:
            yield pair
        finally:
            cluster.drop_collection("texts")


def texts_of(first: int, count: int):
    """Points whose texts repeat (every fifth the same as the first: ties
    across shards), with ids of both kinds and a tag."""
    ids = [first + i if i % 2 else f"t{first + i}" for i in range(count)]
    texts = [TEXTS[(first + i) % len(TEXTS)] if i % 5 else TEXTS[0] for i in range(count)]
    payloads = [{"body": text, "title": text.split(" ")[0], "tag": ["a", "b", "c"][i % 3]} for i, text in
                enumerate(texts)]
    vectors = np.random.default_rng(first).standard_normal((count, 4)).astype(np.float32)
    return ids, vectors, payloads


def assert_same_hits(ours, theirs, query, k, **options):
    """The embedded top ``k``: the same scores (to 1e-5) in order, each id
    with its own score and payload, and the same ids but where scores tie.
    (Equal texts may score an ulp apart in one index, by the order their
    terms were added: which of them comes first is not defined.)"""
    got = ours.search(text=query, k=k, **options)
    everything = {str(hit.id): hit for hit in theirs.search(text=query, k=100_000, **options)}
    assert_top_k([str(hit.id) for hit in got], [hit.score for hit in got],
                 {point: hit.score for point, hit in everything.items()}, k, rtol=1e-5, atol=1e-5)
    assert all(hit.payload == everything[str(hit.id)].payload for hit in got)


def assert_same_text_searches(ours, theirs, text_field=None):
    for query in QUERIES:
        for query_filter in FILTERS:
            for k in (1, 10, 1000):
                assert_same_hits(ours, theirs, query, k, filter=query_filter, text_field=text_field)


def test_text_searches_give_exactly_the_embedded_hits_and_scores(both):
    ours, theirs = both
    ids, vectors, payloads = texts_of(0, 600)
    for collection in (ours, theirs):
        collection.upsert(ids[:300], vectors[:300], payloads[:300])
        collection.create_text_index("body")  # indexes what each shard holds
        collection.upsert(ids[300:], vectors[300:], payloads[300:])
    assert ours.text_indexes == theirs.text_indexes
    assert_same_text_searches(ours, theirs)
    # Upserted again (keeping their place), deleted, and new points after.
    more_ids, more_vectors, more_payloads = texts_of(1000, 90)
    for collection in (ours, theirs):
        collection.upsert(ids[10:40], vectors[10:40], payloads[100:130])
        collection.delete(ids[200:260])
        collection.delete(filter={"tag": "c", "title": "A"})
        collection.upsert(more_ids, more_vectors, more_payloads)
    assert_same_text_searches(ours, theirs)
    stats = ours.stats()
    summed, single = stats["text_indexes"]["body"], theirs.stats()["text_indexes"]["body"]
    assert summed["points"] == single["points"] == theirs.count()
    assert 0 < summed["terms"] <= single["terms"] and summed["memory_bytes"] > 0
    assert all(shard["text_indexes"]["body"]["points"] > 0 for shard in stats["shards"])


def test_a_second_index_with_other_settings_and_text_field(both):
    ours, theirs = both
    ids, vectors, payloads = texts_of(0, 400)
    for collection in (ours, theirs):
        collection.upsert(ids, vectors, payloads)
        collection.create_text_index("body", language="english", stopwords=False, k1=0.8, b=0.3)
        collection.create_text_index("title", language=None, stopwords=["a", "the"])
    assert ours.text_indexes == theirs.text_indexes
    assert_same_text_searches(ours, theirs, text_field="body")
    for query in ("React", "TypeScript definitions", "Fast", "the"):
        assert_same_hits(ours, theirs, query, 50, text_field="title")
    for collection in (ours, theirs):
        collection.drop_text_index("title")
    assert ours.text_indexes == theirs.text_indexes and list(ours.text_indexes) == ["body"]
    assert_same_hits(ours, theirs, "react", 20)


def test_a_text_index_a_shard_refuses_is_made_on_none(cluster, both):
    ours, _ = both
    ids, vectors, payloads = texts_of(0, 60)
    payloads[17] = {**payloads[17], "title": 17}  # one point, on one shard, whose title is not text
    ours.upsert(ids, vectors, payloads)
    with pytest.raises(InvalidPayloadError, match="'title'"):
        ours.create_text_index("title")
    assert ours.text_indexes == {}
    assert [shard["text_indexes"] for shard in ours.stats()["shards"]] == [{}] * cluster.shards
    ours.create_text_index("body")
    with pytest.raises(InvalidPayloadError, match="'body'"):  # refused before any shard writes its part
        ours.upsert(["x", "y", "z"], np.ones((3, 4)), [{"body": "fine"}, {"body": "also fine"}, {"body": ["ok", 3]}])
    assert ours.get(["x", "y", "z"]) == [] and ours.count() == 60


def test_a_handle_sees_text_indexes_made_through_another(cluster, both):
    ours, _ = both
    ours.upsert([1, 2], np.ones((2, 4)), [{"body": "red fox"}, {"body": "blue fox"}])
    driver = cluster._collections.pop("texts")  # the next get_collection makes a new handle
    other = cluster.get_collection("texts")
    assert other is not driver and other.text_indexes == {}
    driver.create_text_index("body")
    assert [hit.id for hit in other.search(text="red")] == [1]  # not known here yet: asked of the shards
    assert other.text_indexes == driver.text_indexes
