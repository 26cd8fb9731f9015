"""The searcher a collection owns (vecdb.query.searcher): exact answers on a
Flat index, the filter-mask cache and the planner-shape cache."""

from __future__ import annotations

import gc
import itertools
import threading
import weakref

import numpy as np
import pytest

import vecdb
import vecdb.query.searcher
from vecdb import _core
from vecdb.index.prefix_index import IndexSet
from vecdb.query.filters import parse_filter
from vecdb.query.searcher import FILTER_CACHE_SIZE, Searcher

DIM = 13  # odd: the kernels' tails


@pytest.fixture
def collection(tmp_path, rng):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", DIM, "l2", index=vecdb.Flat())
        col.upsert(list(range(300)), rng.standard_normal((300, DIM)).astype(np.float32),
                   [{"group": i % 3} for i in range(300)])
        yield col


def _searcher(col) -> Searcher:
    return col._searcher


def _oracle(col, query, k, allowed=None):
    records = col.get(list(range(300)), with_vector=True)
    if allowed is not None:
        records = [record for record in records if allowed(record)]
    distances = [float(np.linalg.norm(record.vector - query)) for record in records]
    order = np.argsort(distances, kind="stable")[:k]
    return [records[i].id for i in order], [distances[i] for i in order]


def test_search_matches_brute_force(collection, rng):
    queries = rng.standard_normal((4, DIM)).astype(np.float32)
    hits = _searcher(collection).search(queries, 7, ef=None, node=None, dims=None, plan=None, with_payload=True,
                                        with_vector=False)
    for query, row in zip(queries, hits):
        ids, distances = _oracle(collection, query, 7)
        assert [hit.id for hit in row] == ids
        np.testing.assert_allclose([hit.score for hit in row], distances, rtol=1e-4)
        assert all(hit.payload == {"group": hit.id % 3} and hit.vector is None for hit in row)


def test_filtered_search_matches_brute_force(collection, rng):
    query = rng.standard_normal((1, DIM)).astype(np.float32)
    [row] = _searcher(collection).search(query, 5, ef=None, node=parse_filter({"group": 2}), dims=None, plan=None,
                                         with_payload=False, with_vector=True)
    ids, _ = _oracle(collection, query[0], 5, lambda record: record.payload["group"] == 2)
    assert [hit.id for hit in row] == ids
    assert all(hit.payload is None and hit.vector.shape == (DIM,) for hit in row)


def test_matching_leaves_out_deleted_points_a_search_mask_may_allow(collection):
    searcher = _searcher(collection)
    node = parse_filter({"group": {"$ne": 1}})  # a deleted point's missing payload matches a negation
    collection.delete([0, 3])
    with collection._environment.read() as txn:
        config = collection._store.config(txn)
        stored = searcher.matching(txn, config, node)
        allowed, live, _, _ = searcher._allowed(txn, node, collection._indexes)
    assert np.flatnonzero(stored).tolist() == [i for i in range(300) if i % 3 != 1 and i not in (0, 3)]
    assert allowed[0] and allowed[3]  # a search skips deleted labels anyway
    assert live == 198  # ...and the planner weighs plans by what the index holds
    assert not stored.flags.writeable and not allowed.flags.writeable


def test_filter_masks_are_kept_until_a_write_and_bounded(collection, rng):
    searcher = _searcher(collection)
    query = rng.standard_normal(DIM).astype(np.float32)
    collection.search(query, 3, filter={"group": 1})
    [key] = searcher._filter_cache
    mask = searcher._filter_cache[key][0]
    collection.search(query, 3, filter={"group": 1})
    assert searcher._filter_cache[key][0] is mask  # evaluated once
    collection.upsert([1000], query, [{"group": 1}])
    assert collection.search(query, 1, filter={"group": 1})[0].id == 1000  # a write is a new key
    for group in range(FILTER_CACHE_SIZE + 3):
        collection.count({"group": group})
    assert len(searcher._filter_cache) == FILTER_CACHE_SIZE


def test_shape_is_described_again_only_when_indexes_or_config_change(collection):
    searcher = _searcher(collection)
    indexes, config = collection._indexes, collection._config
    shape = searcher.shape(indexes, config)
    assert searcher.shape(indexes, config) is shape
    assert shape.count == 300 and shape.dim == DIM and shape.main_kind == "exact"
    collection.upsert([1000], np.zeros(DIM, dtype=np.float32))
    changed = searcher.shape(collection._indexes, collection._config)
    assert changed is not shape and changed.count == 301


def test_the_shape_cache_does_not_keep_swapped_out_indexes_alive(collection):
    searcher = _searcher(collection)
    old = IndexSet(collection._indexes.main, {}, 0)
    searcher.shape(old, collection._config)
    gone = weakref.ref(old)
    del old
    gc.collect()
    assert gone() is None
    current = searcher.shape(collection._indexes, collection._config)
    assert current.count == 300


def test_the_writers_searches_answer_from_its_caches_as_lmdb_does(tmp_path, rng):
    """The writer handle takes hits' ids and payloads from its in-memory
    caches (no LMDB read once they are filled); a read-only handle of the
    same process reads them from LMDB. Both must give the same hits, for
    every kind of id, with and without payloads, through upserts that change
    payloads (or remove them) and deletes, filtered or not."""
    ids = [0, -1, 2**63 - 1, -2**63, "a", "é", "日本", "x" * 400, 7, "7"]
    with vecdb.open(tmp_path / "db") as db, vecdb.open(tmp_path / "db", read_only=True) as reader:
        for index in (vecdb.Flat(), vecdb.HNSW(M=8, ef_construction=64)):
            name = f"c{len(db.list_collections())}"
            col = db.create_collection(name, DIM, "cosine", index=index)
            col.upsert(ids, rng.standard_normal((len(ids), DIM)).astype(np.float32),
                       [{"n": i, "text": "t" * i} if i % 3 else None for i in range(len(ids))])
            for step in range(5):
                reader.refresh()
                other = reader.get_collection(name)
                queries = rng.standard_normal((5, DIM)).astype(np.float32)
                for plan, with_payload, where in itertools.product((None, vecdb.plans.Scan()), (False, True),
                                                                   (None, {"n": {"$gte": 2}})):
                    for _ in range(2):  # the first evaluates (and caches) the filter, the second uses its mask
                        cached = col.search(queries, k=len(ids) + 2, with_payload=with_payload, plan=plan,
                                            filter=where)
                        read = other.search(queries, k=len(ids) + 2, with_payload=with_payload, plan=plan,
                                            filter=where)
                        assert [[(h.id, h.score, h.payload, h.vector) for h in row] for row in cached] == \
                            [[(h.id, h.score, h.payload, h.vector) for h in row] for row in read]
                        assert all(type(h.id) is type(r.id) for row, rrow in zip(cached, read) for h, r in zip(row, rrow))
                changed = ids[step::3]
                col.upsert(changed, rng.standard_normal((len(changed), DIM)).astype(np.float32),
                           [{"step": step} if step % 2 else None for _ in changed])
                col.delete(ids=[ids[step]])
            searcher = col._searcher
            assert searcher._ids.memory_bytes > 0 and searcher._payloads.memory_bytes > 0  # the caches were used


def test_a_read_only_handle_behind_the_writer_reads_ids_from_lmdb(tmp_path, rng):
    """A read-only handle whose index has not caught up (no refresh since
    the writer deleted a point) must not return the deleted point from its
    id cache: its index reflects an older state than its transactions read."""
    vectors = rng.standard_normal((50, DIM)).astype(np.float32)
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", DIM, "l2", index=vecdb.Flat())
        col.upsert(list(range(50)), vectors)
        with vecdb.open(tmp_path / "db", read_only=True) as reader:
            other = reader.get_collection("c")
            assert other.search(vectors[3], k=1, with_payload=False)[0].id == 3  # fills the id cache
            col.delete(ids=[3])
            for with_payload in (False, True):
                assert 3 not in [hit.id for hit in other.search(vectors[3], k=5, with_payload=with_payload)]
            reader.refresh()
            assert 3 not in [hit.id for hit in other.search(vectors[3], k=5, with_payload=False)]


def test_the_payload_cache_keeps_its_budget_and_refuses_stale_adds():
    """The native payload cache: memory follows what it holds (not the
    largest label met), nothing past the budget, and an add made with a
    generation a forget has passed is dropped (it may hold payloads a write
    just replaced)."""
    cache = _core.PayloadCache(1000)
    seen = cache.generation
    cache.add(np.array([10**12, 3], dtype=np.int64), [b"\x81\xa1a\x01", b"\x80"], seen)
    assert cache.missing(np.array([[3, 10**12, 5, -1]])) == [5]
    assert cache.memory_bytes < 10_000
    cache.add(np.array([7], dtype=np.int64), [b"x" * 2000], seen)  # over the budget: not kept
    assert cache.missing(np.array([[7]])) == [7]
    cache.forget(np.array([3], dtype=np.int64))
    assert cache.missing(np.array([[3]])) == [3]
    cache.add(np.array([3, 4], dtype=np.int64), [b"\x80", b"\x80"], seen)  # read before the forget: stale
    assert cache.missing(np.array([[3, 4]])) == [3, 4]
    cache.add(np.array([3], dtype=np.int64), [b"\x80"], cache.generation)
    assert cache.missing(np.array([[3]])) == []


def _wait_for_id_warming() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("vecdb-ids-"):
            thread.join()


@pytest.mark.parametrize("read_only", [False, True])
def test_opening_fills_the_id_cache_so_searches_read_no_ids(tmp_path, rng, monkeypatch, read_only):
    """From the open on, a background thread reads every stored point's id
    into the id cache (in chunks smaller than the collection, here), so a
    search for ids only reads nothing from LMDB, from its first hit on;
    deleted points stay out of the hits."""
    monkeypatch.setattr(vecdb.query.searcher, "ID_WARM_CHUNK", 64)
    ids = [f"p{i}" for i in range(500)]
    vectors = rng.standard_normal((500, DIM)).astype(np.float32)
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", DIM, "l2", index=vecdb.HNSW(M=8, ef_construction=64))
        col.upsert(ids, vectors)
        col.delete(ids=ids[:100:7])
    with vecdb.open(tmp_path / "db", read_only=read_only) as db:
        col = db.get_collection("c")
        _wait_for_id_warming()
        assert _searcher(col)._ids.missing(np.arange(500)) == list(range(0, 100, 7))  # deleted: never stored again

        def no_reads(*args, **kwargs):
            raise AssertionError("a search read records from LMDB")

        monkeypatch.setattr(col._store, "records_of", no_reads)
        hits = col.search(vectors, k=5, with_payload=False, plan=vecdb.plans.Scan())  # exact: the oracle
        exact, _ = vecdb.knn(np.delete(vectors, range(0, 100, 7), axis=0), vectors, 1, metric="l2")
        kept = [i for i in range(500) if i >= 100 or i % 7]
        assert [row[0].id for row in hits] == [ids[kept[j]] for j in exact[:, 0]]


@pytest.mark.parametrize("index_backlog", [32_768, 0])
def test_a_filtered_search_inside_an_upserts_commit_leaves_no_count_behind(tmp_path, monkeypatch, index_backlog):
    """A filtered search between an upsert's commit and its points reaching
    the indexes read the filter's mask at the new state but counted the
    indexes' matches before the points came (0), and cached that count for
    the state: every later search with the filter skipped the index and
    found nothing, until the next write (found by a probe from outside)."""
    committed, release = threading.Event(), threading.Event()
    written = vecdb.query.searcher.Searcher.written

    def held_written(self, labels, id_keys):
        written(self, labels, id_keys)
        committed.set()
        release.wait()

    with vecdb.open(tmp_path / "db", index_backlog=index_backlog) as db:
        col = db.create_collection("c", DIM, index=vecdb.HNSW(M=8, ef_construction=40))
        monkeypatch.setattr(vecdb.query.searcher.Searcher, "written", held_written)
        writer = threading.Thread(target=col.upsert, args=([1, 2], np.ones((2, DIM)), [{"g": "a"}, {"g": "a"}]))
        writer.start()
        committed.wait()
        # Overlaps the upsert: either answer. Its second attempt holds writes off, so waits for the write.
        threading.Timer(0.5, release.set).start()
        col.search(np.ones(DIM), k=10, filter={"g": "a"})
        writer.join()
        assert [hit.id for hit in col.search(np.ones(DIM), k=10, filter={"g": "a"})] in ([1, 2], [2, 1])
        col.wait_indexed()
        assert sorted(hit.id for hit in col.search(np.ones(DIM), k=10, filter={"g": "a"})) == [1, 2]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_search_building_many_hits_leaves_the_garbage_collector_as_it_found_it(collection, rng, enabled):
    """The hits of an ids-only search are built with automatic collection
    held off: it must be back as it was afterwards (on, or off if the
    caller had turned it off), and collect cycles as before."""
    queries = rng.standard_normal((200, DIM)).astype(np.float32)  # 2,000 hits: several collections' worth
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        rows = collection.search(queries, 10, with_payload=False)
        assert gc.isenabled() is enabled
        assert sum(len(row) for row in rows) == 2_000
        # Failing halfway (a label the id cache lacks) restores it too.
        labels = np.array([[0, 1, 10**9]], dtype=np.int64)
        with pytest.raises(Exception, match="not in the id cache"):
            _core.hits(vecdb.Hit, _searcher(collection)._ids, None, {}, None, labels,
                       np.zeros(labels.shape, dtype=np.float32), True)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()

    class Node:
        pass

    cycle = Node()
    cycle.self = cycle
    watch = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert watch() is None


def test_no_thread_sees_the_collector_off_while_others_build_hits(collection, rng):
    """Hits are built with automatic collection held off only while no other
    thread can run (the loop holds the GIL and runs no Python code): threads
    searching batches beside one watching the switch never show it off."""
    queries = rng.standard_normal((300, DIM)).astype(np.float32)
    stop = threading.Event()
    seen_off, looks, failures = [], [0], []

    def search() -> None:
        try:
            while not stop.is_set():
                assert sum(len(row) for row in collection.search(queries, 10, with_payload=False)) == 3_000
        except Exception as exc:  # reported below
            failures.append(exc)

    def watch() -> None:
        while not stop.is_set():
            looks[0] += 1
            if not gc.isenabled():
                seen_off.append(looks[0])

    threads = [threading.Thread(target=search) for _ in range(2)] + [threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    stop.wait(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures and looks[0] > 100 and not seen_off
