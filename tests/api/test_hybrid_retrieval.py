"""Sparse vectors, hybrid search, group_by, recommend and payload updates
through the API, on every backend (the ``db`` fixture: embedded, remote,
remote through a reader worker, a 2-shard cluster): sparse searches give
the brute-force dot product's top k; a fusion equals the separate searches
fused by hand; groups, recommendations and payload changes equal brute
force; bad input is refused with the embedded error, and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import vecdb
from vecdb.errors import InvalidArgumentError, InvalidDTypeError, InvalidPayloadError, VecdbError
from vecdb.fusion import default_candidates
from vecdb.query.recommend import best_scores
from tests.support.text_reference import assert_top_k

DATA = Path(__file__).resolve().parents[1] / "data"
TEXTS = (DATA / "minilm_base_3000_texts.txt").read_text(encoding="utf-8").split("\n")[:300]
QUERIES = (DATA / "minilm_queries_100_texts.txt").read_text(encoding="utf-8").split("\n")[:12]
DIMENSIONS = 40  # of the sparse vectors
N = len(TEXTS)


def _sparse_rows(rng, count):
    """Random sparse vectors, a few nonzeros each (some points none), with
    small integer values so equal dot products tie exactly."""
    rows = []
    for point in range(count):
        indices = np.sort(rng.choice(DIMENSIONS, size=int(rng.integers(0, 5)), replace=False))
        rows.append(None if point % 11 == 0 else (indices.tolist(), rng.integers(1, 4, len(indices)).astype(float).tolist()))
    return rows


@pytest.fixture(params=["cosine", "l2"])
def hybrid(db, request):
    """A collection of 300 points with vectors, texts (indexed), a sparse
    vector "splade" (every eleventh point none) and a doc and tag each."""
    collection = db.create_collection("hybrid", dim=6, metric=request.param, index=vecdb.Flat(), sparse=["splade"])
    rng = np.random.default_rng(11)
    vectors = rng.integers(-3, 4, size=(N, 6)).astype(np.float32) + 0.25
    payloads = [{"body": text, "doc": i // 4, "tag": ["a", "b", "c"][i % 3]} for i, text in enumerate(TEXTS)]
    rows = _sparse_rows(rng, N)
    collection.upsert(list(range(150)), vectors[:150], payloads[:150], sparse={"splade": rows[:150]})
    collection.create_text_index("body")
    collection.upsert(list(range(150, N)), vectors[150:], payloads[150:], sparse={"splade": rows[150:]})
    return collection, vectors, payloads, rows


def dot_products(rows, query, keep=lambda point: True):
    """The oracle: each point's dot product with ``query`` (a scipy.sparse
    matrix product), for points sharing a dimension with it."""
    present = [point for point, row in enumerate(rows) if row is not None and keep(point)]
    matrix = sp.csr_matrix((np.concatenate([rows[p][1] for p in present]),
                            np.concatenate([rows[p][0] for p in present]).astype(int),
                            np.cumsum([0] + [len(rows[p][0]) for p in present])), shape=(len(present), DIMENSIONS))
    vector = sp.csr_matrix((query[1], query[0], [0, len(query[0])]), shape=(1, DIMENSIONS))
    products = (matrix @ vector.T).toarray().ravel()
    shares = (matrix.astype(bool) @ vector.astype(bool).T).toarray().ravel() > 0
    return {point: float(product) for point, product, share in zip(present, products, shares) if share}


SPARSE_QUERIES = [([3], [1.0]), ([0, 5, 17, 39], [1.0, 2.0, -1.0, 0.5]), (list(range(0, 40, 3)), [1.0] * 14)]


def test_sparse_search_gives_the_dot_product_top_k(hybrid):
    collection, _, payloads, rows = hybrid
    for query in SPARSE_QUERIES:
        for k in (1, 10, 500):
            hits = collection.search(sparse={"splade": {"indices": query[0], "values": query[1]}}, k=k)
            assert_top_k([hit.id for hit in hits], [hit.score for hit in hits], dot_products(rows, query), k)
            assert all(hit.payload == payloads[hit.id] for hit in hits)
        alone = collection.search(sparse=vecdb.SparseVector(*query), k=10, filter={"tag": "a"}, with_payload=False)
        assert_top_k([hit.id for hit in alone], [hit.score for hit in alone],
                     dot_products(rows, query, lambda point: point % 3 == 0), 10)
        assert all(hit.payload is None for hit in alone)


def test_sparse_vectors_in_every_form_and_as_points_change(db):
    collection = db.create_collection("forms", dim=2, sparse=["s", "t"])
    matrix = sp.csr_matrix(np.array([[0, 2.0, 0, 1.0], [0, 0, 0, 0], [3.0, 0, 0, 0.5]]))
    collection.upsert([1, 2, 3], np.ones((3, 2)), sparse={"s": matrix, "t": [
        vecdb.SparseVector([1], [1.0]), {"indices": [1], "values": [2.0]}, (np.array([1]), np.array([3.0]))]})
    query = {"s": ([0, 1, 3], [1.0, 1.0, 1.0])}
    assert [(hit.id, hit.score) for hit in collection.search(sparse=query)] == [(3, 3.5), (1, 3.0)]
    assert [hit.id for hit in collection.search(sparse={"t": ([1], [1.0])})] == [3, 2, 1]
    collection.upsert([3], np.ones((1, 2)), sparse={"t": [([1], [0.5])]})  # replaced: no "s" any more
    collection.delete([1])
    assert collection.search(sparse=query) == []
    assert [(hit.id, hit.score) for hit in collection.search(sparse={"t": ([1], [1.0])})] == [(2, 2.0), (3, 0.5)]
    assert next(entry for entry in db.describe() if entry["name"] == "forms")["sparse"] == ["s", "t"]
    assert db.get_or_create_collection("forms", dim=2, sparse=["s", "t"]).count() == 2
    with pytest.raises(InvalidArgumentError, match="sparse"):
        db.get_or_create_collection("forms", dim=2, sparse=["s"])


def _rank_fusion(branches, k, rrf_k, weights):
    totals = {}
    for hits, weight in zip(branches, weights):
        for rank, hit in enumerate(hits, 1):
            totals[hit.id] = totals.get(hit.id, 0.0) + weight / (rrf_k + rank)
    return totals


def _score_fusion(branches, k, weights):
    totals = {}
    for hits, weight in zip(branches, weights):
        scores = np.array([score for _, score in hits]) if hits else np.zeros(0)
        mean, spread = (scores.mean(), scores.std()) if len(scores) else (0.0, 0.0)
        for point, score in hits:
            normal = 0.5 if spread == 0 else min(max((score - (mean - 3 * spread)) / (6 * spread), 0.0), 1.0)
            totals[point] = totals.get(point, 0.0) + weight * normal
    return totals


def _weights(alpha, branches):
    """alpha weighs the vector branch, the others share the rest (all
    alike without a vector branch); None: each weighs 1."""
    if alpha is None:
        return [1.0] * len(branches)
    if branches[0] != "query":
        return [1.0 / len(branches)] * len(branches)
    return [alpha] + [(1 - alpha) / (len(branches) - 1)] * (len(branches) - 1)


@pytest.mark.parametrize("fusion", [vecdb.RRF(), vecdb.RRF(k=5, alpha=0.7, candidates=30), vecdb.DBSF(),
                                    vecdb.DBSF(alpha=0.25, candidates=15)], ids=repr)
@pytest.mark.parametrize("branches", [("query", "text"), ("query", "sparse"), ("text", "sparse"),
                                      ("query", "text", "sparse")])
def test_a_fusion_equals_the_separate_searches_fused_by_hand(hybrid, fusion, branches):
    collection, vectors, _, _ = hybrid
    k = 10
    width = fusion.candidates or default_candidates(k)
    for number, text in enumerate(QUERIES[:6]):
        where = {"tag": {"$ne": "b"}} if number % 2 else None
        arguments = {"query": vectors[number * 7] + 0.5, "text": text, "sparse": SPARSE_QUERIES[number % 3]}
        arguments = {name: arguments[name] for name in branches}
        separate = [collection.search(**{name: value}, k=width, filter=where, with_payload=False)
                    for name, value in arguments.items()]
        hits = collection.search(**arguments, fusion=fusion, k=k, filter=where)
        if isinstance(fusion, vecdb.RRF):
            expected = _rank_fusion(separate, k, fusion.k, _weights(fusion.alpha, list(arguments)))
        else:  # the vector branch's scores higher-is-better, as fused: l2 distances squared and negated
            scored = [[(hit.id, -hit.score ** 2 if name == "query" and collection.metric == "l2" else hit.score)
                       for hit in found] for name, found in zip(arguments, separate)]
            expected = _score_fusion(scored, k, _weights(fusion.alpha, list(arguments)))
        assert_top_k([hit.id for hit in hits], [hit.score for hit in hits], expected, k)
        assert where is None or all(hit.payload["tag"] != "b" for hit in hits)


@pytest.mark.parametrize("arguments, error, message", [
    ({"text": "json", "fusion": vecdb.RRF()}, InvalidArgumentError, "two or more"),
    ({"query": [1.0] * 6, "fusion": {"kind": "rrf"}}, InvalidArgumentError, "two or more"),
    ({"query": [1.0] * 6, "text": "json"}, InvalidArgumentError, "needs a fusion"),
    ({"query": [1.0] * 6, "sparse": ([1], [1.0])}, InvalidArgumentError, "needs a fusion"),
    ({"query": [1.0] * 6, "text": "json", "fusion": {"kind": "max"}}, InvalidArgumentError, "fusion must be"),
    ({"query": [1.0] * 6, "text": "json", "fusion": {"kind": "rrf", "depth": 3}}, InvalidArgumentError, "rrf"),
    ({"query": [1.0] * 6, "text": "json", "fusion": {"kind": "dbsf", "alpha": 2}}, InvalidArgumentError, "alpha"),
    ({"query": [[1.0] * 6] * 2, "text": "json", "fusion": vecdb.RRF()}, InvalidArgumentError, "one query vector"),
    ({"query": [1.0] * 3, "text": "json", "fusion": vecdb.RRF()}, InvalidArgumentError, "dimension"),
    ({"query": [float("nan")] * 6, "text": "json", "fusion": vecdb.RRF()}, InvalidArgumentError, "NaN"),
    ({"sparse": {"indices": [], "values": []}}, InvalidArgumentError, "empty"),
    ({"sparse": ([2, 1], [1.0, 1.0])}, InvalidArgumentError, "not sorted"),
    ({"sparse": ([1, 1], [1.0, 1.0])}, InvalidArgumentError, "repeated"),
    ({"sparse": ([-1], [1.0])}, InvalidArgumentError, r"\[0, 2\*\*32\)"),
    ({"sparse": ([1, 2], [1.0])}, InvalidArgumentError, "2 indices and 1 values"),
    ({"sparse": ([1], [float("nan")])}, InvalidArgumentError, "finite"),
    ({"sparse": {"bm42": ([1], [1.0])}}, InvalidArgumentError, "not declared"),
    ({"sparse": 3}, InvalidDTypeError, "SparseVector"),
    ({"sparse": ([1], [1.0]), "ef": 5}, InvalidArgumentError, "no query vector"),
    ({"sparse": ([1], [1.0]), "k": 0}, InvalidArgumentError, "k"),
    ({"sparse": ([1], [1.0]), "group_by": "doc", "group_size": 0}, InvalidArgumentError, "group_size"),
    ({"query": [1.0] * 6, "group_by": ""}, InvalidArgumentError, "dotted"),
    ({"query": [[1.0] * 6] * 2, "group_by": "doc"}, InvalidArgumentError, "batch"),
])
def test_bad_searches_are_refused(hybrid, arguments, error, message):
    collection, _, _, _ = hybrid
    with pytest.raises(error, match=message):
        collection.search(**arguments)


@pytest.mark.parametrize("sparse, error, message", [
    ({"splade": [{"indices": [3, 1], "values": [1.0, 1.0]}]}, InvalidArgumentError, "not sorted"),
    ({"splade": [{"indices": [1, 1], "values": [1.0, 1.0]}]}, InvalidArgumentError, "repeated"),
    ({"splade": [{"indices": [-2], "values": [1.0]}]}, InvalidArgumentError, r"\[0, 2\*\*32\)"),
    ({"splade": [{"indices": [1, 2], "values": [1.0]}]}, InvalidArgumentError, "2 indices and 1 values"),
    ({"splade": [{"indices": [1], "values": [float("nan")]}]}, InvalidArgumentError, "finite"),
    ({"splade": [{"indices": [1.5], "values": [1.0]}]}, InvalidDTypeError, "integers"),
    ({"splade": [{"idx": [1], "values": [1.0]}]}, InvalidArgumentError, "exactly 'indices' and 'values'"),
    ({"splade": [3]}, InvalidDTypeError, "SparseVector"),
    ({"splade": []}, InvalidArgumentError, "0 vectors for 1 ids"),
    ({"bm42": [None]}, InvalidArgumentError, "not declared"),
    (["splade"], InvalidArgumentError, "must be a dict"),
])
def test_bad_sparse_upserts_are_refused_and_nothing_is_written(hybrid, sparse, error, message):
    collection, _, _, _ = hybrid
    with pytest.raises(error, match=message):
        collection.upsert([1000], np.ones((1, 6)), sparse=sparse)
    assert collection.get([1000]) == [] and collection.count() == N


def test_bad_sparse_names_are_refused(db):
    for bad in ("splade", ["a", "a"], ["bad name"]):
        with pytest.raises(InvalidArgumentError):
            db.create_collection("c", dim=2, sparse=bad)
    assert db.list_collections() == []


@pytest.mark.parametrize("search", [
    lambda c, v: {"query": v[5]},
    lambda c, v: {"text": QUERIES[0]},
    lambda c, v: {"sparse": SPARSE_QUERIES[1]},
    lambda c, v: {"query": v[5], "text": QUERIES[0], "fusion": vecdb.RRF()},
], ids=["vector", "text", "sparse", "hybrid"])
@pytest.mark.parametrize("k, size", [(1, 1), (5, 2), (40, 3)])
def test_group_by_keeps_the_best_hits_of_each_value(hybrid, search, k, size):
    collection, vectors, _, _ = hybrid
    arguments = search(collection, vectors)
    groups = collection.search(**arguments, k=k, group_by="doc", group_size=size, with_payload=False)
    # What the grouping sees: every hit; for a fusion (whose ranks depend on
    # its depth), the fused search of the first depth that fills the groups.
    depth = min(max(k * size * 2, 10), 10_000) if "fusion" in arguments else N
    while True:
        hits = collection.search(**arguments, k=depth)
        expected = {}
        for hit in hits:
            key = hit.payload["doc"]
            if key not in expected and len(expected) == k:
                continue
            members = expected.setdefault(key, [])
            if len(members) < size:
                members.append(hit.id)
        if len(hits) < depth or len(expected) == k and all(len(members) == size for members in expected.values()):
            break
        depth *= 4
    assert [(group.key, [hit.id for hit in group.hits]) for group in groups] == list(expected.items())
    assert all(isinstance(group, vecdb.Group) and hit.payload is None for group in groups for hit in group.hits)


@pytest.mark.parametrize("strategy", ["average_vector", "best_score"])
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_recommend_matches_brute_force(db, strategy, metric):
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((120, 4)).astype(np.float32)
    collection = db.create_collection("rec", dim=4, metric=metric, index=vecdb.Flat())
    collection.upsert(list(range(120)), vectors, [{"odd": i % 2} for i in range(120)])
    extra = rng.standard_normal(4).astype(np.float32)
    for positive, negative, where in (([0], None, None), ([0, extra], [1], None), ([3, 7], [extra, 9], {"odd": 1})):
        hits = collection.recommend(positive, negative, k=8, strategy=strategy, filter=where, with_payload=False)
        given = {i for i in list(positive) + list(negative or []) if isinstance(i, int)}
        allowed = [i for i in range(120) if i not in given and (where is None or i % 2)]
        as_matrix = lambda items: np.array([vectors[i] if isinstance(i, int) else i for i in items or []],
                                           dtype=np.float32).reshape(-1, 4)
        if strategy == "best_score":
            scores = best_scores(vectors, as_matrix(positive), as_matrix(negative), metric)
            assert_top_k([hit.id for hit in hits], [hit.score for hit in hits],
                         {i: float(scores[i]) for i in allowed}, 8)
        else:
            positives, negatives = as_matrix(positive), as_matrix(negative)
            query = positives.mean(axis=0) * (2 if len(negatives) else 1) - (
                negatives.mean(axis=0) if len(negatives) else 0)
            nearest = collection.search(query, k=8 + len(given), filter=where, with_payload=False)
            assert [hit.id for hit in hits] == [hit.id for hit in nearest if hit.id not in given][:8]
        assert not given & {hit.id for hit in hits} and all(hit.payload is None for hit in hits)
    with_vectors = collection.recommend([0], k=2, strategy=strategy, with_vector=True)
    assert all(hit.vector is not None and len(hit.vector) == 4 and hit.payload is not None for hit in with_vectors)


@pytest.mark.parametrize("arguments, message", [
    ({"positive": []}, "at least one positive"),
    ({"positive": [999]}, "does not exist"),
    ({"positive": [1], "negative": ["nope"]}, "does not exist"),
    ({"positive": [[1.0, 2.0]]}, "dimension"),
    ({"positive": [[float("nan")] * 4]}, "NaN"),
    ({"positive": [1], "strategy": "max"}, "strategy"),
    ({"positive": 1}, "list"),
    ({"positive": [1], "k": 0}, "k"),
    ({"positive": [1], "filter": {"n": {"$near": 1}}}, "near"),
])
def test_bad_recommendations_are_refused(db, arguments, message):
    collection = db.create_collection("rec", dim=4)
    collection.upsert([1, 2], np.ones((2, 4)))
    with pytest.raises(VecdbError, match=message):
        collection.recommend(**arguments)


@pytest.fixture
def tagged(db):
    collection = db.create_collection("tagged", dim=2, index=vecdb.Flat())
    collection.create_payload_index("tag", "keyword")
    collection.upsert(list(range(30)), np.random.default_rng(2).random((30, 2)),
                      [{"tag": ["a", "b"][i % 2], "body": f"item {i}", "meta": {"x": i, "y": 1}} for i in range(30)])
    collection.create_text_index("body")
    return collection


def test_update_payload_and_delete_payload_keys(tagged):
    assert tagged.update_payload([0, 2, 999], {"tag": "c", "new": True}) == 2
    assert [record.payload for record in tagged.get([0])] == [
        {"tag": "c", "body": "item 0", "meta": {"x": 0, "y": 1}, "new": True}]
    assert tagged.count({"tag": "c"}) == 2 and tagged.count({"tag": "a"}) == 13
    assert tagged.update_payload(payload={"body": "renamed"}, filter={"tag": "b"}, merge=False) == 15
    assert tagged.get([1])[0].payload == {"body": "renamed"} and tagged.count({"tag": "b"}) == 0
    assert {hit.id for hit in tagged.search(text="renamed", k=30)} == set(range(1, 30, 2))
    assert tagged.update_payload([1], {"tag": "d"}, filter={"tag": "c"}) == 3  # ids and filter together
    assert tagged.delete_payload_keys([4, 6], ["meta.x", "body", "absent"]) == 2
    assert tagged.get([4])[0].payload == {"tag": "a", "meta": {"y": 1}}
    assert tagged.search(text="item 4", k=30) and 4 not in {hit.id for hit in tagged.search(text="item", k=30)}
    assert tagged.delete_payload_keys(keys=["meta"], filter={"tag": {"$in": ["a", "d"]}}) == 16
    assert all("meta" not in record.payload for record in tagged.get(list(range(30))))
    assert tagged.count() == 30 and [hit.id for hit in tagged.search([0.5, 0.5], k=30)]
    records = {record.id: record for record in tagged.scroll(limit=100)[0]}
    assert list(records) == list(range(30))  # insertion order kept through every change


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.update_payload([1], "tag"), InvalidPayloadError, "must be a dict"),
    (lambda c: c.update_payload([1], {"tag": 3}), InvalidPayloadError, "keyword index"),
    (lambda c: c.update_payload([1], {"body": 3}), InvalidPayloadError, "text index"),
    (lambda c: c.update_payload([1], {"x": float("nan")}), InvalidPayloadError, "NaN"),
    (lambda c: c.update_payload([1], {"x": 1}, merge="yes"), InvalidDTypeError, "merge"),
    (lambda c: c.update_payload(None, {"x": 1}), InvalidArgumentError, "ids"),
    (lambda c: c.update_payload(payload={"x": 1}, filter={"tag": {"$near": 1}}), InvalidArgumentError, "near"),
    (lambda c: c.delete_payload_keys([1], []), InvalidArgumentError, "non-empty"),
    (lambda c: c.delete_payload_keys([1], "tag"), InvalidArgumentError, "list"),
    (lambda c: c.delete_payload_keys([1], ["a..b"]), InvalidArgumentError, "dotted"),
    (lambda c: c.delete_payload_keys(None, ["tag"]), InvalidArgumentError, "ids"),
])
def test_bad_payload_updates_are_refused_and_nothing_changes(tagged, call, error, message):
    before = [record.payload for record in tagged.get(list(range(30)))]
    with pytest.raises(error, match=message):
        call(tagged)
    assert [record.payload for record in tagged.get(list(range(30)))] == before


def test_explain_shows_the_branches_on_every_backend(db):
    collection = db.create_collection("explained", dim=2, metric="cosine", index=vecdb.Flat(), sparse=["s"])
    collection.upsert([1, 2, 3], [[1, 0], [0, 1], [1, 1]], [{"t": "json parser"}, {"t": "xml"}, {"t": "json"}],
                      sparse={"s": [([1], [1.0]), None, ([1, 2], [1.0, 2.0])]})
    collection.create_text_index("t")
    explanation = collection.explain([1.0, 0.0], text="json", sparse={"s": ([1], [1.0])}, fusion=vecdb.RRF(),
                                     execute=True)
    descriptions = [stage.description for stage in explanation.stages]
    assert descriptions[0].startswith("vector branch: ")
    assert any(text.startswith("text branch: BM25 on 't'") for text in descriptions)
    assert any(text.startswith("sparse branch: dot product on 's'") for text in descriptions)
    assert descriptions[-1] == "fusion: RRF of vector + text + sparse -> top 10" and explanation.executed
    text_only = collection.explain(text="json parser")
    assert text_only.plan is None and text_only.stages[0].description.startswith("text branch")
    with pytest.raises(vecdb.errors.InvalidArgumentError):
        collection.explain(text="json", sparse={"s": ([1], [1.0])})  # two branches, no fusion


def test_get_and_scroll_return_sparse_vectors_on_every_backend(db):
    collection = db.create_collection("stored", dim=2, sparse=["s", "t"])
    collection.upsert([1, 2], [[1, 0], [0, 1]], [{"x": 1}, None],
                      sparse={"s": [([1, 3], [1.0, 2.5]), None], "t": [None, ([0], [0.5])]})
    records = collection.get([1, 2], with_vector=True)
    assert [record.sparse for record in records] == [
        {"s": vecdb.SparseVector([1, 3], [1.0, 2.5])}, {"t": vecdb.SparseVector([0], [0.5])}]
    assert all(record.sparse is None for record in collection.get([1, 2]))
    page, _ = collection.scroll(with_vector=True)
    assert sorted((record.id, record.sparse == expected.sparse) for record, expected in
                  zip(sorted(page, key=lambda r: r.id), records)) == [(1, True), (2, True)]
