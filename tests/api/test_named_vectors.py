"""Named vectors through the API, on every backend (the ``db`` fixture:
embedded, remote, remote through a reader worker, a 2-shard cluster):
each vector's searches equal brute force among the points that have it,
with filters; records carry ``{name: vector}``; replacing a point drops
the vectors it is not given; text and hybrid searches, recommendations,
grouping, payload updates and deletes reach every vector; the collection's
description lists its vectors; bad input is refused with the embedded
error and nothing written."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidArgumentError

N = 120
SPECS = {"text": vecdb.VectorSpec(6, "cosine", index=vecdb.Flat()),
         "image": vecdb.VectorSpec(4, "l2", index=vecdb.Flat())}


@pytest.fixture
def named(db):
    """120 points: every one has a text vector, every third no image vector."""
    collection = db.create_collection("named", vectors=SPECS)
    rng = np.random.default_rng(5)
    text = rng.integers(-3, 4, size=(N, 6)).astype(np.float32) + 0.5
    image = rng.integers(-3, 4, size=(N, 4)).astype(np.float32)
    has_image = [i % 3 != 0 for i in range(N)]
    payloads = [{"doc": i // 4, "tag": ["a", "b"][i % 2], "body": f"point {i} {'even' if i % 2 == 0 else 'odd'}"}
                for i in range(N)]
    collection.upsert(list(range(N)), {"text": text, "image": [image[i] if has_image[i] else None for i in range(N)]},
                      payloads)
    return collection, text, image, has_image, payloads


def brute(vectors, present, query, metric, k):
    rows = [i for i in range(len(vectors)) if present[i]]
    matrix = vectors[rows].astype(np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        scores = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
        order = np.argsort(-scores, kind="stable")
    else:
        scores = np.linalg.norm(matrix - q, axis=1)
        order = np.argsort(scores, kind="stable")
    return [rows[i] for i in order[:k]], scores[order[:k]]


def test_each_vector_searches_its_own_points(named):
    collection, text, image, has_image, payloads = named
    rng = np.random.default_rng(8)
    for name, vectors, present in (("text", text, [True] * N), ("image", image, has_image)):
        for _ in range(5):
            query = rng.normal(size=vectors.shape[1])
            hits = collection.search(query, 10, using=name)
            ids, scores = brute(vectors, present, query, SPECS[name].metric, 10)
            np.testing.assert_allclose([hit.score for hit in hits], scores, rtol=1e-4, atol=1e-4)
            assert {hit.id for hit in hits} <= {i for i in range(N) if present[i]}
            keep = [present[i] and payloads[i]["tag"] == "a" for i in range(N)]
            filtered = collection.search(query, 5, using=name, filter={"tag": "a"})
            np.testing.assert_allclose([hit.score for hit in filtered],
                                       brute(vectors, keep, query, SPECS[name].metric, 5)[1], rtol=1e-4, atol=1e-4)
    default = collection.search(text[7], 1)  # the first vector is the default
    assert default[0].id == 7


def test_records_carry_each_vector_they_have(named):
    collection, text, image, has_image, _ = named
    records = collection.get([0, 1, 999], with_vector=True)
    assert [record.id for record in records] == [0, 1]
    assert set(records[0].vector) == {"text"} and set(records[1].vector) == {"text", "image"}
    np.testing.assert_array_equal(records[1].vector["image"], image[1])
    np.testing.assert_array_equal(records[0].vector["text"], text[0])
    page, _ = collection.scroll(limit=3, with_vector=True)
    assert [set(record.vector) for record in page] == [{"text"}, {"text", "image"}, {"text", "image"}]
    hits = collection.search(image[2], 1, using="image", with_vector=True)
    assert hits[0].id == 2 and set(hits[0].vector) == {"text", "image"}


def test_a_replace_drops_the_vectors_not_given(named):
    collection, text, image, _, _ = named
    collection.upsert([1], {"text": [text[1]]}, [{"tag": "new"}])
    assert set(collection.get([1], with_vector=True)[0].vector) == {"text"}
    assert 1 not in {hit.id for hit in collection.search(image[1], N, using="image")}
    collection.upsert([3], {"image": [image[3]]})  # now only an image vector
    assert 3 in {hit.id for hit in collection.search(image[3], 5, using="image")}
    assert 3 not in {hit.id for hit in collection.search(text[3], N, using="text")}
    assert collection.count() == N


def test_deletes_and_payload_updates_reach_every_vector(named):
    collection, text, image, _, _ = named
    assert collection.delete(filter={"doc": 0}) == 4  # points 0-3
    assert collection.count() == N - 4
    assert not {0, 1, 2, 3} & {hit.id for hit in collection.search(image[1], N, using="image")}
    assert collection.update_payload([5], {"tag": "z"}) == 1
    assert collection.search(image[5], 1, using="image", filter={"tag": "z"})[0].id == 5
    assert collection.search(text[5], 1, using="text", filter={"tag": "z"})[0].id == 5


def test_text_hybrid_recommend_and_groups(named):
    collection, text, image, _, _ = named
    collection.create_text_index("body")
    hits = collection.search(text="even", k=200)
    assert sorted(hit.id for hit in hits) == list(range(0, N, 2))
    fused = collection.search(image[4], 5, using="image", text="even", fusion=vecdb.RRF())
    assert fused[0].id == 4
    recommended = collection.recommend([4], k=3, using="image")
    assert len(recommended) == 3 and 4 not in {hit.id for hit in recommended}
    groups = collection.search(text[9], 2, using="text", group_by="doc", group_size=2)
    assert groups[0].key == 2 and len(groups[0].hits) == 2


def test_the_description_lists_the_vectors(db, named):
    described = {entry["name"]: entry for entry in db.describe()}["named"]
    assert described["count"] == N
    assert {name: (entry["dim"], entry["metric"]) for name, entry in described["vectors"].items()} == {
        "text": (6, "cosine"), "image": (4, "l2")}
    assert db.list_collections() == ["named"]
    collection = db.get_collection("named")
    assert list(collection.vectors) == ["text", "image"] and collection.vectors["image"].dim == 4


@pytest.mark.parametrize("call, message", [
    (lambda c: c.upsert([1000], [[1.0] * 6]), "named vectors"),
    (lambda c: c.upsert([1000], {"audio": [[1.0]]}), "no vector 'audio'"),
    (lambda c: c.upsert([1000], {"image": [[1.0] * 6]}), "dim"),
    (lambda c: c.search([1.0] * 4, using="audio"), "no vector 'audio'"),
    (lambda c: c.search([1.0] * 6, using="image"), "dim"),
])
def test_bad_input_is_refused(named, call, message):
    collection = named[0]
    with pytest.raises(InvalidArgumentError, match=message):
        call(collection)
    assert collection.count() == N


def test_a_plain_collection_refuses_what_names_vectors(db):
    plain = db.create_collection("plain", 3, index=vecdb.Flat())
    with pytest.raises(InvalidArgumentError, match="one unnamed vector"):
        plain.upsert([1], {"text": [[1.0, 2.0, 3.0]]})
    with pytest.raises(InvalidArgumentError, match="one unnamed vector"):
        plain.search([1.0, 2.0, 3.0], using="text")
    assert plain.vectors == {} and plain.count() == 0
