"""Bad input to a cluster is refused in the driver, before any shard is
called, with the error the embedded database raises for the same call."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb.errors import VecdbError

DIM = 4
NAN = np.full(DIM, np.nan)

# (what, call): each call is made on a collection with an integer index on
# "year" and a text index on "title".
BAD_CALLS = [
    ("wrong dimension", lambda c: c.upsert([1], np.ones((1, DIM + 1)))),
    ("NaN vector", lambda c: c.upsert([1], NAN[None])),
    ("repeated id", lambda c: c.upsert([1, 1], np.ones((2, DIM)))),
    ("ids and vectors of different lengths", lambda c: c.upsert([1, 2, 3], np.ones((2, DIM)))),
    ("float id", lambda c: c.upsert([1.5], np.ones((1, DIM)))),
    ("payload not a dict", lambda c: c.upsert([1], np.ones((1, DIM)), ["text"])),
    ("payloads of another length", lambda c: c.upsert([1], np.ones((1, DIM)), [{}, {}])),
    ("value an index cannot hold", lambda c: c.upsert([1, 2], np.ones((2, DIM)), [{"year": 1}, {"year": "x"}])),
    ("text vectors", lambda c: c.upsert([1], [["a"] * DIM])),
    ("k of 0", lambda c: c.search(np.ones(DIM), 0)),
    ("NaN query", lambda c: c.search(NAN)),
    ("query of another dimension", lambda c: c.search(np.ones(DIM + 2))),
    ("unknown filter operator", lambda c: c.search(np.ones(DIM), filter={"year": {"$near": 3}})),
    ("bad plan", lambda c: c.search(np.ones(DIM), plan={"kind": "teleport"})),
    ("ef of -1", lambda c: c.search(np.ones(DIM), ef=-1)),
    ("with_payload not a bool", lambda c: c.search(np.ones(DIM), with_payload="yes")),
    ("explain without a query", lambda c: c.explain(np.ones((0, DIM)))),
    ("delete without a condition", lambda c: c.delete()),
    ("delete with an empty filter", lambda c: c.delete(filter={})),
    ("get of a bad id", lambda c: c.get([None])),
    ("count with a bad filter", lambda c: c.count({"$and": 3})),
    ("scroll with a negative cursor", lambda c: c.scroll(cursor=-1)),
    ("scroll with limit 0", lambda c: c.scroll(limit=0)),
    ("payload index of an unknown kind", lambda c: c.create_payload_index("lang", "colour")),
    ("payload index on an empty field", lambda c: c.create_payload_index("", "keyword")),
    ("tune to recall 2", lambda c: c.tune(target_recall=2.0)),
    ("tune with NaN queries", lambda c: c.tune(queries=NAN[None])),
    ("text that is not text", lambda c: c.upsert([1, 2], np.ones((2, DIM)), [{"title": "ok"}, {"title": 3}])),
    ("empty text", lambda c: c.search(text=" ")),
    ("text that is a number", lambda c: c.search(text=3)),
    ("text_field without text", lambda c: c.search(text_field="title")),
    ("ef with text", lambda c: c.search(text="ok", ef=8)),
    ("k of 0 with text", lambda c: c.search(text="ok", k=0)),
    ("bad filter with text", lambda c: c.search(text="ok", filter={"year": {"$near": 3}})),
    ("with_vector not a bool with text", lambda c: c.search(text="ok", with_vector=1)),
    ("text index in an unknown language", lambda c: c.create_text_index("title", language="klingon")),
    ("text index with b of 2", lambda c: c.create_text_index("title", b=2)),
    ("text index on an empty field", lambda c: c.create_text_index("")),
]


class CallRecorder:
    """Stands in for a cluster's shards and records every request sent."""

    def __init__(self, shards, calls):
        self._shards, self._calls = shards, calls

    def call(self, requests, **options):
        self._calls.extend(method for method, _, _ in requests.values())
        return self._shards.call(requests, **options)


@pytest.fixture(scope="module")
def databases(ray_cluster, tmp_path_factory):
    from vecdb.cluster import open as open_cluster

    folder = tmp_path_factory.mktemp("bad-input")
    with open_cluster(folder / "cluster", shards=2) as cluster, vecdb.open(folder / "single") as single:
        for database in (cluster, single):
            collection = database.create_collection("c", DIM, "l2")
            collection.upsert([1, 2], np.eye(DIM)[:2], [{"year": 2000}, None])
            collection.create_payload_index("year", "integer")
            collection.create_text_index("title")
        yield cluster, single


@pytest.mark.parametrize("what, call", BAD_CALLS, ids=[what for what, _ in BAD_CALLS])
def test_bad_input_never_reaches_a_shard(databases, what, call):
    cluster, single = databases
    with pytest.raises(VecdbError) as embedded:
        call(single.get_collection("c"))
    collection = cluster.get_collection("c")
    calls, shards = [], cluster._shard_set
    cluster._shard_set = CallRecorder(shards, calls)
    try:
        with pytest.raises(type(embedded.value)) as raised:
            call(collection)
    finally:
        cluster._shard_set = shards
    assert type(raised.value) is type(embedded.value) and str(raised.value) == str(embedded.value)
    assert calls == [], f"{what}: shards were called ({calls}) before the input was refused"
    assert collection.count() == 2


@pytest.mark.parametrize("call", [lambda c: c.search(text="ok", text_field="year"),
                                  lambda c: c.create_text_index("year")])
def test_what_only_the_shards_know_is_refused_as_embedded(databases, call):
    """Whether a field has a text index is asked of the first shard when the
    handle does not know it (another handle may have made it); whether the
    stored values are text, of every shard."""
    cluster, single = databases
    with pytest.raises(VecdbError) as embedded:
        call(single.get_collection("c"))
    collection = cluster.get_collection("c")
    with pytest.raises(type(embedded.value)) as raised:
        call(collection)
    assert str(raised.value) == str(embedded.value)
    assert collection.text_indexes == {"title": single.get_collection("c").text_indexes["title"]}


@pytest.mark.parametrize("settings", [dict(dim=0), dict(dim=4, metric="manhattan"), dict(dim=4, mrl_dims=[8]),
                                      dict(dim=4, index="hnsw"), dict(dim=4, rotate="pca")])
def test_bad_collection_settings_never_reach_a_shard(databases, settings):
    cluster, single = databases
    with pytest.raises(VecdbError) as embedded:
        single.create_collection("bad", **settings)
    calls, shards = [], cluster._shard_set
    cluster._shard_set = CallRecorder(shards, calls)
    try:
        with pytest.raises(type(embedded.value)) as raised:
            cluster.create_collection("bad", **settings)
        with pytest.raises(type(embedded.value)):
            cluster.create_collection("bad name!", DIM)
    finally:
        cluster._shard_set = shards
    assert str(raised.value) == str(embedded.value) and calls == []
