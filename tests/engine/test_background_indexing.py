"""Writes that return before the graph holds them: the backlog of points
waiting for the background indexer is searched exactly and merged, so
every search sees every committed point (read-your-writes), whatever the
indexer has done so far; and what the indexer does never shows.

The indexer is held back by holding the collection's index lock on the
test's thread (the lock is reentrant: this thread's own writes go on).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecdb
from vecdb import errors
from vecdb.index import indexer

DIM = 4
BACKLOG = 32_768  # background indexing is opted into (the default, 0, indexes inside each upsert)
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def indexer_held(col):
    """Nothing moves from the backlog into the graph meanwhile (but this
    thread's own steps)."""
    with col._index_lock:
        yield


def true_top(model, query, metric, k, allowed=None):
    """(id, score) of the k best stored points by brute force, best first."""
    ids = [i for i in model if allowed is None or allowed(i)]
    if not ids:
        return []
    matrix = np.stack([model[i] for i in ids]).astype(np.float64)
    q = query.astype(np.float64)
    if metric == "l2":
        scores = np.sqrt(((matrix - q) ** 2).sum(axis=1))
        order = np.argsort(scores, kind="stable")
    else:
        dots = matrix @ q
        if metric == "cosine":
            dots = dots / np.maximum(np.linalg.norm(matrix, axis=1) * np.linalg.norm(q), 1e-30)
        scores = dots
        order = np.argsort(-scores, kind="stable")
    return [(ids[i], float(scores[i])) for i in order[:k]]


def check_exact(hits, model, query, metric, k, allowed=None):
    """Hits are the true top k: each a stored point, each scored by its
    current vector, and as good as brute force at every rank (ties may
    swap ids, never scores)."""
    truth = true_top(model, query, metric, k, allowed)
    assert len(hits) == len(truth)
    assert len({h.id for h in hits}) == len(hits)
    for hit, (_, want) in zip(hits, truth):
        assert hit.id in model and (allowed is None or allowed(hit.id))
        own = true_top({hit.id: model[hit.id]}, query, metric, 1)[0][1]
        assert hit.score == pytest.approx(own, abs=2e-4)
        assert hit.score == pytest.approx(want, abs=2e-4)


# Few distinct values: duplicates and exact ties are common on purpose.
coordinate = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0])
vector = st.lists(coordinate, min_size=DIM, max_size=DIM).filter(lambda v: any(v))
point_id = st.integers(0, 30)
operation = st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.tuples(point_id, vector), min_size=1, max_size=8,
                                          unique_by=lambda pair: pair[0])),
    st.tuples(st.just("delete"), st.lists(point_id, min_size=1, max_size=4)),
    st.tuples(st.just("index"), st.integers(1, 3)),  # the indexer moves some chunks
    st.tuples(st.just("search"), vector, st.integers(1, 12), st.sampled_from([None, 0, 1])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25), metric=st.sampled_from(["cosine", "l2", "ip"]),
       chunk=st.sampled_from([1, 3, 512]))
def test_searches_see_every_committed_point_while_the_indexer_lags(tmp_path_factory, monkeypatch, operations,
                                                                   metric, chunk):
    monkeypatch.setattr(indexer, "CHUNK", chunk)  # small chunks: points in the graph and the backlog side by side
    with vecdb.open(tmp_path_factory.mktemp("db"), index_backlog=BACKLOG) as db:
        col = db.create_collection("c", DIM, metric, index=vecdb.HNSW(M=4, ef_construction=16, ef_search=64))
        col.create_payload_index("odd", "bool")
        model = {}
        with indexer_held(col):
            for op in operations:
                if op[0] == "upsert":
                    ids = [i for i, _ in op[1]]
                    vectors = np.array([v for _, v in op[1]], dtype=np.float32)
                    col.upsert(ids, vectors, [{"odd": i % 2 == 1} for i in ids])
                    model.update(zip(ids, vectors))
                elif op[0] == "delete":
                    col.delete(op[1])
                    for i in op[1]:
                        model.pop(i, None)
                elif op[0] == "index":
                    for _ in range(op[1]):
                        col._indexer.step()
                else:
                    _, query, k, parity = op
                    query = np.array(query, dtype=np.float32)
                    flt = None if parity is None else {"odd": bool(parity)}
                    allowed = None if parity is None else (lambda i, parity=parity: i % 2 == parity)
                    # An exact plan, over the graph's points and the backlog: exactly brute force.
                    check_exact(col.search(query, k, filter=flt, plan=vecdb.plans.Scan()), model, query, metric, k,
                                allowed)
                    # The graph's own plan: every backlog point that belongs in the top k is there.
                    hits = col.search(query, k, filter=flt, ef=64)
                    assert {h.id for h in hits} <= set(model)
                    waiting = _waiting_ids(col)
                    truth = true_top(model, query, metric, k, allowed)
                    if hits and len(hits) == k:
                        worst = hits[-1].score
                        better = [i for i, s in truth if (s < worst - 1e-4 if metric == "l2" else s > worst + 1e-4)]
                        assert set(better) & waiting <= {h.id for h in hits}
                    else:  # fewer than k: every stored point that passes was returned (the graph holds few)
                        assert {h.id for h in hits} == {i for i, _ in truth}
                assert col.count() == len(model)
                assert col.stats()["index_count"] == len(model)
        assert col.wait_indexed()
        stats = col.stats()
        assert stats["index_backlog"] == 0 and stats["index_count"] == len(model)
        assert set(col._indexes.main.labels().tolist()) == _stored_labels(col)


def _waiting_ids(col):
    backlog = col._indexes.backlog
    labels = list(backlog._row_of)
    with col._environment.read() as txn:
        return {vecdb.storage.keys.user_id_from_key(col._store.id_key_of(txn, label)) for label in labels}


def _stored_labels(col):
    with col._environment.read() as txn:
        return set(col._store.all_labels(txn).tolist())


def test_an_upsert_returns_before_the_graph_holds_it_and_wait_indexed_waits(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.create_collection("c", 16)
        with indexer_held(col):
            col.upsert(list(range(3000)), vectors)
            stats = col.stats()
            assert stats["index_backlog"] == 3000 and stats["index_count"] == 3000 and len(col._indexes.main) == 0
            assert col.wait_indexed(timeout=0) is False  # nothing indexed within no time
            assert [h.id for h in col.search(vectors[7], k=1)] == [7]
            explanation = col.explain(vectors[:2], k=5, execute=True)
            assert "3,000 points waiting to be indexed" in str(explanation)
        assert col.wait_indexed(timeout=None) is True
        assert col.stats()["index_backlog"] == 0 and len(col._indexes.main) == 3000
        for bad in (-1, float("nan"), float("inf"), "soon", True):
            with pytest.raises(errors.InvalidArgumentError, match="timeout"):
                col.wait_indexed(bad)
        # Flat collections have no backlog: writes go straight to the matrix.
        flat = db.create_collection("flat", 16, index=vecdb.Flat())
        flat.upsert([1], vectors[:1])
        assert flat.stats()["index_backlog"] == 0 and flat.wait_indexed() is True


def test_backpressure_indexes_on_the_writers_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(indexer, "CHUNK", 50)
    vectors = np.random.default_rng(1).standard_normal((1000, 8)).astype(np.float32)
    with vecdb.open(tmp_path / "db", index_backlog=100) as db:
        col = db.create_collection("c", 8)
        with indexer_held(col):  # no background thread indexes: the writer must
            for start in range(0, 1000, 200):
                col.upsert(list(range(start, start + 200)), vectors[start:start + 200])
                assert col.stats()["index_backlog"] <= 100
        assert col.count() == 1000


def test_no_backlog_indexes_and_trains_before_the_upsert_returns(tmp_path):
    vectors = np.random.default_rng(6).standard_normal((1200, 16)).astype(np.float32)
    with vecdb.open(tmp_path / "db", index_backlog=0) as db:
        col = db.create_collection("c", 16, quantization=vecdb.PQ(m=4, rerank=50, train_size=500))
        col.upsert(list(range(1200)), vectors)
        stats = col.stats()
        assert stats["index_backlog"] == 0 and stats["quantization"]["trained"] and len(col._indexes.main) == 1200
    for bad in (-1, 1.5, "many", True):
        with pytest.raises(errors.VecdbError, match="index_backlog"):
            vecdb.open(tmp_path / "other", index_backlog=bad)


def test_replacing_a_point_the_graph_holds_is_immediate(tmp_path):
    """A point the graph holds already is replaced in it by the upsert
    (only new points wait): no search scores its old vector afterwards."""
    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.create_collection("c", 4, "l2")
        col.upsert([1, 2], [[0, 0, 0, 1], [5, 5, 5, 5]])
        col.wait_indexed()
        with indexer_held(col):
            col.upsert([2, 3], [[0, 0, 0, 0], [9, 9, 9, 9]])
            assert col._indexes.backlog.holds(np.array(col._store_labels_of([2, 3]))).tolist() == [False, True]
            hits = col.search([0, 0, 0, 0], k=3)
            assert [(h.id, round(h.score, 4)) for h in hits] == [(2, 0.0), (1, 1.0), (3, 18.0)]


@pytest.fixture(autouse=True)
def _labels_helper(monkeypatch):
    def labels_of(col, ids):
        with col._environment.read() as txn:
            col._store.config(txn)
            return col._store.labels_of(txn, [vecdb.storage.keys.user_id_key(i) for i in ids]).tolist()
    monkeypatch.setattr(vecdb.Collection, "_store_labels_of", labels_of, raising=False)


def test_close_indexes_what_waits_and_reopens_from_the_snapshot(tmp_path):
    vectors = np.random.default_rng(2).standard_normal((2500, 8)).astype(np.float32)
    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.create_collection("c", 8)
        with indexer_held(col):
            col.upsert(list(range(2500)), vectors)
    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.get_collection("c")
        stats = col.stats()
        assert stats["index_source"] == "snapshot" and stats["index_count"] == 2500 and stats["index_backlog"] == 0


def test_a_snapshot_taken_while_points_wait_is_stamped_before_them(tmp_path):
    """Snapshots during ingest save the graph as it is; the points still in
    the backlog (and their change sequences) are replayed on reopening. The
    writer leaves without closing (os._exit, as a kill would)."""
    writer = f"""
import os, numpy as np, vecdb
from vecdb import collection
collection.SNAPSHOT_MIN_CHANGES, collection.SNAPSHOT_SHARE = 100, 0.0
vectors = np.random.default_rng(3).standard_normal((600, 8)).astype(np.float32)
db = vecdb.open({str(tmp_path / "db")!r}, index_backlog=32_768)
col = db.create_collection("c", 8)
col.upsert(list(range(300)), vectors[:300])
col.wait_indexed()
col._index_lock.acquire()  # nothing more gets indexed
col.upsert(list(range(300, 600)), vectors[300:])  # a snapshot comes due: stamped before these
col.delete([0, 1])
col.upsert([5], vectors[599:600])  # replaced in the graph at once
assert col.stats()["index_backlog"] == 300
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", writer], cwd=ROOT, check=True, timeout=120)
    vectors = np.random.default_rng(3).standard_normal((600, 8)).astype(np.float32)
    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.get_collection("c")
        assert col.stats()["index_source"] == "snapshot+replay"
        assert col.count() == 598 and set(col._indexes.main.labels().tolist()) == _stored_labels(col)
        assert {h.id for h in col.search(vectors[599], k=2, plan=vecdb.plans.Scan())} == {5, 599}
        assert not col.get([0, 1])


def test_readers_race_the_indexer_and_always_find_acknowledged_points(tmp_path, monkeypatch):
    """Writers upsert while the indexer moves chunks (small ones: many
    moves) and searchers look for the newest acknowledged point by its own
    vector. An exact plan (the graph's points scanned, and the backlog)
    finds it every time, whatever was moving; the graph's plan nearly
    every time (a graph search is approximate: a point the indexer has
    moved is found as the graph finds it)."""
    monkeypatch.setattr(indexer, "CHUNK", 7)
    dim = 8
    vectors = np.random.default_rng(4).standard_normal((3000, dim)).astype(np.float32)
    acknowledged = [-1]
    failures, graph_searches, graph_misses, done = [], [0], [0], threading.Event()
    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.create_collection("c", dim, index=vecdb.HNSW(M=16, ef_construction=64))

        def search(exact):
            while not done.is_set():
                newest = acknowledged[0]
                if newest < 0:
                    continue
                try:
                    if exact:
                        hits = col.search(vectors[newest], k=1, with_payload=False, plan=vecdb.plans.Scan())
                        assert hits and hits[0].id == newest, (newest, hits)
                    else:
                        hits = col.search(vectors[newest], k=1, with_payload=False, ef=128)
                        graph_searches[0] += 1
                        graph_misses[0] += not hits or hits[0].id != newest
                except Exception as exc:  # noqa: BLE001 - collected and asserted below
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=search, args=(exact,)) for exact in (True, False)]
        for thread in threads:
            thread.start()
        try:
            for start in range(0, 3000, 30):
                col.upsert(list(range(start, start + 30)), vectors[start:start + 30])
                acknowledged[0] = start + 29
        finally:
            done.set()
            for thread in threads:
                thread.join()
        assert not failures, failures[0]
        assert graph_misses[0] <= 0.01 * graph_searches[0] + 1, (graph_misses, graph_searches)
        assert col.wait_indexed() and col.stats()["index_count"] == 3000


def test_drop_while_points_wait(tmp_path):
    vectors = np.random.default_rng(5).standard_normal((5000, 8)).astype(np.float32)
    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.create_collection("c", 8)
        col.upsert(list(range(5000)), vectors)  # the indexer starts on them
        db.drop_collection("c")
        with pytest.raises(errors.CollectionNotFoundError):
            col.wait_indexed()
        assert not list((tmp_path / "db").glob("snapshots/*"))  # nothing saved after the drop
        again = db.create_collection("c", 8)
        again.upsert([1], vectors[:1])
        assert [h.id for h in again.search(vectors[0], k=5)] == [1]


def test_a_snapshot_holds_one_state_exactly_or_is_not_taken(tmp_path):
    """A read-only process loads a snapshot at its own state and replays the
    change log from the snapshot's stamp: the indexes saved must hold that
    state exactly, every change up to the stamp and none after."""
    from vecdb.index.snapshot import _HEADER, snapshot_path

    vectors = np.random.default_rng(7).standard_normal((300, 8)).astype(np.float32)

    def stamp(col):
        with open(snapshot_path(tmp_path / "db", col._config.key), "rb") as handle:
            return _HEADER.read_header(handle)[0]

    with vecdb.open(tmp_path / "db", index_backlog=BACKLOG) as db:
        col = db.create_collection("c", 8)
        col.upsert(list(range(200)), vectors[:200])
        col.wait_indexed()
        indexed_state = col.stats()["sequence"]
        with indexer_held(col):
            col.upsert(list(range(200, 300)), vectors[200:])  # waits in the backlog
            col._changes_since_snapshot = 1
            col._snapshot()
            assert stamp(col) == indexed_state  # the state before the waiting points: what the graph holds
            col.delete([0])  # a change the graph takes at once, after the oldest waiting point
            col._changes_since_snapshot = 1
            col._snapshot()
            assert stamp(col) == indexed_state  # not one state: no snapshot
        col.wait_indexed()
        col._snapshot()
        assert stamp(col) == col.stats()["sequence"]
        with indexer_held(col):
            col.upsert([1000, 1001], vectors[:2])
            col.delete([1000, 1001])  # deleted while they waited: the graph never held them
            col._changes_since_snapshot = 1
            col._snapshot()
            assert stamp(col) == col.stats()["sequence"]  # the state after the delete, exactly


@settings(max_examples=200, deadline=None)
@given(data=st.data(), queries=st.sampled_from([1, 2, 9, 20]), k=st.integers(1, 6))
def test_merging_two_answers_keeps_each_label_once_best_first(data, queries, k):
    """merge_results (query by query for a few queries, in array passes for
    more) against a plain per-query merge: labels from a small range
    (repeats within and across the two answers), equal distances (ties),
    -1 padding."""
    from vecdb.index.backlog import merge_results

    def answer(width):
        labels = np.array(data.draw(st.lists(st.lists(st.integers(-1, 6), min_size=width, max_size=width),
                                             min_size=queries, max_size=queries)), dtype=np.int64).reshape(queries, width)
        distances = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=queries * width,
                                                max_size=queries * width)), dtype=np.float32).reshape(queries, width)
        for row in labels:  # an answer holds each label once
            seen = set()
            for i, label in enumerate(row):
                if label in seen:
                    row[i] = -1
                seen.add(label)
        return labels, distances

    first, second = answer(data.draw(st.integers(0, 5))), answer(data.draw(st.integers(0, 5)))
    labels, distances = merge_results(first, second, k)
    for q in range(queries):
        best = {}
        for source in (first, second):
            for label, distance in zip(source[0][q].tolist(), source[1][q].tolist()):
                if label >= 0:
                    best[label] = min(distance, best.get(label, np.inf))
        want = sorted(best.items(), key=lambda pair: (pair[1], pair[0]))[:k]
        got = [(int(l), float(d)) for l, d in zip(labels[q], distances[q]) if l >= 0]
        assert got == want
        assert all(l == -1 for l in labels[q][len(got):])
