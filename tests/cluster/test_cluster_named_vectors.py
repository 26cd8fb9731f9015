"""A collection with named vectors on a 2-shard cluster answers as one
embedded collection holding the same points: each vector's searches with
filters (the same ids, scores and order: ties broken in the order the
points got that vector, also when they got it in a later upsert or a new
driver numbers the points), text and hybrid searches, records with their
vectors, replaced points losing the vectors they are not given, deletes
and payload replacements by filter. Each vector trains its own PQ
codebooks once for every shard. Bad input is refused before any shard sees
it, and a create one shard refuses is undone on the others."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb.cluster.routing import group_by_shard
from vecdb.config import CollectionSettings
from vecdb.errors import InvalidArgumentError, InvalidPayloadError
from vecdb.plans import plan_to_dict

N = 96
SPECS = {"text": vecdb.VectorSpec(5, "cosine", index=vecdb.Flat()),
         "image": vecdb.VectorSpec(3, "l2", index=vecdb.Flat())}
FILTERS = [None, {"tag": "a"}, {"doc": {"$lt": 8}}, {"tag": "none"}]


@pytest.fixture
def single(tmp_path):
    with vecdb.open(tmp_path / "single") as database:
        yield database


@pytest.fixture
def pair(shared_cluster, single):
    """The same collection of named vectors in the cluster and in one
    embedded database, loaded alike (see load)."""
    ours = shared_cluster.create_collection("named", vectors=SPECS)
    theirs = single.create_collection("named", vectors=SPECS)
    try:
        load((ours, theirs), np.random.default_rng(11))
        yield ours, theirs
    finally:
        shared_cluster.drop_collection("named")


def text_vectors(rng, n):
    return rng.integers(-1, 2, size=(n, 5)).astype(np.float32) + 0.5  # no zero vector (cosine)


def image_vectors(rng, n):
    return rng.integers(-1, 2, size=(n, 3)).astype(np.float32)  # 27 distinct vectors: ties everywhere


def ids_of(rows):
    return [row if row % 2 else f"p{row}" for row in rows]


def load(both, rng):
    """Every point a text vector, two in three an image vector; then every
    fifth point replaced: those without an image vector get one (after the
    others in the image index), of the others some keep only their text
    vector and some only their image vector; then new points with both."""
    text, image = text_vectors(rng, N), image_vectors(rng, N)
    text[3::4] = text[0]
    payloads = [{"doc": row // 4, "tag": ["a", "b"][row % 2], "body": f"point {row} {['even', 'odd'][row % 2]}"}
                for row in range(N)]
    replaced = list(range(0, N, 5))
    again_text = [text[row] if row % 3 == 0 or row % 2 == 0 else None for row in replaced]
    again_image = [image[row] if row % 3 == 0 or row % 2 == 1 else None for row in replaced]
    new_rows = list(range(N, N + 20))
    for collection in both:
        collection.upsert(ids_of(range(N)), {"text": text, "image": [image[row] if row % 3 else None
                                                                     for row in range(N)]}, payloads)
        collection.upsert(ids_of(replaced), {"text": again_text, "image": again_image},
                          [{**payloads[row], "tag": "c"} for row in replaced])
        collection.upsert(ids_of(new_rows), {"text": text[:20], "image": image[:20]},
                          [{"doc": row // 4, "tag": "a", "body": "new even"} for row in new_rows])


def as_tuples(hits):
    return [(hit.id, hit.score, hit.payload) for hit in hits]


def as_plain(records):
    """Records (or hits) with their vectors as lists, to compare."""
    return [(record.id, record.payload, {name: vector.tolist() for name, vector in record.vector.items()})
            for record in records]


def assert_same_answers(ours, theirs):
    rng = np.random.default_rng(3)
    for name, queries in (("text", text_vectors(rng, 4)), ("image", image_vectors(rng, 4))):
        for query_filter in FILTERS:
            for k in (1, 10, 200):
                got = ours.search(queries, k, filter=query_filter, using=name)
                want = theirs.search(queries, k, filter=query_filter, using=name)
                assert [as_tuples(row) for row in got] == [as_tuples(row) for row in want], (name, query_filter, k)
        got = ours.search(queries[0], 5, using=name, with_vector=True)
        assert as_plain(got) == as_plain(theirs.search(queries[0], 5, using=name, with_vector=True))
    every = ids_of(range(N + 20))
    assert as_plain(ours.get(every, with_vector=True)) == as_plain(theirs.get(every, with_vector=True))
    for query_filter in FILTERS:
        assert ours.count(query_filter) == theirs.count(query_filter)
        assert scroll_all(ours, query_filter) == scroll_all(theirs, query_filter)


def scroll_all(collection, query_filter, limit=17):
    pages, cursor = [], None
    while True:
        page, cursor = collection.scroll(query_filter, limit, cursor, with_vector=True)
        pages.append(as_plain(page))
        if cursor is None:
            return pages


def test_each_vector_answers_as_one_collection(pair):
    ours, theirs = pair
    assert_same_answers(ours, theirs)
    point = ours.get(["p0"], with_vector=True)[0]  # replaced with both vectors: had only text at first
    assert set(point.vector) == {"text", "image"}
    assert set(ours.get([5], with_vector=True)[0].vector) == {"image"}  # replaced with its image vector only


def test_text_and_hybrid_searches_and_recommendations_answer_as_one_collection(pair):
    ours, theirs = pair
    for collection in pair:
        collection.create_text_index("body")
    assert as_tuples(ours.search(text="even point", k=50)) == as_tuples(theirs.search(text="even point", k=50))
    rng = np.random.default_rng(4)
    for name, query in (("text", text_vectors(rng, 1)[0]), ("image", image_vectors(rng, 1)[0])):
        for fusion in (vecdb.RRF(), vecdb.DBSF(), vecdb.RRF(candidates=7)):
            for query_filter in FILTERS[:3]:
                got = ours.search(query, 10, using=name, text="even", fusion=fusion, filter=query_filter)
                want = theirs.search(query, 10, using=name, text="even", fusion=fusion, filter=query_filter)
                assert as_tuples(got) == as_tuples(want), (name, fusion, query_filter)
        got = ours.search(query, 5, using=name, text="odd", fusion=vecdb.RRF(), with_vector=True)
        assert as_plain(got) == as_plain(theirs.search(query, 5, using=name, text="odd", fusion=vecdb.RRF(),
                                                       with_vector=True))
        grouped = ours.search(query, 3, using=name, group_by="doc", group_size=2)
        assert [(group.key, as_tuples(group.hits)) for group in grouped] == [
            (group.key, as_tuples(group.hits)) for group in theirs.search(query, 3, using=name, group_by="doc",
                                                                          group_size=2)]
    for strategy in ("average_vector", "best_score"):
        examples = dict(positive=["p4", [1.0, 0.0, 1.0]], negative=[7], k=6, strategy=strategy, using="image")
        assert as_tuples(ours.recommend(**examples)) == as_tuples(theirs.recommend(**examples)), strategy
    assert as_plain(ours.recommend(["p4"], k=3, using="image", with_vector=True)) == as_plain(
        theirs.recommend(["p4"], k=3, using="image", with_vector=True))
    for collection in pair:  # point 3 has no image vector
        with pytest.raises(InvalidArgumentError, match="example point 3 has no 'image' vector"):
            collection.recommend(["p4"], [3], using="image")
        with pytest.raises(InvalidArgumentError, match="example point 'gone' does not exist"):
            collection.recommend(["gone"], using="image")


def test_deletes_and_payload_replacements_reach_every_vector(pair):
    ours, theirs = pair
    for collection in pair:
        assert collection.delete(filter={"doc": {"$in": [2, 3]}}) == 8
        assert collection.update_payload(payload={"tag": "none", "doc": 99}, filter={"doc": 5}, merge=False) == 4
        assert collection.delete(["p30", 31, "missing"]) == 2
    assert_same_answers(ours, theirs)
    assert as_tuples(ours.search([0.0, 0.0, 0.0], 10, using="image", filter={"tag": "none"})) == as_tuples(
        theirs.search([0.0, 0.0, 0.0], 10, using="image", filter={"tag": "none"}))


def test_points_given_a_vector_later_rank_after_the_others_across_drivers(shared_cluster, single):
    """Ties in a vector's index break in the order the points got that
    vector, also when a new driver (which reads where the numbering stopped
    from the shards) adds more."""
    ours = shared_cluster.create_collection("late", vectors=SPECS)
    theirs = single.create_collection("late", vectors=SPECS)
    try:
        groups = group_by_shard(list(range(40)), 2)
        early, later = groups[1][:3], groups[0][:3]  # the late ones on the other shard
        vector = np.ones((1, 3), dtype=np.float32)
        texts = np.full((3, 5), 0.5, dtype=np.float32)
        for collection in (ours, theirs):
            collection.upsert(early, {"text": texts})
            collection.upsert(early[:1], {"text": texts[:1], "image": vector})  # no new point: no new order
        ours._next_order = None  # as a new driver's handle: it asks the shards where the numbering is
        for collection in (ours, theirs):
            collection.upsert(later, {"text": texts, "image": np.repeat(vector, 3, axis=0)})
        got = ours.search(vector[0], 10, using="image")
        assert [hit.id for hit in got] == [hit.id for hit in theirs.search(vector[0], 10, using="image")]
        assert [hit.id for hit in got] == [early[0], *later]
    finally:
        shared_cluster.drop_collection("late")


def test_each_vector_trains_its_own_codebooks_once_for_every_shard(shared_cluster):
    specs = {"codes": vecdb.VectorSpec(8, "l2", quantization=vecdb.PQ(m=2, train_size=300)),
             "plain": vecdb.VectorSpec(4, "l2", index=vecdb.Flat())}
    collection = shared_cluster.create_collection("trained", vectors=specs)
    try:
        rng = np.random.default_rng(6)
        data = rng.standard_normal((320, 8)).astype(np.float32)
        collection.upsert(list(range(200)), {"codes": data[:200]})
        collection.upsert(list(range(200, 320)), {"codes": data[200:], "plain": data[200:, :4]})

        def versions():
            return [shard["vectors"]["codes"]["quantization"]["quantizer_version"]
                    for shard in collection.stats()["shards"]]

        assert versions() == [1, 1]  # trained when the cluster reached train_size, installed on both shards
        assert [row[0].id for row in collection.search(data[:10], 1, using="codes")] == list(range(10))
        collection.train_quantizer()  # the default vector
        assert versions() == [2, 2]
        with pytest.raises(InvalidArgumentError, match="vector 'plain' of collection 'trained' has no quantization"):
            collection.train_quantizer(using="plain")
        with pytest.raises(InvalidArgumentError, match="no rotation"):
            collection.learn_rotation(using="codes")
        with pytest.raises(InvalidArgumentError, match="no vector 'audio'"):
            collection.train_quantizer(using="audio")
        stats = collection.stats()
        assert stats["count"] == 320 and stats["vectors"]["plain"]["count"] == 120
        report = collection.tune(0.9, 5, queries=20, using="plain")
        described = {entry["name"]: entry for entry in shared_cluster.describe()}["trained"]
        assert described["vectors"]["plain"]["default_plan"] == plan_to_dict(report.plan)
        assert described["vectors"]["codes"]["default_plan"] is None
    finally:
        shared_cluster.drop_collection("trained")


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.upsert([1], [[1.0] * 5]), InvalidArgumentError, "has named vectors"),
    (lambda c: c.upsert([1], {"audio": [[1.0]]}), InvalidArgumentError, "no vector 'audio'"),
    (lambda c: c.upsert([1], {"image": [[1.0] * 5]}), InvalidArgumentError, "dim"),
    (lambda c: c.upsert([1], {"image": [None, [1.0] * 3]}), InvalidArgumentError, "2 entries for 1 ids"),
    (lambda c: c.upsert([1], {"image": [[1.0] * 3]}, [{"\x00order.image": 1}]), InvalidPayloadError, "keeps"),
    (lambda c: c.search([1.0] * 3, using="audio"), InvalidArgumentError, "no vector 'audio'"),
    (lambda c: c.search([1.0] * 5, using="image"), InvalidArgumentError, "dim"),
    (lambda c: c.recommend([[1.0] * 3], using="audio"), InvalidArgumentError, "no vector 'audio'"),
    (lambda c: c.tune(queries=2, using="audio"), InvalidArgumentError, "no vector 'audio'"),
    (lambda c: c.explain([1.0] * 3, using="image", text="even", fusion=vecdb.RRF()), InvalidArgumentError,
     "not available"),
])
def test_bad_input_is_refused_before_any_shard_writes(pair, call, error, message):
    ours, _ = pair
    with pytest.raises(error, match=message):
        call(ours)
    assert ours.count() == N + 20


def test_bad_settings_and_using_on_a_plain_collection_are_refused(shared_cluster):
    with pytest.raises(InvalidArgumentError, match="with vectors="):
        shared_cluster.create_collection("bad", 3, vectors=SPECS)
    with pytest.raises(InvalidArgumentError, match="needs dim"):
        shared_cluster.create_collection("bad")
    with pytest.raises(InvalidArgumentError, match="VectorSpec"):
        shared_cluster.create_collection("bad", vectors={"text": 3})
    plain = shared_cluster.create_collection("plain", 3)
    try:
        assert plain.vectors == {}
        with pytest.raises(InvalidArgumentError, match="one unnamed vector"):
            plain.search([1.0] * 3, using="text")
        with pytest.raises(InvalidArgumentError, match="exists with other settings"):
            shared_cluster.get_or_create_collection("plain", vectors=SPECS)
        assert shared_cluster.get_collection("plain").vectors == {}
    finally:
        shared_cluster.drop_collection("plain")
    assert shared_cluster.list_collections() == []


def test_a_create_one_shard_refuses_is_undone_on_the_others(shared_cluster):
    plain = {**CollectionSettings.new(3, "l2", vecdb.Flat()).to_dict(), "sparse": []}
    shared_cluster._on_shards("create", "half", plain, shards=[1])  # another collection of that name on shard 1
    try:
        with pytest.raises(InvalidArgumentError, match="exists with other settings"):
            shared_cluster.create_collection("half", vectors=SPECS)
        assert sorted(shared_cluster._keys_of("half")) == [1]  # made on shard 0, then dropped again
    finally:
        shared_cluster.drop_collection("half")
