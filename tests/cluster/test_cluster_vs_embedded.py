"""A cluster answers as one embedded database does, on the same data: exact
(Flat) collections give the same hits (ids, scores, order, ties), scrolls the
same pages, counts and gets the same answers; HNSW collections reach the
same recall. The data is nasty on purpose: repeated vectors (ties across
shards), queries equal to stored points, filters that keep nothing, ids of
both kinds, points upserted again and deleted."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidPayloadError
from vecdb.cluster.shard import ORDER_FIELD

DIM = 8
FILTERS = [None, {"lang": "en"}, {"year": {"$gte": 2010}}, {"lang": "xx"},
           {"$or": [{"lang": {"$ne": "fr"}}, {"year": {"$lt": 2000}}]}, {"tags": {"$exists": False}}]


@pytest.fixture(scope="module")
def cluster(ray_cluster, tmp_path_factory):
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path_factory.mktemp("cluster") / "db", shards=3) as database:
        yield database


@pytest.fixture
def single(tmp_path):
    with vecdb.open(tmp_path / "single") as database:
        yield database


def nasty_points(rng, n, first=0):
    """Points where every fourth vector repeats an earlier one, ids alternate
    between integers and strings, payloads vary (and are sometimes absent)."""
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors[3::4] = vectors[0:1]  # one vector, many points: ties everywhere, on every shard
    vectors[5::7] = vectors[1:2]
    ids = [first + i if i % 2 else f"p{first + i}" for i in range(n)]
    payloads = [None if i % 5 == 0 else {"lang": ["en", "fr", "de"][i % 3], "year": 1990 + i % 40,
                                         **({"tags": ["a"]} if i % 3 == 0 else {})} for i in range(n)]
    return ids, vectors, payloads


def both(cluster, single, name, **settings):
    return cluster.create_collection(name, DIM, **settings), single.create_collection(name, DIM, **settings)


def as_tuples(hits):
    return [(hit.id, hit.score, hit.payload) for hit in hits]


def assert_same_reads(ours, theirs, queries, k_values=(1, 10, 1000)):
    for query_filter in FILTERS:
        for k in k_values:
            got = ours.search(queries, k, filter=query_filter)
            want = theirs.search(queries, k, filter=query_filter)
            assert [as_tuples(row) for row in got] == [as_tuples(row) for row in want], (query_filter, k)
        assert ours.count(query_filter) == theirs.count(query_filter)
        assert scroll_all(ours, query_filter) == scroll_all(theirs, query_filter)
    single_got = ours.search(queries[0], 10, with_payload=False, with_vector=True)
    single_want = theirs.search(queries[0], 10, with_payload=False, with_vector=True)
    assert [(h.id, h.score, h.payload) for h in single_got] == [(h.id, h.score, h.payload) for h in single_want]
    assert all(np.array_equal(a.vector, b.vector) for a, b in zip(single_got, single_want))


def scroll_all(collection, query_filter, limit=37):
    pages, cursor = [], None
    while True:
        page, cursor = collection.scroll(query_filter, limit, cursor)
        pages.append([(record.id, record.payload) for record in page])
        if cursor is None:
            return pages


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_flat_collections_give_exactly_the_embedded_answers(cluster, single, metric):
    rng = np.random.default_rng(7)
    ours, theirs = both(cluster, single, f"flat-{metric}", metric=metric, index=vecdb.Flat())
    try:
        ids, vectors, payloads = nasty_points(rng, 400)
        for start in range(0, 400, 150):  # several batches: insertion order spans them
            for collection in (ours, theirs):
                collection.upsert(ids[start:start + 150], vectors[start:start + 150], payloads[start:start + 150])
        queries = np.vstack([vectors[:6], rng.standard_normal((6, DIM)).astype(np.float32)])
        assert_same_reads(ours, theirs, queries)
        # Upserted again (keeps their place in insertion order), some deleted, new ones after.
        again = slice(10, 60)
        changed = vectors[again][::-1].copy()
        deleted = []
        for collection in (ours, theirs):
            collection.upsert(ids[again], changed, [{"lang": "en"}] * 50)
            deleted.append((collection.delete(ids[100:140] + ["missing"]), collection.delete(filter={"year": 1996})))
        assert deleted[0] == deleted[1] and deleted[0][0] == 40 and deleted[0][1] > 0
        extra_ids, extra_vectors, extra_payloads = nasty_points(rng, 90, first=1000)
        for collection in (ours, theirs):
            collection.upsert(extra_ids + ids[100:110], np.vstack([extra_vectors, vectors[100:110]]),
                              extra_payloads + payloads[100:110])
        assert_same_reads(ours, theirs, queries)
        wanted = ids[::7] + ["missing", 12345] + ids[:3]
        assert [(r.id, r.payload) for r in ours.get(wanted)] == [(r.id, r.payload) for r in theirs.get(wanted)]
        assert len(ours) == len(theirs)
    finally:
        cluster.drop_collection(f"flat-{metric}")


def test_hnsw_collections_reach_single_node_recall(cluster, single):
    rng = np.random.default_rng(11)
    data = rng.standard_normal((6000, 32)).astype(np.float32)
    queries = rng.standard_normal((200, 32)).astype(np.float32)
    exact = np.argsort(((queries[:, None, :] - data[None]) ** 2).sum(-1), axis=1)[:, :10]
    spec = vecdb.HNSW(M=8, ef_construction=40)
    ours = cluster.create_collection("graph", 32, "l2", index=spec)
    theirs = single.create_collection("graph", 32, "l2", index=spec)
    try:
        for collection in (ours, theirs):
            collection.upsert(list(range(len(data))), data)
            collection.wait_indexed()  # graphs against graphs (a backlog is searched exactly)

        def recall(collection):
            rows = collection.search(queries, 10, ef=16, plan=vecdb.plans.Graph(ef=16), with_payload=False)
            return np.mean([len({h.id for h in row} & set(truth.tolist())) / 10 for row, truth in zip(rows, exact)])

        assert recall(ours) >= recall(theirs) - 0.01
    finally:
        cluster.drop_collection("graph")


def test_the_order_field_is_the_clusters_own(cluster):
    collection = cluster.create_collection("reserved", DIM)
    try:
        with pytest.raises(InvalidPayloadError, match="keeps for itself"):
            collection.upsert(["a"], np.ones((1, DIM)), [{ORDER_FIELD: 1}])
        collection.upsert(["a"], np.ones((1, DIM)), [{"x": 1}])
        assert collection.get(["a"])[0].payload == {"x": 1}
        assert collection.search(np.ones(DIM), 1)[0].payload == {"x": 1}
        assert collection.scroll()[0][0].payload == {"x": 1}
    finally:
        cluster.drop_collection("reserved")


def test_tune_measures_the_recall_of_merged_results(cluster):
    rng = np.random.default_rng(12)
    data = rng.standard_normal((4000, 16)).astype(np.float32)
    queries = rng.standard_normal((60, 16)).astype(np.float32)
    collection = cluster.create_collection("tuned", 16, "l2", index=vecdb.HNSW(M=4, ef_construction=16))
    try:
        collection.upsert(list(range(len(data))), data)
        report = collection.tune(target_recall=0.9, k=10, queries=queries, seed=5)
        # The tuner's split of the given queries (tuning.tune_cluster): shuffled with the seed, halved.
        tuning = queries[np.random.default_rng(5).permutation(len(queries))][:30]
        exact = np.argsort(((tuning[:, None, :] - data[None]) ** 2).sum(-1), axis=1)[:, :10]
        found = collection.search(tuning, 11, plan=report.plan, with_payload=False)
        merged = np.mean([len({hit.id for hit in row[:10]} & set(truth.tolist())) / 10
                          for row, truth in zip(found, exact)])
        assert report.recall == pytest.approx(merged)
        assert [stats["default_plan"] for stats in collection.stats()["shards"]] == \
            [vecdb.plans.plan_to_dict(report.plan)] * cluster.shards
    finally:
        cluster.drop_collection("tuned")
