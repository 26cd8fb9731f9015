"""The native inverted index (BM25 and sparse dot products, MaxScore
pruning) against brute-force scoring, on data made to tie, repeat and
change: replaced and removed points, filters, compaction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdb import _core
from vecdb.errors import InvalidArgumentError
from tests.support.text_reference import assert_top_k, bm25_scores, dot_scores


def _set(index, documents):
    labels = np.array(list(documents), dtype=np.int64)
    terms = [term for doc in documents.values() for term in doc]
    weights = np.array([weight for doc in documents.values() for weight in doc.values()], dtype=np.float32)
    offsets = np.cumsum([0] + [len(doc) for doc in documents.values()]).astype(np.int64)
    index.set(labels, offsets, terms, weights)


def _bitset(allowed_labels, bound):
    mask = np.zeros(max(bound, 1), dtype=bool)
    mask[list(allowed_labels)] = True
    return np.packbits(np.pad(mask, (0, -len(mask) % 64)), bitorder="little").view("<u8").astype(np.uint64)


VOCABULARY = [f"t{i}" for i in range(8)]


@st.composite
def index_histories(draw):
    scoring = draw(st.sampled_from(["bm25", "dot"]))
    weight = (st.integers(1, 3).map(float) if scoring == "bm25"
              else st.sampled_from([0.5, 1.0, 1.0, 2.0, -1.0, 0.25]))
    document = st.dictionaries(st.sampled_from(VOCABULARY), weight, max_size=5)
    batches = draw(st.lists(st.dictionaries(st.integers(0, 40), document, max_size=12), min_size=1, max_size=5))
    removals = draw(st.lists(st.integers(0, 40), max_size=10))
    query = draw(st.dictionaries(st.sampled_from(VOCABULARY + ["absent"]),
                                 st.sampled_from([1.0, 1.0, 0.5, 2.0]) if scoring == "bm25"
                                 else st.sampled_from([1.0, -0.5, 0.3, 2.0]), min_size=1, max_size=6))
    k = draw(st.integers(1, 45))
    allowed = draw(st.none() | st.sets(st.integers(0, 40)))
    return scoring, batches, removals, query, k, allowed


@settings(max_examples=400, deadline=None)
@given(index_histories())
def test_search_matches_brute_force(case):
    scoring, batches, removals, query, k, allowed = case
    index = _core.InvertedIndex(scoring, k1=1.2, b=0.75)
    documents = {}
    for batch in batches:
        _set(index, batch)
        for label, terms in batch.items():
            documents[label] = terms
    index.remove(np.array(removals, dtype=np.int64))
    for label in removals:
        documents.pop(label, None)
    documents = {label: terms for label, terms in documents.items() if terms}
    assert len(index) == len(documents)
    terms = list(query)
    labels, scores = index.search(terms, np.array([query[t] for t in terms], dtype=np.float32), k,
                                  None if allowed is None else _bitset(allowed, 41))
    visible = documents if allowed is None else {label: t for label, t in documents.items() if label in allowed}
    expected = bm25_scores(documents, query) if scoring == "bm25" else dot_scores(documents, query)
    expected = {label: score for label, score in expected.items() if label in visible}
    assert_top_k(labels.tolist(), scores.tolist(), expected, k)


def test_pruning_keeps_the_exact_top_k_on_a_large_skewed_collection():
    """Thousands of points, Zipf-like terms: MaxScore prunes most of the
    common terms' lists, and still returns the brute-force top k."""
    rng = np.random.default_rng(7)
    vocabulary = [f"w{i}" for i in range(300)]
    probabilities = 1.0 / np.arange(1, 301)
    probabilities /= probabilities.sum()
    documents = {}
    for label in range(3000):
        words = rng.choice(300, size=rng.integers(1, 25), p=probabilities)
        counts = np.bincount(words)
        documents[label] = {vocabulary[w]: float(c) for w, c in enumerate(counts) if c}
    index = _core.InvertedIndex("bm25")
    _set(index, documents)
    for _ in range(30):
        query = {vocabulary[w]: 1.0 for w in rng.choice(300, size=rng.integers(1, 8), replace=False)}
        terms = list(query)
        labels, scores = index.search(terms, np.ones(len(terms), dtype=np.float32), 10)
        assert_top_k(labels.tolist(), scores.tolist(), bm25_scores(documents, query), 10)


def test_compaction_after_mass_replacement_keeps_results():
    rng = np.random.default_rng(3)
    index = _core.InvertedIndex("dot")
    documents = {}
    for round_ in range(4):  # every point replaced three times: compaction runs
        batch = {label: {f"t{int(t)}": float(rng.random()) for t in rng.choice(50, size=5, replace=False)}
                 for label in range(2000)}
        _set(index, batch)
        documents.update(batch)
    memory = index.memory_bytes()
    query = {"t1": 1.0, "t7": 0.5, "t20": 2.0}
    labels, scores = index.search(list(query), np.array(list(query.values()), dtype=np.float32), 20)
    assert_top_k(labels.tolist(), scores.tolist(), dot_scores(documents, query), 20)
    assert len(index) == 2000 and memory > 0


def test_an_empty_index_and_unknown_terms_find_nothing():
    index = _core.InvertedIndex("bm25")
    labels, scores = index.search(["a"], np.ones(1, dtype=np.float32), 5)
    assert labels.tolist() == [] and scores.tolist() == []
    _set(index, {1: {"a": 1.0}})
    labels, _ = index.search(["b"], np.ones(1, dtype=np.float32), 5)
    assert labels.tolist() == []
    labels, _ = index.search(["a", "a"], np.ones(2, dtype=np.float32), 5)
    assert labels.tolist() == [1]


@pytest.mark.parametrize("call, message", [
    (lambda index: index.set(np.array([1], dtype=np.int64), np.array([0, 2], dtype=np.int64), ["a"],
                             np.ones(1, dtype=np.float32)), "offsets"),
    (lambda index: index.set(np.array([1], dtype=np.int64), np.array([0, 1], dtype=np.int64), ["a"],
                             np.array([np.nan], dtype=np.float32)), "finite"),
    (lambda index: index.set(np.array([1], dtype=np.int64), np.array([0, 1], dtype=np.int64), ["a"],
                             np.array([0.0], dtype=np.float32)), "frequencies"),
    (lambda index: index.set(np.array([1, 2], dtype=np.int64), np.array([0, 2, 1], dtype=np.int64), ["a"],
                             np.ones(1, dtype=np.float32)), "decrease"),
    (lambda index: index.search(["a"], np.array([np.inf], dtype=np.float32), 3), "finite"),
    (lambda index: index.search(["a"], np.ones(1, dtype=np.float32), 0), "k must be"),
    (lambda index: index.search(["a"], np.ones(2, dtype=np.float32), 3), "query weights"),
])
def test_bad_input_is_refused_and_changes_nothing(call, message):
    index = _core.InvertedIndex("bm25")
    _set(index, {5: {"a": 2.0}})
    with pytest.raises(InvalidArgumentError, match=message):
        call(index)
    assert len(index) == 1 and 5 in index


def test_parameters_are_checked():
    with pytest.raises(InvalidArgumentError, match="scoring"):
        _core.InvertedIndex("cosine")
    with pytest.raises(InvalidArgumentError, match="b must"):
        _core.InvertedIndex("bm25", b=1.5)


def _sample_index():
    index = _core.InvertedIndex("bm25")
    _set(index, {label: {f"t{label % 5}": 1.0, f"t{label % 3 + 5}": 2.0} for label in range(200)})
    return index


def test_a_started_search_gives_what_search_gives():
    """start_search runs on the native background thread (or on the caller,
    if that thread has not started it): the same answer, errors raised from
    result(), and a result taken twice refused."""
    index = _sample_index()
    terms, weights = ["t1", "t6"], np.ones(2, dtype=np.float32)
    allowed = _bitset(range(0, 200, 3), 200)
    want = index.search(terms, weights, 7, allowed)
    started = [index.start_search(terms, weights, 7, allowed) for _ in range(50)]
    for pending in started:
        labels, scores = pending.result()
        np.testing.assert_array_equal(labels, want[0])
        np.testing.assert_array_equal(scores, want[1])
    with pytest.raises(InvalidArgumentError, match="taken already"):
        started[0].result()
    with pytest.raises(InvalidArgumentError, match="k must be"):
        index.start_search(terms, weights, 0)
    index.start_search(terms, weights, 3)  # dropped unread: its destructor waits for it
    sparse = _core.InvertedIndex("dot")
    _set(sparse, {1: {"\x01\x00\x00\x00": 2.0}, 2: {"\x01\x00\x00\x00": 1.0}})
    labels, _ = sparse.start_sparse_search(np.array([1], dtype=np.uint32), np.ones(1, dtype=np.float32), 2).result()
    assert labels.tolist() == [1, 2]


def test_a_forked_child_starts_searches_without_the_parents_thread():
    """A forked child has no copy of the parent's background thread: its
    started searches still answer (it starts its own thread; a search the
    thread has not started is run by the caller)."""
    import multiprocessing

    index = _sample_index()
    terms, weights = ["t2", "t7"], np.ones(2, dtype=np.float32)
    want = index.search(terms, weights, 5)[0].tolist()
    assert index.start_search(terms, weights, 5).result()[0].tolist() == want  # the parent's thread runs

    def child(connection):
        connection.send([index.start_search(terms, weights, 5).result()[0].tolist() for _ in range(20)])

    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe()
    process = context.Process(target=child, args=(child_end,))
    process.start()
    assert parent_end.poll(60), "a started search in the forked child hung"
    assert parent_end.recv() == [want] * 20
    process.join(10)
    assert process.exitcode == 0
