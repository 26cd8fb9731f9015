"""Named vectors: several dense vectors per point, each with its own index
(vecdb.named_vectors). Searches on each vector against brute force in numpy
through upserts that add and take away vectors, deletes, payload updates and
reopening (hypothesis, nasty data on purpose: duplicates, ties, points
without some vectors, one point); bad input refused with nothing written in
any part; a write that fails in its last part writes nothing; a create or
drop cut short is cleaned up; threads racing writes see each point's
vectors and payload of one write; a writer killed with kill -9 leaves every
point whole."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecdb
from vecdb.errors import CollectionExistsError, InvalidArgumentError, InvalidDTypeError, InvalidPayloadError
from vecdb.named_vectors import NamedVectorsCollection, vector_part_name
from vecdb.storage.catalog import write_config
from vecdb.config import CollectionConfig, CollectionSettings

ROOT = Path(__file__).resolve().parents[2]
SPECS = {"text": vecdb.VectorSpec(4, "cosine", index=vecdb.Flat()),
         "image": vecdb.VectorSpec(3, "l2", index=vecdb.Flat()),
         "code": vecdb.VectorSpec(2, "ip", index=vecdb.HNSW(M=4, ef_search=64))}


def create(db, name="docs", specs=None):
    return db.create_collection(name, vectors=specs or SPECS)


def brute_force(model, name, query, k, allowed=None):
    """(id, score) of the k best points having vector ``name``, ties by insertion order."""
    metric = SPECS[name].metric
    rows = [(order, point_id, vectors[name]) for order, (point_id, (vectors, payload)) in enumerate(model.items())
            if name in vectors and (allowed is None or allowed(payload))]
    if not rows:
        return []
    matrix = np.array([vector for _, _, vector in rows], dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        scores = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    elif metric == "ip":
        scores = matrix @ q
    else:
        scores = -np.linalg.norm(matrix - q, axis=1)
    return sorted(((point_id, float(score)) for (_, point_id, _), score in zip(rows, scores)),
                  key=lambda pair: -pair[1])[:k]


def assert_search_matches(col, model, name, query, k, filter=None, allowed=None):
    hits = col.search(query, k, using=name, filter=filter)
    want = brute_force(model, name, query, k, allowed)
    assert len(hits) == len(want)
    got_scores = [hit.score if SPECS[name].metric != "l2" else -hit.score for hit in hits]
    np.testing.assert_allclose(got_scores, [score for _, score in want], rtol=1e-4, atol=1e-4)
    # Ids agree except among points tied at a score.
    for hit, score in zip(hits, got_scores):
        tied = {point_id for point_id, other in brute_force(model, name, query, len(model), allowed)
                if abs(other - score) <= 1e-4}
        assert hit.id in tied


# Vectors drawn from a few values: duplicates and ties are common; all-zero
# vectors are left out of the cosine vector (cosine of zero is undefined).
VALUES = st.sampled_from([-1.0, 0.0, 0.5, 1.0])
OPS = st.lists(st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.integers(0, 7), min_size=1, max_size=5, unique=True),
              st.integers(0, 2 ** 30), st.booleans()),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 7), max_size=3, unique=True), st.integers(0, 3),
              st.booleans()),
    st.tuples(st.just("payload"), st.lists(st.integers(0, 7), max_size=3, unique=True), st.integers(0, 3),
              st.booleans()),
    st.tuples(st.just("reopen"), st.just([]), st.just(0), st.just(False)),
), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, queries=st.integers(0, 2 ** 30))
def test_searches_on_each_vector_match_brute_force(tmp_path_factory, ops, queries):
    path = tmp_path_factory.mktemp("named")
    model = {}  # id -> ({name: vector}, payload), in insertion order (a replace keeps its place)
    db = vecdb.open(path)
    try:
        col = create(db)
        col.create_payload_index("group", "integer")
        for op, ids, seed, flag in ops:
            rng = np.random.default_rng(seed)
            if op == "upsert":
                vectors, payloads = {}, []
                for name, spec in SPECS.items():
                    has = [bool(rng.random() < 0.7) for _ in ids]
                    rows = [rng.choice([-1.0, 0.0, 0.5, 1.0], spec.dim) for _ in ids]
                    if name == "text":
                        rows = [row if row.any() else np.ones(spec.dim) for row in rows]
                    if all(has) and flag:
                        vectors[name] = np.array(rows)
                    elif any(has):
                        vectors[name] = [row if present else None for row, present in zip(rows, has)]
                for point_id in ids:
                    payloads.append({"group": int(rng.integers(0, 3)), "id": point_id})
                col.upsert(ids, vectors, payloads)
                for row, point_id in enumerate(ids):
                    point_vectors = {}
                    for name, value in vectors.items():
                        vector = value[row]
                        if vector is not None:
                            point_vectors[name] = np.asarray(vector, dtype=np.float32)
                    model[point_id] = (point_vectors, payloads[row])
            elif op == "delete":
                if flag:
                    assert col.delete(filter={"group": seed}) == sum(p["group"] == seed for _, p in model.values())
                    model = {i: v for i, v in model.items() if v[1]["group"] != seed}
                else:
                    assert col.delete(ids) == sum(i in model for i in ids)
                    model = {i: v for i, v in model.items() if i not in ids}
            elif op == "payload":
                assert col.update_payload(ids, {"group": seed}) == sum(i in model for i in ids)
                for point_id in ids:
                    if point_id in model:
                        model[point_id] = (model[point_id][0], {**model[point_id][1], "group": seed})
            else:
                db.close()
                db = vecdb.open(path)
                col = db.get_collection("docs")
        assert isinstance(col, NamedVectorsCollection)
        assert col.count() == len(model) == len(col)
        records = {record.id: record for record in col.get(list(range(8)), with_vector=True)}
        assert set(records) == set(model)
        for point_id, (vectors, payload) in model.items():
            assert records[point_id].payload == payload
            assert set(records[point_id].vector) == set(vectors)
            for name, vector in vectors.items():
                np.testing.assert_array_equal(records[point_id].vector[name], vector)
        rng = np.random.default_rng(queries)
        for name, spec in SPECS.items():
            query = rng.normal(size=spec.dim)
            for k in (1, 3, 8):
                assert_search_matches(col, model, name, query, k)
            assert_search_matches(col, model, name, query, 8, {"group": 1}, lambda payload: payload["group"] == 1)
            assert_search_matches(col, model, name, query, 8, {"group": 9}, lambda payload: False)  # empty filter
    finally:
        db.close()


def test_one_point_and_the_default_vector(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        col.upsert("only", {"image": [[1.0, 2.0, 3.0]]}, [{"a": 1}])
        assert col.search([1.0, 0.0, 0.0, 0.0]) == []  # the default vector (text): the point lacks it
        hits = col.search([1.0, 2.0, 3.0], using="image", with_vector=True)
        assert [hit.id for hit in hits] == ["only"] and hits[0].score == pytest.approx(0.0, abs=1e-6)
        assert set(hits[0].vector) == {"image"} and hits[0].payload == {"a": 1}
        assert col.dim == 4 and col.metric == "cosine" and list(col.vectors) == ["text", "image", "code"]
        assert col.vectors["image"] == vecdb.VectorSpec(3, "l2", index=vecdb.Flat())
        assert db.list_collections() == ["docs"]
        described = db.describe()[0]
        assert described["dim"] == 4 and described["vectors"]["image"]["dim"] == 3 and described["count"] == 1
        assert col.stats()["vectors"]["image"]["count"] == 1 and col.stats()["vectors"]["text"]["count"] == 0


def test_each_vector_has_its_own_index_quantization_and_prefixes(tmp_path):
    specs = {"text": vecdb.VectorSpec(16, "cosine", index=vecdb.HNSW(M=8), mrl_dims=[4, 8]),
             "image": vecdb.VectorSpec(8, "l2", index=vecdb.Flat(), quantization=vecdb.PQ(m=4, train_size=256))}
    rng = np.random.default_rng(3)
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("docs", vectors=specs)
        text, image = rng.normal(size=(400, 16)).astype(np.float32), rng.normal(size=(400, 8)).astype(np.float32)
        col.upsert(list(range(400)), {"text": text, "image": image})
        assert col.wait_indexed(60)
        stats = col.stats()["vectors"]
        assert stats["text"]["mrl"]["dims"] == [4, 8] and stats["text"]["index"] == "HNSW"
        assert stats["image"]["quantization"]["trained"] and stats["image"]["index"] == "Flat"
        # Each vector's search finds its own nearest point (the query is a stored vector).
        assert col.search(text[17], 1, using="text")[0].id == 17
        assert col.search(image[42], 1, using="image")[0].id == 42
        assert col.search(text[5], 1, using="text", dims=8)[0].id == 5
        assert col.explain(text[5], 1, using="text").plan is not None


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.upsert([1], [[1.0, 0, 0, 0]]), InvalidArgumentError, "named vectors"),
    (lambda c: c.upsert([1], {"audio": [[1.0]]}), InvalidArgumentError, "no vector 'audio'"),
    (lambda c: c.upsert([1], {"text": [[1.0, 0, 0]]}), InvalidArgumentError, "dim"),
    (lambda c: c.upsert([1, 2], {"text": [[1.0, 0, 0, 0], None, None]}), InvalidArgumentError, "3 entries for 2"),
    (lambda c: c.upsert([1, 2], {"text": [[1.0, 0, 0, 0], [float("nan"), 0, 0, 0]]}), InvalidArgumentError, "NaN"),
    (lambda c: c.upsert([1, 1], {"text": [[1.0, 0, 0, 0], [0, 1.0, 0, 0]]}), InvalidArgumentError, "more than once"),
    (lambda c: c.upsert([1], {"text": [[1.0, 0, 0, 0]]}, [{"group": "x"}]), InvalidPayloadError, "integer index"),
    (lambda c: c.search([1.0, 0, 0], using="audio"), InvalidArgumentError, "no vector 'audio'"),
    (lambda c: c.search([1.0, 0, 0, 0], using="image"), InvalidArgumentError, "dim"),
    (lambda c: c.search([1.0, 0, 0, 0], text="x"), InvalidArgumentError, "fusion"),
    (lambda c: c.search([1.0, 0, 0, 0], fusion=vecdb.RRF()), InvalidArgumentError, "text= or sparse="),
    (lambda c: c.update_payload([1], "x"), InvalidPayloadError, "dict"),
    (lambda c: c.get([1], with_vector="yes"), InvalidDTypeError, "with_vector"),
])
def test_bad_input_is_refused_with_nothing_written(tmp_path, call, error, message):
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        col.create_payload_index("group", "integer")
        col.upsert([7], {"text": [[0.0, 1.0, 0, 0]], "image": [[1.0, 1.0, 1.0]]}, [{"group": 1}])
        with pytest.raises(error, match=message):
            call(col)
        assert col.count() == 1 and [r.id for r in col.get([1, 2, 7])] == [7]
        assert {name: len(col.search(np.ones(spec.dim), 5, using=name)) for name, spec in SPECS.items()} == {
            "text": 1, "image": 1, "code": 0}


@pytest.mark.parametrize("kwargs, message", [
    (dict(vectors={}), "non-empty"),
    (dict(vectors={"a.b": vecdb.VectorSpec(2)}), "vector name"),
    (dict(vectors={"a": 2}), "VectorSpec"),
    (dict(vectors={"a": vecdb.VectorSpec(0)}), "dim"),
    (dict(vectors={"a": vecdb.VectorSpec(4, mrl_dims=[8])}), "mrl_dims"),
    (dict(dim=4, vectors={"a": vecdb.VectorSpec(4)}), "VectorSpec"),
    (dict(), "needs dim"),
])
def test_bad_settings_are_refused(tmp_path, kwargs, message):
    with vecdb.open(tmp_path / "db") as db:
        with pytest.raises(InvalidArgumentError, match=message):
            db.create_collection("docs", **kwargs)
        assert db.list_collections() == [] and db.describe() == []


def test_exist_ok_and_existing_names(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        assert db.create_collection("docs", vectors=SPECS, exist_ok=True) is col
        with pytest.raises(CollectionExistsError):
            create(db)
        with pytest.raises(InvalidArgumentError, match="other settings"):
            db.create_collection("docs", vectors={"text": vecdb.VectorSpec(5)}, exist_ok=True)
        with pytest.raises(InvalidArgumentError, match="invalid collection name"):
            db.get_collection(vector_part_name("docs", "text"))  # the parts are not collections of their own


def test_a_write_failing_in_its_last_part_writes_nothing(tmp_path, monkeypatch):
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        col.upsert([1], {"text": [[1.0, 0, 0, 0]], "code": [[1.0, 1.0]]}, [{"v": 1}])
        part = col._parts["code"]

        def failing(*args, **kwargs):
            raise OSError("disk gone")

        monkeypatch.setattr(part._store, "upsert", failing)
        with pytest.raises(OSError):
            col.upsert([1, 2], {"text": [[0, 1.0, 0, 0], [0, 0, 1.0, 0]], "code": [[2.0, 2.0], [3.0, 3.0]]},
                       [{"v": 2}, {"v": 2}])
        monkeypatch.undo()
        assert [r.payload for r in col.get([1, 2])] == [{"v": 1}]
        record = col.get([1], with_vector=True)[0]
        np.testing.assert_array_equal(record.vector["text"], [1, 0, 0, 0])
        assert [h.id for h in col.search([1.0, 0, 0, 0], 5)] == [1]
        assert [h.payload for h in col.search([1.0, 1.0], 5, using="code")] == [{"v": 1}]
        col.upsert([2], {"code": [[3.0, 3.0]]})  # and the collection goes on
        assert col.count() == 2
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("docs")
        assert sorted(h.id for h in col.search([1.0, 1.0], 5, using="code")) == [1, 2]


def test_text_sparse_and_hybrid_searches(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("docs", vectors=SPECS, sparse=["splade"])
        col.create_text_index("body")
        col.upsert([1, 2, 3], {"text": [[1.0, 0, 0, 0], [0, 1.0, 0, 0], None]},
                   [{"body": "fast json parser"}, {"body": "xml parser"}, {"body": "json schema"}],
                   sparse={"splade": [{"indices": [1], "values": [1.0]}, None,
                                      {"indices": [1, 5], "values": [2.0, 1.0]}]})
        assert [h.id for h in col.search(text="json", k=5)] == [1, 3] or \
            sorted(h.id for h in col.search(text="json", k=5)) == [1, 3]
        assert [h.id for h in col.search(sparse={"splade": {"indices": [1], "values": [1.0]}})] == [3, 1]
        hits = col.search([1.0, 0, 0, 0], text="json", fusion=vecdb.RRF(), k=3, with_vector=True)
        assert hits[0].id == 1 and {h.id for h in hits} == {1, 2, 3}
        assert set(hits[0].vector) == {"text"} and hits[[h.id for h in hits].index(3)].vector == {}
        groups = col.search([1.0, 0, 0, 0], k=2, group_by="body")
        assert [g.hits[0].id for g in groups] == [1, 2]
        recommended = col.recommend([1], k=2)
        assert [h.id for h in recommended] == [2]


def test_drop_and_a_create_cut_short(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        col.upsert([1], {"text": [[1.0, 0, 0, 0]]})
        db.drop_collection("docs")
        with pytest.raises(vecdb.errors.CollectionNotFoundError):
            col.count()
        assert db.list_collections() == [] and db.describe() == []
        # A crash after a vector's part was written but before the collection's own config: a part no one names.
        orphan = CollectionConfig(name=vector_part_name("docs", "text"), key="ab" * 8,
                                  settings=CollectionSettings.new(4, "cosine", vecdb.Flat()))
        db._environment.write(lambda txn: write_config(txn, orphan))
    with vecdb.open(tmp_path / "db") as db:
        assert db.describe() == []
        col = create(db)  # the name is free again, its parts too
        col.upsert([1], {"text": [[1.0, 0, 0, 0]]})
        assert col.count() == 1


def test_a_read_only_handle_sees_the_writers_points(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        col.upsert([1], {"text": [[1.0, 0, 0, 0]]})
        with vecdb.open(tmp_path / "db", read_only=True) as reader:
            viewer = reader.get_collection("docs")
            col.upsert([2], {"image": [[1.0, 1.0, 1.0]]})
            reader.refresh()
            assert [h.id for h in viewer.search([1.0, 1.0, 1.0], 5, using="image")] == [2]
            assert sorted(r.id for r in viewer.get([1, 2])) == [1, 2]


def test_threads_racing_writes_see_each_point_whole(tmp_path):
    """Each write gives every point all three vectors and a payload made
    from one generation; readers never see two generations in one point."""
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        ids = list(range(20))

        def write(generation):
            g = float(generation + 1)
            col.upsert(ids, {"text": np.full((20, 4), g), "image": np.full((20, 3), g), "code": np.full((20, 2), g)},
                       [{"generation": generation}] * 20)

        write(0)
        stop, failures = threading.Event(), []

        def read():
            while not stop.is_set():
                for record in col.get(ids[:5], with_vector=True):
                    g = record.payload["generation"] + 1
                    if any(not np.all(vector == g) for vector in record.vector.values()) or len(record.vector) != 3:
                        failures.append(record)
                hits = col.search(np.ones(3), 3, using="image", with_vector=True)
                for hit in hits:
                    if not np.all(hit.vector["text"] == hit.payload["generation"] + 1):
                        failures.append(hit)

        readers = [threading.Thread(target=read) for _ in range(2)]
        for thread in readers:
            thread.start()
        for generation in range(1, 60):
            write(generation)
        stop.set()
        for thread in readers:
            thread.join()
        assert failures == []


WRITER = """
import sys, numpy as np, vecdb
db = vecdb.open(sys.argv[1])
col = db.get_or_create_collection("docs", vectors={"text": vecdb.VectorSpec(4), "image": vecdb.VectorSpec(3)})
generation = int(sys.argv[2])
while True:
    g = float(generation + 1)
    ids = list(range(50))
    image = [np.full(3, g) if generation % 2 else None for _ in ids]
    col.upsert(ids, {"text": np.full((50, 4), g), "image": image}, [{"generation": generation}] * 50)
    print(generation, flush=True)
    generation += 1
"""


def test_kill_9_leaves_every_point_whole(tmp_path):
    """A writer replacing every point (payload, text vector, and an image
    vector every other batch) is killed at random moments: each point's
    parts always come from the same batch, and a returned batch is there."""
    path = str(tmp_path / "db")
    rng = np.random.default_rng(11)
    generation = 0
    for _ in range(6):
        process = subprocess.Popen([sys.executable, "-c", WRITER, path, str(generation)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = process.stdout.readline()
        assert first, process.stderr.read()
        time.sleep(float(rng.uniform(0.0, 0.5)))
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate()
        reported = max(int(line) for line in (first + out).split())
        with vecdb.open(path) as db:
            col = db.get_collection("docs")
            records = col.get(list(range(50)), with_vector=True)
            assert len(records) == 50
            stored = {record.payload["generation"] for record in records}
            assert len(stored) == 1 and stored.pop() >= reported
            for record in records:
                g = record.payload["generation"]
                np.testing.assert_array_equal(record.vector["text"], np.full(4, g + 1.0))
                assert ("image" in record.vector) == bool(g % 2)
            hits = col.search(np.ones(3), 50, using="image")
            assert len(hits) == (50 if records[0].payload["generation"] % 2 else 0)
            generation = records[0].payload["generation"] + 1


def test_recommend_examples_need_the_vector_searched(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = create(db)
        col.upsert([1, 2, 3], {"text": [[1.0, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1.0, 0, 0]],
                               "image": [[1.0, 1.0, 1.0], None, [1.0, 1.0, 2.0]]})
        with pytest.raises(InvalidArgumentError, match="point 2 has no 'image' vector"):
            col.recommend([2], k=2, using="image")
        with pytest.raises(InvalidArgumentError, match="does not exist"):
            col.recommend([99], k=2, using="image")
        assert [hit.id for hit in col.recommend([1], k=2, using="image")] == [3]
        assert [hit.id for hit in col.recommend([1], negative=[3], k=1)] == [2]
