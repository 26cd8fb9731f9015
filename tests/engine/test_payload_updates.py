"""update_payload and delete_payload_keys: payloads change without their
vectors, through payload indexes, text indexes, filters, reopening and a
read-only handle; bad input refused with nothing written; a search racing
updates sees each one whole."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidArgumentError, InvalidDTypeError, InvalidPayloadError


@pytest.fixture
def collection(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2, index=vecdb.HNSW(M=4))
        col.create_payload_index("tag", "keyword")
        col.upsert([1, 2, 3], [[1, 0], [0, 1], [1, 1]],
                   [{"tag": "a", "body": "json parser", "meta": {"x": 1, "y": 2}}, {"tag": "b", "body": "xml"}, None])
        col.create_text_index("body")
        yield col


def test_merge_sets_keys_and_keeps_the_rest(collection):
    assert collection.update_payload([1, 3, 99], {"tag": "b", "new": True}) == 2
    assert [r.payload for r in collection.get([1, 3])] == [
        {"tag": "b", "body": "json parser", "meta": {"x": 1, "y": 2}, "new": True}, {"tag": "b", "new": True}]
    assert collection.count({"tag": "b"}) == 3 and collection.count({"tag": "a"}) == 0
    hits = collection.search([1.0, 0.0], k=3)
    assert hits[0].id == 1 and hits[0].payload["new"] is True
    record = collection.get([1], with_vector=True)[0]
    np.testing.assert_allclose(record.vector, [1, 0])


def test_replace_and_filter_selection(collection):
    assert collection.update_payload(payload={"body": "yaml"}, filter={"tag": "a"}, merge=False) == 1
    assert collection.get([1])[0].payload == {"body": "yaml"}
    assert [hit.id for hit in collection.search(text="yaml")] == [1]
    assert collection.search(text="json") == []
    assert collection.count({"tag": "a"}) == 0


def test_delete_payload_keys_reaches_into_objects(collection):
    assert collection.delete_payload_keys([1, 2], ["meta.x", "body", "absent.path"]) == 2
    assert [r.payload for r in collection.get([1, 2])] == [{"tag": "a", "meta": {"y": 2}}, {"tag": "b"}]
    assert collection.search(text="json") == [] and collection.search(text="xml") == []


def test_updates_survive_reopening_and_reach_a_read_only_handle(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2)
        col.upsert([1, 2], np.eye(2), [{"body": "one"}, {"body": "two"}])
        col.create_text_index("body")
        with vecdb.open(tmp_path / "db", read_only=True) as reader:
            viewer = reader.get_collection("c")
            assert [h.id for h in viewer.search(text="one")] == [1]
            col.update_payload([2], {"body": "one more"})
            assert sorted(h.id for h in viewer.search(text="one")) == [1, 2]
            assert viewer.get([2])[0].payload == {"body": "one more"}
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        assert sorted(h.id for h in col.search(text="one")) == [1, 2]
        assert [h.id for h in col.search([0.0, 1.0], k=1)] == [2]


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.update_payload([1], "tag"), InvalidPayloadError, "must be a dict"),
    (lambda c: c.update_payload([1], {"tag": 3}), InvalidPayloadError, "keyword index"),
    (lambda c: c.update_payload([1], {"body": 3}), InvalidPayloadError, "text index"),
    (lambda c: c.update_payload([1], {"x": float("nan")}), InvalidPayloadError, "NaN"),
    (lambda c: c.update_payload([1], {"x": 1}, merge="yes"), InvalidDTypeError, "merge"),
    (lambda c: c.update_payload(None, {"x": 1}), InvalidArgumentError, "ids"),
    (lambda c: c.delete_payload_keys([1], []), InvalidArgumentError, "non-empty"),
    (lambda c: c.delete_payload_keys([1], "tag"), InvalidArgumentError, "list"),
    (lambda c: c.delete_payload_keys([1], ["a..b"]), InvalidArgumentError, "dotted"),
])
def test_bad_updates_are_refused_and_nothing_changes(collection, call, error, message):
    before = [r.payload for r in collection.get([1, 2, 3])]
    with pytest.raises(error, match=message):
        call(collection)
    assert [r.payload for r in collection.get([1, 2, 3])] == before
    assert [h.id for h in collection.search(text="json")] == [1]


def test_a_search_racing_payload_updates_sees_each_whole(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2)
        ids = list(range(50))
        col.upsert(ids, np.ones((50, 2)), [{"gen": 0, "body": "gen0 shared"} for _ in ids])
        col.create_text_index("body")
        stop, problems = threading.Event(), []

        def search():
            while not stop.is_set():
                for hits in (col.search([1.0, 1.0], k=100), col.search(text="shared", k=100)):
                    generations = {(hit.payload["gen"], hit.payload["body"]) for hit in hits}
                    if len(hits) != 50 or len(generations) != 1:
                        problems.append(generations)

        threads = [threading.Thread(target=search) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            for generation in range(1, 60):
                col.update_payload(ids, {"gen": generation, "body": f"gen{generation} shared"})
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert problems == []
