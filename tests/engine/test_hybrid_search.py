"""Hybrid search: a vector branch and a text branch, each fetching its own
candidates under the same filter, fused by RRF or DBSF; checked against
the fusion computed by hand from the two searches run separately, on the
real texts and embeddings of tests/data."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidArgumentError

DATA = Path(__file__).resolve().parents[1] / "data"


def _lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    vectors = np.load(DATA / "minilm_base_3000.npy").astype(np.float32)
    texts = _lines(DATA / "minilm_base_3000_texts.txt")
    queries = np.load(DATA / "minilm_queries_100.npy").astype(np.float32)
    query_texts = _lines(DATA / "minilm_queries_100_texts.txt")
    with vecdb.open(tmp_path_factory.mktemp("hybrid") / "db") as db:
        collection = db.create_collection("npm", dim=384, metric="cosine", index=vecdb.Flat())
        collection.upsert(list(range(len(texts))), vectors,
                          [{"body": text, "half": i % 2} for i, text in enumerate(texts)])
        collection.create_text_index("body")
        yield collection, queries, query_texts


def _rrf(branches, k, rrf_k=60, weights=(1.0, 1.0)):
    totals = {}
    for hits, weight in zip(branches, weights):
        for rank, hit in enumerate(hits, 1):
            totals[hit.id] = totals.get(hit.id, 0.0) + weight / (rrf_k + rank)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:k]


def _dbsf(branches, k, weights=(1.0, 1.0)):
    totals = {}
    for hits, weight in zip(branches, weights):
        scores = np.array([hit.score for hit in hits])
        mean, spread = scores.mean(), scores.std()
        for hit in hits:
            normal = 0.5 if spread == 0 else min(max((hit.score - (mean - 3 * spread)) / (6 * spread), 0.0), 1.0)
            totals[hit.id] = totals.get(hit.id, 0.0) + weight * normal
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:k]


@pytest.mark.parametrize("fusion, reference", [
    (vecdb.RRF(), lambda branches, k: _rrf(branches, k)),
    (vecdb.RRF(k=10, alpha=0.7, candidates=30), lambda branches, k: _rrf(branches, k, 10, (0.7, 0.3))),
    (vecdb.DBSF(), lambda branches, k: _dbsf(branches, k)),
    (vecdb.DBSF(alpha=0.25, candidates=40), lambda branches, k: _dbsf(branches, k, (0.25, 0.75))),
])
@pytest.mark.parametrize("filtered", [False, True])
def test_fusion_equals_the_two_searches_fused_by_hand(real, fusion, reference, filtered):
    collection, queries, query_texts = real
    k = 10
    candidates = fusion.candidates or vecdb.fusion.default_candidates(k)
    where = {"half": 1} if filtered else None
    for query, text in zip(queries[:40], query_texts[:40]):
        dense = collection.search(query, k=candidates, filter=where, with_payload=False)
        sparse = collection.search(text=text, k=candidates, filter=where, with_payload=False)
        hits = collection.search(query, k=k, text=text, fusion=fusion, filter=where)
        expected = reference([dense, sparse], k)
        assert [hit.id for hit in hits] == [point for point, _ in expected]
        np.testing.assert_allclose([hit.score for hit in hits], [score for _, score in expected], rtol=1e-6)
        assert all(hit.payload["half"] == 1 for hit in hits) or not filtered


def test_fusion_given_as_a_dict_and_hits_carry_vectors(real):
    collection, queries, query_texts = real
    as_object = collection.search(queries[0], text=query_texts[0], fusion=vecdb.RRF(k=20), k=5)
    as_dict = collection.search(queries[0], text=query_texts[0], fusion={"kind": "rrf", "k": 20}, k=5,
                                with_vector=True)
    assert [hit.id for hit in as_object] == [hit.id for hit in as_dict]
    assert all(hit.vector is not None and hit.vector.shape == (384,) for hit in as_dict)


@pytest.mark.parametrize("arguments, message", [
    ({"text": "json", "fusion": vecdb.RRF()}, "two or more"),
    ({"query": np.ones((2, 384)), "text": "json", "fusion": vecdb.RRF()}, "one query vector"),
    ({"query": np.ones(384), "fusion": vecdb.RRF()}, "two or more"),
    ({"query": np.ones(384), "text": "json", "fusion": {"kind": "max"}}, "fusion must be"),
    ({"query": np.ones(384), "text": "json", "fusion": {"kind": "rrf", "depth": 3}}, "rrf"),
    ({"query": np.ones(3), "text": "json", "fusion": vecdb.RRF()}, "dimension"),
    ({"query": np.full(384, np.nan), "text": "json", "fusion": vecdb.RRF()}, "NaN"),
])
def test_bad_hybrid_searches_are_refused(real, arguments, message):
    collection, _, _ = real
    with pytest.raises(vecdb.errors.VecdbError, match=message):
        collection.search(**arguments)


@pytest.mark.parametrize("make", [lambda: vecdb.RRF(k=-1), lambda: vecdb.RRF(alpha=1.5), lambda: vecdb.DBSF(alpha=True),
                                  lambda: vecdb.DBSF(candidates=0), lambda: vecdb.RRF(k=2.5)])
def test_fusion_settings_are_checked(make):
    with pytest.raises(InvalidArgumentError):
        make()


def test_a_hybrid_search_racing_writes_sees_each_write_whole(tmp_path):
    """Every upsert moves all 40 points to one generation: the same new
    vector and text. A hybrid search must fuse branches of one state: all
    40 hits of one generation."""
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("race", dim=4, index=vecdb.HNSW(M=8))
        ids = list(range(40))
        collection.upsert(ids, np.ones((40, 4)), [{"body": "shared gen0", "gen": 0} for _ in ids])
        collection.create_text_index("body")
        stop = threading.Event()
        problems = []

        def search():
            query = np.array([1.0, 0.0, 0.0, 0.0])
            while not stop.is_set():
                hits = collection.search(query, text="shared", k=100, fusion=vecdb.RRF(candidates=100))
                generations = {hit.payload["gen"] for hit in hits}
                if len(hits) != 40 or len(generations) != 1:
                    problems.append((len(hits), generations))

        threads = [threading.Thread(target=search) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            rng = np.random.default_rng(0)
            for generation in range(1, 60):
                vector = rng.random(4) + 0.01
                collection.upsert(ids, np.tile(vector, (40, 1)),
                                  [{"body": f"shared gen{generation}", "gen": generation} for _ in ids])
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert problems == []


def test_explain_shows_every_branch_and_the_fusion(real):
    collection, queries, query_texts = real
    explanation = collection.explain(queries[0], text=query_texts[0], fusion=vecdb.RRF(candidates=30), execute=True)
    descriptions = [stage.description for stage in explanation.stages]
    assert descriptions[0].startswith("vector branch: ") and "top 30" in descriptions[0]
    assert any(text.startswith("text branch: BM25 on 'body'") for text in descriptions)
    assert descriptions[-1] == "fusion: RRF of vector + text -> top 10"
    assert explanation.executed and all(stage.actual_us is not None for stage in explanation.stages)
    assert explanation.plan == collection.explain(queries[0], k=30).plan  # the planner's choice for the branch
    text_only = collection.explain(text=query_texts[0], filter={"half": 1})
    assert text_only.plan is None and text_only.estimates["allowed"] == 1500
    assert vecdb.Explanation.from_dict(text_only.to_dict()) == text_only
    with pytest.raises(InvalidArgumentError, match="query vector, text= or sparse="):
        collection.explain()
    with pytest.raises(InvalidArgumentError, match="query vector, text= or sparse="):
        collection.search()


def _hybrid_ids(collection, queries, query_texts, rows):
    return [[hit.id for hit in collection.search(queries[row], 10, text=query_texts[row], fusion=vecdb.RRF(),
                                                 with_payload=False)] for row in rows]


def test_threads_searching_at_once_share_the_background_thread(real):
    """The text branch runs on one native background thread, or on the
    caller when that thread is busy: many threads at once get the answers
    one thread gets."""
    collection, queries, query_texts = real
    rows = list(range(40))
    expected = _hybrid_ids(collection, queries, query_texts, rows)
    answers, errors = {}, []

    def search(worker):
        try:
            for _ in range(3):
                answers[worker] = _hybrid_ids(collection, queries, query_texts, rows)
                assert answers[worker] == expected
        except BaseException as exc:  # reported below, from the main thread
            errors.append(exc)

    threads = [threading.Thread(target=search, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(answers) == 6

