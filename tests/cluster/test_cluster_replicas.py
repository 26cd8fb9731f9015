"""Read replicas: each shard's folder opened read-only by more actors on its
node, taking turns at answering reads. Every read sees every write that
returned before it, whichever actor answers."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb.errors import CollectionNotFoundError

DIM = 8


@pytest.fixture(scope="module")
def replicated(ray_cluster, tmp_path_factory):
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path_factory.mktemp("replicas") / "db", shards=2, replicas=2) as database:
        yield database


def test_reads_are_spread_over_the_primary_and_its_replicas(replicated):
    answering = {replicated._shard_set.call({0: ("pid", (), {})}, read=True)[0] for _ in range(9)}
    assert len(answering) == 3


@pytest.mark.parametrize("opened_before", [False, True])
def test_text_indexes_and_searches_by_text_on_every_actor(replicated, opened_before):
    """``opened_before``: the replicas have the collection open before its
    first text index is made (else they open it after)."""
    collection = replicated.create_collection("texts", DIM, "l2", index=vecdb.Flat())
    try:
        collection.upsert([1, 2, 3], np.eye(3, DIM), [{"title": "red fox"}, {"title": "red red fox"}, None])
        if opened_before:
            for _ in range(3):
                assert collection.count() == 3
        collection.create_text_index("title")
        for _ in range(3):  # every actor has the index, and the statistics and searches agree
            assert list(collection.text_indexes) == ["title"]
            assert [hit.id for hit in collection.search(text="red", k=5)] == [2, 1]
        collection.upsert([4], np.ones((1, DIM)), [{"title": "red"}])
        collection.create_text_index("body")
        for _ in range(3):
            assert [hit.id for hit in collection.search(text="red", text_field="title", k=5)] == [4, 2, 1]
        collection.drop_text_index("title")
        for _ in range(3):
            assert list(collection.text_indexes) == ["body"]
    finally:
        replicated.drop_collection("texts")


def test_every_read_sees_the_writes_that_returned_before_it(replicated):
    collection = replicated.create_collection("fresh", DIM, "l2", index=vecdb.Flat())
    rng = np.random.default_rng(2)
    stored = {}
    try:
        for batch in range(6):
            ids = list(range(batch * 20, batch * 20 + 20))
            vectors = rng.standard_normal((20, DIM)).astype(np.float32)
            collection.upsert(ids, vectors, [{"batch": batch}] * 20)
            stored.update(zip(ids, vectors))
            if batch % 2:
                doomed = ids[:5]
                assert collection.delete(doomed) == 5
                for point_id in doomed:
                    del stored[point_id]
            for _ in range(3):  # every actor of each shard in turn
                assert collection.count() == len(stored)
                hits = collection.search(vectors[10:], 1)
                assert [row[0].id for row in hits] == ids[10:]
                assert {record.id for record in collection.get(ids)} == {i for i in ids if i in stored}
                assert collection.count({"batch": batch}) == len([i for i in ids if i in stored])
        collection.create_payload_index("batch", "integer")
        for _ in range(3):
            assert collection.payload_indexes == {"batch": "integer"}
    finally:
        replicated.drop_collection("fresh")
    for _ in range(3):
        with pytest.raises(CollectionNotFoundError):
            collection.count()
    assert "fresh" not in replicated.list_collections()
