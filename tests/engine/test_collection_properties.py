"""Stateful property test: random sequences of upsert / delete / search /
reopen against a brute-force model of the collection in plain Python.

The data is nasty on purpose: vectors often repeat (a few fixed rows, and
batches of copies), queries often equal a stored vector, filters may keep
nothing, so ties and duplicates are the common case, not the rare one."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import vecdb

DIM = 4
ID_POOL = [f"id{i}" for i in range(30)] + list(range(30))
LANGS = ["en", "fr", "de"]
# Rows that repeat: copies of one vector are distinct points with equal scores.
REPEATED = [[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]

vectors_strategy = st.one_of(
    st.sampled_from(REPEATED),
    st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=DIM, max_size=DIM))
payload_strategy = st.one_of(st.none(), st.fixed_dictionaries(
    {"lang": st.sampled_from(LANGS), "year": st.integers(1990, 2030)},
    optional={"tags": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3)}))
filter_strategy = st.one_of(
    st.none(),
    st.builds(lambda lang: {"lang": lang}, st.sampled_from(LANGS)),
    st.builds(lambda year: {"year": {"$gte": year}}, st.integers(1990, 2030)),
    st.builds(lambda lang, year: {"$or": [{"lang": {"$ne": lang}}, {"year": {"$lt": year}}]},
              st.sampled_from(LANGS), st.integers(1990, 2030)),
    st.builds(lambda tag: {"tags": {"$in": [tag]}}, st.sampled_from(["a", "b", "c"])),
    st.just({"tags": {"$exists": False}}),
)


class CollectionMachine(RuleBasedStateMachine):
    """The model is a dict id -> (vector, payload); every search must return
    exactly the model's k nearest among the points the filter allows."""

    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="vecdb-prop-")
        self.model = {}

    @initialize(index=st.sampled_from(["flat", "hnsw"]), indexed=st.booleans())
    def open_collection(self, index, indexed):
        self.index = vecdb.Flat() if index == "flat" else vecdb.HNSW(M=8, ef_construction=64, ef_search=200)
        self.db = vecdb.open(self.folder)
        self.col = self.db.create_collection("c", dim=DIM, metric="l2", index=self.index)
        if indexed:
            self.col.create_payload_index("lang", "keyword")
            self.col.create_payload_index("year", "integer")
            self.col.create_payload_index("tags", "keyword")

    @rule(data=st.data(), count=st.integers(1, 6))
    def upsert(self, data, count):
        ids = data.draw(st.lists(st.sampled_from(ID_POOL), min_size=count, max_size=count, unique=True))
        vectors = [data.draw(vectors_strategy) for _ in ids]
        payloads = [data.draw(payload_strategy) for _ in ids]
        self.col.upsert(ids=ids, vectors=np.array(vectors, dtype=np.float32), payloads=payloads)
        for user_id, vector, payload in zip(ids, vectors, payloads):
            self.model[user_id] = (np.array(vector, dtype=np.float32), payload or {})

    @rule(data=st.data(), count=st.integers(2, 40), vector=st.sampled_from(REPEATED))
    def upsert_copies(self, data, count, vector):
        ids = data.draw(st.lists(st.sampled_from(ID_POOL), min_size=count, max_size=count, unique=True))
        payloads = [data.draw(payload_strategy) for _ in ids]
        self.col.upsert(ids=ids, vectors=np.array([vector] * count, dtype=np.float32), payloads=payloads)
        for user_id, payload in zip(ids, payloads):
            self.model[user_id] = (np.array(vector, dtype=np.float32), payload or {})

    @rule(ids=st.lists(st.sampled_from(ID_POOL), max_size=4))
    def delete_ids(self, ids):
        expected = len({i for i in ids if i in self.model})
        assert self.col.delete(ids=ids) == expected
        for user_id in ids:
            self.model.pop(user_id, None)

    @rule(spec=filter_strategy.filter(lambda f: f is not None))
    def delete_filter(self, spec):
        node = vecdb.query.filters.parse_filter(spec)
        doomed = [i for i, (_, payload) in self.model.items() if node.matches(payload)]
        assert self.col.delete(filter=spec) == len(doomed)
        for user_id in doomed:
            del self.model[user_id]

    @rule(query=vectors_strategy, k=st.integers(1, 12), spec=filter_strategy)
    def search(self, query, k, spec):
        self._check_search(query, k, spec, plan=None)

    @precondition(lambda self: isinstance(self.index, vecdb.HNSW))
    @rule(query=vectors_strategy, k=st.integers(1, 12), spec=filter_strategy)
    def search_through_the_graph(self, query, k, spec):
        # Through the graph whatever the planner prefers, with ef covering
        # every id: copies of one vector must not hide any point, and nodes
        # pruned links cut off must still be reached.
        self._check_search(query, k, spec, plan=vecdb.plans.Graph(ef=len(ID_POOL)))

    def _check_search(self, query, k, spec, plan):
        query = np.array(query, dtype=np.float32)
        node = None if spec is None else vecdb.query.filters.parse_filter(spec)
        candidates = [(float(np.sum((vector - query) ** 2)), user_id)
                      for user_id, (vector, payload) in self.model.items() if node is None or node.matches(payload)]
        expected = sorted(candidates, key=lambda pair: pair[0])[:k]
        hits = self.col.search(query, k=k, filter=spec, plan=plan)
        assert len(hits) == len(expected)
        assert len({hit.id for hit in hits}) == len(hits)
        # Compare distances (ties may order ids either way), then ids where distances differ.
        np.testing.assert_allclose([h.score ** 2 for h in hits], [d for d, _ in expected], rtol=1e-4, atol=1e-3)
        for hit in hits:
            assert hit.payload == self.model[hit.id][1]

    @rule()
    def reopen(self):
        self.db.close()
        self.db = vecdb.open(self.folder)
        self.col = self.db.get_collection("c")

    @precondition(lambda self: hasattr(self, "col"))
    @invariant()
    def counts_agree(self):
        assert self.col.count() == len(self.model)
        assert self.col.stats()["index_count"] == len(self.model)

    def teardown(self):
        if hasattr(self, "db"):
            self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)


CollectionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
TestCollectionAgainstModel = CollectionMachine.TestCase
