"""Stateful property test: random sequences of upserts, deletes, searches,
counts, scrolls and gets on a 3-shard cluster collection and, as the model,
an embedded one given the same calls; every answer must be the same (exact
collections, so the same hits in the same order, ties included). The data
is that of tests/engine/test_collection_properties.py: repeated vectors,
queries equal to stored points, filters that keep nothing."""

from __future__ import annotations

import itertools
import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

import vecdb
from tests.engine.test_collection_properties import DIM, ID_POOL, REPEATED, filter_strategy, payload_strategy, \
    vectors_strategy

_names = itertools.count()


@pytest.fixture(scope="module")
def cluster(ray_cluster, tmp_path_factory):
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path_factory.mktemp("cluster") / "db", shards=3) as database:
        yield database


def hits_of(hits):
    return [(hit.id, hit.score, hit.payload) for hit in hits]


def records_of(records):
    return [(record.id, record.payload) for record in records]


@pytest.mark.properties  # make test-slow runs it again with a fresh seed
def test_a_cluster_answers_as_the_embedded_database(cluster):
    class ClusterMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.folder = tempfile.mkdtemp(prefix="vecdb-cluster-model-")
            self.model_db = vecdb.open(self.folder)

        @initialize(metric=st.sampled_from(["l2", "cosine"]), indexed=st.booleans())
        def create(self, metric, indexed):
            self.name = f"c{next(_names)}"
            self.ours = cluster.create_collection(self.name, DIM, metric, index=vecdb.Flat())
            self.model = self.model_db.create_collection(self.name, DIM, metric, index=vecdb.Flat())
            if indexed:
                for field, kind in (("lang", "keyword"), ("year", "integer")):
                    self.ours.create_payload_index(field, kind)
                    self.model.create_payload_index(field, kind)

        def both(self, method, *args, **kwargs):
            return getattr(self.ours, method)(*args, **kwargs), getattr(self.model, method)(*args, **kwargs)

        @rule(data=st.data(), count=st.integers(1, 8), copies=st.booleans())
        def upsert(self, data, count, copies):
            ids = data.draw(st.lists(st.sampled_from(ID_POOL), min_size=count, max_size=count, unique=True))
            if copies:
                vectors = [data.draw(st.sampled_from(REPEATED))] * count
            else:
                vectors = [data.draw(vectors_strategy) for _ in ids]
            payloads = [data.draw(payload_strategy) for _ in ids]
            self.both("upsert", ids, np.array(vectors, dtype=np.float32), payloads)

        @rule(ids=st.lists(st.sampled_from(ID_POOL), max_size=5))
        def delete_ids(self, ids):
            ours, theirs = self.both("delete", ids)
            assert ours == theirs

        @rule(spec=filter_strategy.filter(lambda f: f is not None))
        def delete_filter(self, spec):
            ours, theirs = self.both("delete", filter=spec)
            assert ours == theirs

        @rule(query=vectors_strategy, k=st.integers(1, 12), spec=filter_strategy, stored=st.booleans())
        def search(self, query, k, spec, stored):
            if stored and len(self.model):  # a stored vector: ties with its copies
                query = self.model.scroll(limit=1)[0][0].id
                query = self.model.get([query], with_vector=True)[0].vector
            ours, theirs = self.both("search", np.array(query, dtype=np.float32), k, filter=spec)
            assert hits_of(ours) == hits_of(theirs)

        @rule(spec=filter_strategy, limit=st.integers(1, 7))
        def scroll(self, spec, limit):
            cursors = [None, None]
            while True:
                pages = [side.scroll(spec, limit, cursor) for side, cursor in zip((self.ours, self.model), cursors)]
                assert records_of(pages[0][0]) == records_of(pages[1][0])
                assert (pages[0][1] is None) == (pages[1][1] is None)
                if pages[1][1] is None:
                    break
                cursors = [pages[0][1], pages[1][1]]

        @rule(ids=st.lists(st.sampled_from(ID_POOL), max_size=6))
        def get(self, ids):
            ours, theirs = self.both("get", ids)
            assert records_of(ours) == records_of(theirs)

        @precondition(lambda self: hasattr(self, "ours"))
        @invariant()
        def counts_agree(self):
            for spec in (None, {"lang": "en"}):
                assert self.ours.count(spec) == self.model.count(spec)

        def teardown(self):
            if hasattr(self, "ours"):
                cluster.drop_collection(self.name)
            self.model_db.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    run_state_machine_as_test(ClusterMachine, settings=settings(max_examples=12, stateful_step_count=15,
                                                                deadline=None))
