"""Sparse vectors: declared at creation, given per point (dicts, pairs,
vecdb.SparseVector or a scipy.sparse matrix), searched by dot product
exactly as a scipy.sparse brute force ranks them, through replacements,
deletes, filters, reopening and a read-only handle; bad input refused with
nothing written; fused with the vector and text branches."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from vecdb.errors import InvalidArgumentError, InvalidDTypeError
from tests.support.text_reference import assert_top_k

DIMENSIONS = 12


def _oracle(points, query, allowed=None):
    """Dot products of every point sharing a dimension with ``query``,
    computed as a scipy.sparse matrix product."""
    ids = sorted(points)
    if not ids:
        return {}
    rows = sp.vstack([sp.csr_matrix((values, indices, [0, len(indices)]), shape=(1, DIMENSIONS))
                      for indices, values in (points[i] for i in ids)])
    q = sp.csr_matrix((query[1], query[0], [0, len(query[0])]), shape=(1, DIMENSIONS))
    products = (rows @ q.T).toarray().ravel()
    shares = (rows.astype(bool) @ q.astype(bool).T).toarray().ravel() > 0
    return {point: float(product) for point, product, share in zip(ids, products, shares)
            if share and (allowed is None or point in allowed)}


def _vectors(draw_values):
    return st.lists(st.integers(0, DIMENSIONS - 1), max_size=5, unique=True).flatmap(
        lambda indices: st.lists(draw_values, min_size=len(indices), max_size=len(indices)).map(
            lambda values: (sorted(indices), [values[i] for i in np.argsort(indices)])))


@st.composite
def histories(draw):
    value = st.sampled_from([1.0, 0.5, 2.0, -1.0, 0.25, 1.0])
    steps = draw(st.lists(st.one_of(
        st.tuples(st.just("upsert"), st.dictionaries(st.integers(0, 20), st.none() | _vectors(value), min_size=1,
                                                     max_size=6)),
        st.tuples(st.just("delete"), st.lists(st.integers(0, 20), max_size=4)),
        st.tuples(st.just("reopen"), st.none())), min_size=1, max_size=7))
    query = draw(_vectors(st.sampled_from([1.0, -0.5, 3.0])).filter(lambda vector: len(vector[0]) > 0))
    return steps, query, draw(st.integers(1, 25)), draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(histories())
def test_search_matches_a_scipy_sparse_brute_force(tmp_path_factory, case):
    steps, query, k, filtered = case
    folder = tmp_path_factory.mktemp("sparse")
    points, parity = {}, {}
    db = vecdb.open(folder)
    try:
        collection = db.create_collection("c", dim=2, metric="l2", index=vecdb.HNSW(M=4), sparse=["splade"])
        for action, argument in steps:
            if action == "upsert":
                ids = sorted(argument)
                collection.upsert(ids, np.ones((len(ids), 2)), [{"odd": i % 2} for i in ids],
                                  sparse={"splade": [argument[i] for i in ids]})
                for i in ids:
                    parity[i] = i % 2
                    if argument[i] is None or not argument[i][0]:
                        points.pop(i, None)
                    else:
                        points[i] = argument[i]
            elif action == "delete":
                collection.delete(argument)
                for i in argument:
                    points.pop(i, None)
            else:
                db.close()
                db = vecdb.open(folder)
                collection = db.get_collection("c")
        allowed = {i for i in points if parity[i] == 1} if filtered else None
        hits = collection.search(sparse={"splade": {"indices": query[0], "values": query[1]}}, k=k,
                                 filter={"odd": 1} if filtered else None, with_payload=False)
        assert_top_k([hit.id for hit in hits], [hit.score for hit in hits], _oracle(points, query, allowed), k)
    finally:
        db.close()


def test_every_way_of_giving_sparse_vectors_stores_the_same(tmp_path):
    matrix = sp.csr_matrix(np.array([[0, 2.0, 0, 1.0], [0, 0, 0, 0], [3.0, 0, 0, 0.5]]))
    forms = {
        "dicts": [{"indices": [1, 3], "values": [2.0, 1.0]}, None, {"indices": [0, 3], "values": [3.0, 0.5]}],
        "pairs": [([1, 3], [2.0, 1.0]), ([], []), (np.array([0, 3]), np.array([3.0, 0.5]))],
        "objects": [vecdb.SparseVector([1, 3], [2.0, 1.0]), None, vecdb.SparseVector([0, 3], [3.0, 0.5])],
        "matrix": matrix,
    }
    with vecdb.open(tmp_path / "db") as db:
        results = []
        for name, given in forms.items():
            collection = db.create_collection(name, dim=2, sparse=["s"])
            collection.upsert([1, 2, 3], np.ones((3, 2)), sparse={"s": given})
            hits = collection.search(sparse={"indices": [0, 1, 3], "values": [1.0, 1.0, 1.0]}, with_payload=False)
            results.append([(hit.id, hit.score) for hit in hits])
        assert results[0] == [(3, 3.5), (1, 3.0)] and all(result == results[0] for result in results)


def test_a_replaced_point_without_sparse_vectors_loses_them(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("c", dim=2, sparse=["a", "b"])
        collection.upsert([1], np.ones((1, 2)), sparse={"a": [([1], [1.0])], "b": [([2], [1.0])]})
        collection.upsert([1], np.ones((1, 2)), sparse={"a": [([1], [2.0])]})
        assert [(h.id, h.score) for h in collection.search(sparse={"a": ([1], [1.0])})] == [(1, 2.0)]
        assert collection.search(sparse={"b": ([2], [1.0])}) == []


@pytest.mark.parametrize("sparse, error, message", [
    ({"s": [{"indices": [3, 1], "values": [1.0, 1.0]}]}, InvalidArgumentError, "not sorted"),
    ({"s": [{"indices": [1, 1], "values": [1.0, 1.0]}]}, InvalidArgumentError, "repeated"),
    ({"s": [{"indices": [-2], "values": [1.0]}]}, InvalidArgumentError, r"\[0, 2\*\*32\)"),
    ({"s": [{"indices": [2**32], "values": [1.0]}]}, InvalidArgumentError, r"\[0, 2\*\*32\)"),
    ({"s": [{"indices": [1, 2], "values": [1.0]}]}, InvalidArgumentError, "2 indices and 1 values"),
    ({"s": [{"indices": [1], "values": [float("nan")]}]}, InvalidArgumentError, "finite"),
    ({"s": [{"indices": [1.5], "values": [1.0]}]}, InvalidDTypeError, "integers"),
    ({"s": [{"indices": [1], "values": ["x"]}]}, InvalidDTypeError, "numbers"),
    ({"s": [{"idx": [1], "values": [1.0]}]}, InvalidArgumentError, "exactly 'indices' and 'values'"),
    ({"s": [3]}, InvalidDTypeError, "SparseVector"),
    ({"s": []}, InvalidArgumentError, "0 vectors for 1 ids"),
    ({"t": [None]}, InvalidArgumentError, "not declared"),
    (["s"], InvalidArgumentError, "must be a dict"),
])
def test_bad_sparse_vectors_are_refused_and_nothing_is_written(tmp_path, sparse, error, message):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("c", dim=2, sparse=["s"])
        with pytest.raises(error, match=message):
            collection.upsert([1], np.ones((1, 2)), sparse=sparse)
        assert collection.count() == 0


@pytest.mark.parametrize("arguments, message", [
    ({"sparse": {"indices": [], "values": []}}, "empty"),
    ({"sparse": {"t": ([1], [1.0])}}, "not declared"),
    ({"sparse": {"s": ([1], [1.0]), "u": ([1], [1.0])}}, "one sparse vector"),
    ({"sparse": ([2, 1], [1.0, 1.0])}, "not sorted"),
    ({"sparse": ([1], [1.0]), "ef": 5}, "no query vector"),
    ({"sparse": ([1], [1.0]), "query": [1.0, 0.0]}, "needs a fusion"),
])
def test_bad_sparse_searches_are_refused(tmp_path, arguments, message):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("c", dim=2, sparse=["s", "u"] if "u" in arguments.get("sparse", {}) else ["s"])
        with pytest.raises(InvalidArgumentError, match=message):
            collection.search(**arguments)


def test_sparse_names_are_checked_and_kept(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        for bad in ("splade", ["a", "a"], ["bad name"], [3]):
            with pytest.raises(InvalidArgumentError):
                db.create_collection("c", dim=2, sparse=bad)
        db.create_collection("c", dim=2, sparse=["splade"])
        with pytest.raises(InvalidArgumentError, match="sparse"):
            db.create_collection("c", dim=2, exist_ok=True)
        assert db.create_collection("c", dim=2, sparse=["splade"], exist_ok=True).search(
            sparse=([1], [1.0])) == []


def test_a_read_only_handle_follows_sparse_writes(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("c", dim=2, sparse=["s"])
        collection.upsert([1], np.ones((1, 2)), sparse={"s": [([4], [1.0])]})
        with vecdb.open(tmp_path / "db", read_only=True) as reader:
            viewer = reader.get_collection("c")
            assert [hit.id for hit in viewer.search(sparse=([4], [1.0]))] == [1]
            collection.upsert([2], np.ones((1, 2)), sparse={"s": [([4], [5.0])]})
            collection.delete([1])
            assert [(hit.id, hit.score) for hit in viewer.search(sparse=([4], [1.0]))] == [(2, 5.0)]


def test_three_branches_fuse(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("c", dim=2, index=vecdb.Flat(), sparse=["s"])
        collection.upsert([1, 2, 3], [[1, 0], [0, 1], [1, 1]],
                          [{"t": "json parser"}, {"t": "xml parser"}, {"t": "yaml"}],
                          sparse={"s": [([1], [1.0]), ([1, 2], [2.0, 1.0]), ([2], [3.0])]})
        collection.create_text_index("t")
        hits = collection.search([1, 0], text="parser", sparse=([2], [1.0]), fusion=vecdb.RRF(k=1), k=3)
        # ranks: vector 1,3,2; text 1,2 (tied scores break by id); sparse 3,2
        expected = {1: 1 / 2 + 1 / 2, 3: 1 / 3 + 1 / 2, 2: 1 / 4 + 1 / 3 + 1 / 3}
        assert [(hit.id, pytest.approx(hit.score)) for hit in hits] == sorted(
            expected.items(), key=lambda item: (-item[1], item[0]))
        weighted = collection.search([1, 0], text="parser", sparse=([2], [1.0]), fusion=vecdb.RRF(k=1, alpha=0.5))
        assert weighted[0].score == pytest.approx(0.5 / 2 + 0.25 / 2)


def test_get_returns_sparse_vectors_and_a_copy_keeps_them(tmp_path):
    from vecdb.transfer.collection_copy import copy_collection

    with vecdb.open(tmp_path / "a") as source, vecdb.open(tmp_path / "b") as target:
        collection = source.create_collection("c", dim=2, sparse=["s", "t"])
        collection.upsert([1, 2], np.eye(2), [{"x": 1}, None],
                          sparse={"s": [([1, 3], [1.0, 2.0]), None], "t": [None, ([0], [0.5])]})
        records = collection.get([1, 2], with_vector=True)
        assert [record.sparse for record in records] == [
            {"s": vecdb.SparseVector([1, 3], [1.0, 2.0])}, {"t": vecdb.SparseVector([0], [0.5])}]
        assert all(record.sparse is None for record in collection.get([1, 2]))
        copy = copy_collection(source, "c", target, "c")
        assert [record.sparse for record in copy.get([1, 2], with_vector=True)] == [record.sparse for record in records]
        assert [(hit.id, hit.score) for hit in copy.search(sparse={"s": ([3], [1.0])})] == [(1, 2.0)]
