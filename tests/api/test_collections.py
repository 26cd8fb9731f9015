"""The database API: databases, collections, upsert/get/delete/search/scroll,
payload indexes, and errors for bad input. Tests taking `db` run twice:
on the embedded database and over HTTP (see conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb import errors
from tests.support.reference import recall

DIM = 8


def points(n, seed=0, dim=DIM):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    payloads = [{"lang": ["en", "fr", "de"][i % 3], "year": 2000 + i % 25, "tags": [f"t{i % 4}"],
                 "meta": {"rank": i}} for i in range(n)]
    return [f"doc-{i}" for i in range(n)], vectors, payloads


def test_quickstart_shape(db):
    ids, vectors, payloads = points(300)
    docs = db.create_collection("docs", dim=DIM, metric="cosine", index=vecdb.HNSW(M=8, ef_construction=64))
    docs.upsert(ids=ids, vectors=vectors, payloads=payloads)
    hits = docs.search(vectors[7], k=5)
    assert len(hits) == 5 and hits[0].id == "doc-7" and hits[0].payload == payloads[7]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    batch = docs.search(vectors[:3], k=2)
    assert [row[0].id for row in batch] == ["doc-0", "doc-1", "doc-2"]
    assert db.list_collections() == ["docs"] and db.get_collection("docs") is docs
    assert docs.count() == len(docs) == 300


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("index", [vecdb.Flat(), vecdb.HNSW(M=8, ef_construction=100, ef_search=200)])
def test_search_matches_brute_force(db, metric, index):
    ids, vectors, payloads = points(400, seed=1)
    col = db.create_collection("c", dim=DIM, metric=metric, index=index)
    col.upsert(ids=ids, vectors=vectors, payloads=payloads)
    queries = np.random.default_rng(2).standard_normal((20, DIM)).astype(np.float32)
    expected, distances = vecdb.knn(vectors, queries, k=10, metric=metric)
    hits = col.search(queries, k=10, with_payload=False)
    found = np.array([[int(h.id.split("-")[1]) for h in row] for row in hits])
    assert recall(found, expected) >= (1.0 if isinstance(index, vecdb.Flat) else 0.98)
    if isinstance(index, vecdb.Flat):
        scores = np.array([[h.score for h in row] for row in hits])
        want = np.sqrt(np.maximum(distances, 0)) if metric == "l2" else 1 - distances
        np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-5)


def test_ids_can_be_strings_or_integers(db):
    col = db.create_collection("mixed", dim=2, index=vecdb.Flat())
    col.upsert(ids=[1, "1", -5, 2**63 - 1], vectors=np.eye(4, 2, dtype=np.float32) + 0.1)
    assert {r.id for r in col.get([1, "1", -5, 2**63 - 1, 7])} == {1, "1", -5, 2**63 - 1}
    assert col.get(np.array([1]))[0].id == 1


def test_upsert_replaces_vector_and_payload(db):
    col = db.create_collection("c", dim=2, metric="l2", index=vecdb.HNSW(M=4, ef_construction=16))
    col.upsert(ids=["a", "b"], vectors=[[0, 0], [10, 10]], payloads=[{"v": 1}, {"v": 2}])
    col.upsert(ids=["a"], vectors=[[10, 11]], payloads=[{"v": 3}])
    assert col.count() == 2
    assert col.get(["a"], with_vector=True)[0].payload == {"v": 3}
    np.testing.assert_array_equal(col.get(["a"], with_vector=True)[0].vector, [10, 11])
    assert col.search([10, 11], k=1)[0].id == "a"
    assert col.count(filter={"v": 1}) == 0
    col.upsert(ids="a", vectors=[0, 0])  # one id, one vector; no payload clears it
    assert col.get(["a"])[0].payload == {}


def test_delete_by_id_and_filter(db):
    ids, vectors, payloads = points(90)
    col = db.create_collection("c", dim=DIM)
    col.upsert(ids=ids, vectors=vectors, payloads=payloads)
    assert col.delete(ids=["doc-0", "doc-1", "nope"]) == 2
    assert col.delete(filter={"lang": "de"}) == 30
    assert col.count() == 58
    remaining = {r.id for r in col.scroll(limit=1000)[0]}
    assert "doc-0" not in remaining and not any(int(i.split("-")[1]) % 3 == 2 for i in remaining)
    for row in col.search(vectors, k=90):
        assert {h.id for h in row} <= remaining
    with pytest.raises(errors.InvalidArgumentError, match="needs ids"):
        col.delete()


@pytest.mark.parametrize("indexed", [False, True])
def test_filtered_search_and_count(db, indexed):
    ids, vectors, payloads = points(3000, seed=3)
    col = db.create_collection("c", dim=DIM, index=vecdb.HNSW(M=8, ef_construction=64))
    if indexed:
        for field, kind in [("lang", "keyword"), ("year", "integer"), ("meta.rank", "float"), ("tags", "keyword")]:
            col.create_payload_index(field, kind)
    col.upsert(ids=ids, vectors=vectors, payloads=payloads)
    queries = np.random.default_rng(4).standard_normal((10, DIM)).astype(np.float32)
    filters = [{"lang": "en"}, {"year": {"$gte": 2020}}, {"tags": {"$in": ["t1", "t2"]}},
               {"meta.rank": {"$lt": 100.5}}, {"$or": [{"lang": "fr"}, {"year": 2003}]},
               {"lang": {"$ne": "en"}, "year": {"$not": {"$gt": 2010}}}, {"year": 1999}]
    for spec in filters:
        node = vecdb.query.filters.parse_filter(spec)
        allowed = np.array([node.matches(p) for p in payloads])
        assert col.count(filter=spec) == allowed.sum()
        if not allowed.any():
            assert col.search(queries, k=5, filter=spec) == [[] for _ in queries]
            continue
        expected, _ = vecdb.knn(vectors, queries, k=10, allowed=allowed)
        hits = col.search(queries, k=10, filter=spec, ef=200)
        found = np.array([[int(h.id.split("-")[1]) for h in row] + [-1] * (10 - len(row)) for row in hits])
        assert all(allowed[int(h.id.split("-")[1])] for row in hits for h in row)
        assert recall(found, expected) >= 0.9, spec


def test_upserted_points_are_found_before_and_after_wait_indexed(db):
    vectors = np.random.default_rng(8).standard_normal((3000, 8)).astype(np.float32)
    col = db.create_collection("c", dim=8)
    col.upsert(list(range(3000)), vectors)
    assert [h.id for h in col.search(vectors[2999], k=1)] == [2999]  # indexed yet or not
    assert col.wait_indexed(timeout=None) is True
    assert col.stats()["index_backlog"] == 0 and col.stats()["index_count"] == 3000
    assert [h.id for h in col.search(vectors[2999], k=1)] == [2999]
    with pytest.raises(errors.InvalidArgumentError, match="timeout"):
        col.wait_indexed(timeout=-1)


def test_fewer_points_than_k(db):
    col = db.create_collection("c", dim=2)
    assert col.search([1, 0], k=5) == []
    col.upsert(ids=["a", "b"], vectors=[[1, 0], [0, 1]])
    assert [h.id for h in col.search([1, 0], k=5)] == ["a", "b"]
    assert [h.id for h in col.search([1, 0], k=5, filter={"x": {"$exists": False}})] == ["a", "b"]


def test_scroll_pages_through_everything(db):
    ids, vectors, payloads = points(250)
    col = db.create_collection("c", dim=DIM, index=vecdb.Flat())
    col.upsert(ids=ids, vectors=vectors, payloads=payloads)
    seen, cursor = [], None
    while True:
        page, cursor = col.scroll(limit=60, cursor=cursor, with_vector=True)
        seen += page
        if cursor is None:
            break
    assert [r.id for r in seen] == ids
    np.testing.assert_array_equal(np.stack([r.vector for r in seen]), vectors)
    english, _ = col.scroll(filter={"lang": "en"}, limit=1000)
    assert [r.id for r in english] == ids[::3]


def test_payload_index_lifecycle(db):
    ids, vectors, payloads = points(100)
    col = db.create_collection("c", dim=DIM, index=vecdb.Flat())
    col.upsert(ids=ids, vectors=vectors, payloads=payloads)
    col.create_payload_index("year", "integer")
    assert col.payload_indexes == {"year": "integer"}
    with pytest.raises(errors.InvalidPayloadError, match="integer index"):
        col.upsert(ids=["x"], vectors=vectors[:1], payloads=[{"year": "2020"}])
    assert col.count() == 100
    with pytest.raises(errors.InvalidPayloadError, match="keyword index"):
        col.create_payload_index("year", "keyword")
    assert col.payload_indexes == {"year": "integer"}
    col.drop_payload_index("year")
    col.upsert(ids=["x"], vectors=vectors[:1], payloads=[{"year": "2020"}])
    assert col.count(filter={"year": "2020"}) == 1
    with pytest.raises(errors.InvalidArgumentError, match="unknown payload index kind"):
        col.create_payload_index("lang", "text")


def test_collection_management(db, tmp_path):
    db.create_collection("a", dim=3)
    with pytest.raises(errors.CollectionExistsError):
        db.create_collection("a", dim=3)
    assert db.create_collection("a", dim=3, exist_ok=True).name == db.get_collection("a").name == "a"
    if isinstance(db, vecdb.Database):  # one handle per collection in process
        assert db.create_collection("a", dim=3, exist_ok=True) is db.get_collection("a")
    with pytest.raises(errors.InvalidArgumentError, match="exists with dim=3"):
        db.get_or_create_collection("a", dim=4)
    for bad in ["", "../x", "a/b", "a.b", "x" * 129, None]:
        with pytest.raises(errors.InvalidArgumentError, match="invalid collection name"):
            db.create_collection(bad, dim=3)
    with pytest.raises(errors.CollectionNotFoundError):
        db.get_collection("missing")
    col = db.get_collection("a")
    col.upsert(ids=[1], vectors=[[1, 2, 3]])
    db.drop_collection("a")
    with pytest.raises(errors.CollectionNotFoundError):
        col.count()
    with pytest.raises(errors.CollectionNotFoundError):
        db.drop_collection("a")
    assert db.list_collections() == []
    again = db.create_collection("a", dim=3)
    assert again.count() == 0


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.upsert(ids=["a"], vectors=[[1, 2]]), errors.DimensionMismatchError, "dimension"),
    (lambda c: c.upsert(ids=["a", "b"], vectors=[[1, 2, 3]]), errors.InvalidArgumentError, "2 ids for 1"),
    (lambda c: c.upsert(ids=["a", "a"], vectors=np.ones((2, 3))), errors.DuplicateIdError, "'a' appears"),
    (lambda c: c.upsert(ids=["a"], vectors=[[1, np.nan, 3]]), errors.InvalidArgumentError, "row 0 contains NaN"),
    (lambda c: c.upsert(ids=["a"], vectors=[["x", "y", "z"]]), errors.InvalidDTypeError, "numeric array"),
    (lambda c: c.upsert(ids=[1.5], vectors=[[1, 2, 3]]), errors.InvalidDTypeError, "strings or integers"),
    (lambda c: c.upsert(ids=[True], vectors=[[1, 2, 3]]), errors.InvalidDTypeError, "bool"),
    (lambda c: c.upsert(ids=[""], vectors=[[1, 2, 3]]), errors.InvalidArgumentError, "empty"),
    (lambda c: c.upsert(ids=[2**64], vectors=[[1, 2, 3]]), errors.InvalidArgumentError, "64 bits"),
    (lambda c: c.upsert(ids=["a"], vectors=[[1, 2, 3]], payloads=[{"x": object()}]), errors.InvalidPayloadError,
     "not JSON-like"),
    (lambda c: c.upsert(ids=["a"], vectors=[[1, 2, 3]], payloads=[{1: 2}]), errors.InvalidPayloadError,
     "non-string key"),
    (lambda c: c.upsert(ids=["a"], vectors=[[1, 2, 3]], payloads={"x": 1}), errors.InvalidPayloadError,
     "one dict"),
    (lambda c: c.upsert(ids=["a"], vectors=[[1, 2, 3]], payloads=[{"x": float("nan")}]),
     errors.InvalidPayloadError, "NaN"),
    (lambda c: c.search([1, 2], k=3), errors.DimensionMismatchError, "dimension"),
    (lambda c: c.search([1, 2, np.inf]), errors.InvalidArgumentError, "infinity"),
    (lambda c: c.search([1, 2, 3], k=0), errors.InvalidArgumentError, "k"),
    (lambda c: c.search([1, 2, 3], filter={"a": {"$bad": 1}}), errors.InvalidFilterError, "bad"),
    (lambda c: c.scroll(limit=0), errors.InvalidArgumentError, "limit"),
])
def test_bad_input_is_refused_and_writes_nothing(db, call, error, message):
    col = db.create_collection("c", dim=3)
    col.upsert(ids=["keep"], vectors=[[1, 1, 1]], payloads=[{"x": 1}])
    with pytest.raises(error, match=message):
        call(col)
    assert [(r.id, r.payload) for r in col.scroll()[0]] == [("keep", {"x": 1})]


def test_read_only_handle_refuses_writes(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("c", dim=2).upsert(ids=["a"], vectors=[[1, 0]])
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        col = db.get_collection("c")
        assert col.count() == 1
        with pytest.raises(errors.ReadOnlyError):
            col.upsert(ids=["b"], vectors=[[0, 1]])
        with pytest.raises(errors.ReadOnlyError):
            db.create_collection("d", dim=2)
    with pytest.raises(errors.NotFoundError, match="no vecdb database"):
        vecdb.open(tmp_path / "absent", read_only=True)


def test_read_only_handle_beside_this_processs_writer_refuses_writes(tmp_path):
    """A read-only handle opened while this process has the folder open for
    writing shares the writer's LMDB environment (one per process); it must
    still refuse every write, leaving the writer's collections as they were."""
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2)
        col.upsert(ids=["a"], vectors=[[1, 0]], payloads=[{"x": 1}])
        with vecdb.open(tmp_path / "db", read_only=True) as reader:
            other = reader.get_collection("c")
            for write in (lambda: other.upsert(ids=["b"], vectors=[[0, 1]]), lambda: other.delete(ids=["a"]),
                          lambda: other.create_payload_index("x", "integer"), lambda: reader.create_collection("d", dim=2),
                          lambda: reader.drop_collection("c"), reader.compact):
                with pytest.raises(errors.ReadOnlyError):
                    write()
            assert [hit.id for hit in other.search([1, 0], k=5)] == ["a"]
        assert db.list_collections() == ["c"] and col.count() == 1
        assert [(hit.id, hit.payload) for hit in col.search([1, 0], k=5)] == [("a", {"x": 1})]


def test_closed_database_refuses_use(tmp_path):
    db = vecdb.open(tmp_path / "db")
    col = db.create_collection("c", dim=2)
    db.close()
    db.close()
    with pytest.raises(errors.ClosedError):
        col.count()


def test_empty_batches_are_no_ops(db):
    col = db.create_collection("c", dim=3)
    col.upsert(ids=[], vectors=np.zeros((0, 3)))
    assert col.delete(ids=[]) == 0 and col.get([]) == [] and col.count() == 0
    assert col.search(np.zeros((0, 3)), k=3) == []
    assert col.stats()["sequence"] == 0  # nothing was logged


def test_numpy_scalars_in_filters_are_their_values(db):
    col = db.create_collection("c", dim=2)
    col.upsert([1, 2, 3], np.eye(3, 2), [{"n": 1}, {"n": 2}, {"n": 3, "ok": True}])
    assert col.count(filter={"n": np.int64(1)}) == 1
    assert col.count(filter={"n": {"$gte": np.int32(2)}}) == 2
    assert col.count(filter={"n": {"$in": [np.int64(1), np.float64(3.0)]}}) == 2
    assert col.count(filter={"ok": np.bool_(True)}) == 1
