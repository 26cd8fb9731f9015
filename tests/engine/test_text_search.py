"""Full-text search (BM25) through a collection: the same top 10 and
scores as bm25s (Lucene's BM25) on real texts, the brute-force oracle under
random writes, filters and reopening, bad input refused with nothing
written, and a search racing writes seeing each write whole or not at all."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from vecdb.errors import InvalidArgumentError, InvalidDTypeError, InvalidPayloadError, ReadOnlyError
from vecdb.text.analyzer import Analyzer
from vecdb.text.settings import TextIndexSettings
from tests.support.text_reference import assert_top_k, bm25_scores

DATA = Path(__file__).resolve().parents[1] / "data"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "npm-minilm-384"


def _lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _bm25s_agrees(texts, queries, tmp_path, k=10):
    """Index ``texts`` in a collection and in bm25s (Lucene's variant, the
    same analyzed tokens); every query's top k agree, scores to 1e-4."""
    import bm25s

    analyzer = Analyzer(TextIndexSettings.new())
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("texts", dim=2, metric="l2", index=vecdb.Flat())
        collection.create_text_index("body")
        for start in range(0, len(texts), 5000):
            chunk = texts[start:start + 5000]
            collection.upsert(list(range(start, start + len(chunk))), np.zeros((len(chunk), 2)),
                              [{"body": text} for text in chunk])
        reference = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        reference.index([analyzer.terms(text) for text in texts], show_progress=False)
        vocabulary = reference.vocab_dict
        compared = 0
        for query in queries:
            terms = [term for term in dict.fromkeys(analyzer.terms(query)) if term in vocabulary]
            hits = collection.search(text=query, k=k, with_payload=False)
            if not terms:
                assert hits == []
                continue
            scores = reference.get_scores(terms)
            expected = {int(row): float(scores[row]) for row in np.flatnonzero(scores > 0)}
            assert_top_k([hit.id for hit in hits], [hit.score for hit in hits], expected, k)
            compared += 1
        return compared


def test_top_10_and_scores_match_bm25s_on_real_texts(tmp_path):
    compared = _bm25s_agrees(_lines(DATA / "minilm_base_3000_texts.txt"),
                             _lines(DATA / "minilm_queries_100_texts.txt"), tmp_path)
    assert compared >= 90


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/npm-minilm-384 is not here")
def test_top_10_and_scores_match_bm25s_on_the_50k_texts_and_1000_queries(tmp_path):
    texts = _lines(SHARED / "base_texts.txt")
    queries = _lines(SHARED / "query_texts.txt")
    assert len(texts) == 50_000 and len(queries) == 1_000
    assert _bm25s_agrees(texts, queries, tmp_path) >= 990


WORDS = ["json", "parser", "parsing", "fast", "the", "xml", "Über", "straße", "x86", "json_parse", "react"]


@st.composite
def histories(draw):
    text = st.lists(st.sampled_from(WORDS), min_size=0, max_size=6).map(" ".join)
    payload = st.one_of(st.fixed_dictionaries({"body": text, "tag": st.sampled_from(["a", "b"])}),
                        st.fixed_dictionaries({"tag": st.sampled_from(["a", "b"])}), st.none())
    steps = draw(st.lists(st.one_of(
        st.tuples(st.just("upsert"), st.dictionaries(st.integers(0, 25), payload, min_size=1, max_size=8)),
        st.tuples(st.just("delete"), st.lists(st.integers(0, 25), max_size=5)),
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("index"), st.none())), min_size=1, max_size=8))
    query = " ".join(draw(st.lists(st.sampled_from(WORDS + ["absent"]), min_size=1, max_size=4)))
    return steps, query, draw(st.integers(1, 30)), draw(st.sampled_from([None, "a"]))


@settings(max_examples=60, deadline=None)
@given(histories())
def test_search_matches_brute_force_through_writes_and_reopening(tmp_path_factory, case):
    steps, query, k, tag = case
    folder = tmp_path_factory.mktemp("text")
    analyzer = Analyzer(TextIndexSettings.new())
    points = {}
    db = vecdb.open(folder)
    try:
        collection = db.create_collection("c", dim=2, metric="l2", index=vecdb.HNSW(M=4))
        indexed = False
        for action, argument in steps:
            if action == "upsert":
                ids = sorted(argument)
                collection.upsert(ids, np.ones((len(ids), 2)), [argument[i] for i in ids])
                points.update(argument)
            elif action == "delete":
                collection.delete(argument)
                for point in argument:
                    points.pop(point, None)
            elif action == "reopen":
                db.close()
                db = vecdb.open(folder)
                collection = db.get_collection("c")
            elif not indexed:
                collection.create_text_index("body")
                indexed = True
        if not indexed:
            collection.create_text_index("body")
        documents = {point: dict(Counter(analyzer.terms(payload["body"])))
                     for point, payload in points.items() if payload and "body" in payload}
        terms = {term: 1.0 for term in analyzer.terms(query)}
        expected = bm25_scores(documents, terms)
        if tag is not None:
            expected = {point: score for point, score in expected.items() if points[point].get("tag") == tag}
        hits = collection.search(text=query, k=k, filter=None if tag is None else {"tag": tag})
        assert_top_k([hit.id for hit in hits], [hit.score for hit in hits], expected, k)
        assert all(hit.payload == points[hit.id] for hit in hits)
    finally:
        db.close()


@pytest.fixture
def texts(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("texts", dim=2, metric="cosine")
        collection.upsert([1, 2, 3], np.eye(3, 2) + 0.1, [{"body": "fast json parser"}, {"body": "xml parser"},
                                                          {"title": "no body"}])
        collection.create_text_index("body")
        yield collection


@pytest.mark.parametrize("arguments, error, message", [
    ({"text": ""}, InvalidArgumentError, "empty"),
    ({"text": "   "}, InvalidArgumentError, "empty"),
    ({"text": 3}, InvalidDTypeError, "string"),
    ({"text": "json", "text_field": "title"}, InvalidArgumentError, "no text index"),
    ({"text": "json", "query": [1.0, 0.0]}, InvalidArgumentError, "needs a fusion"),
    ({"text": "json", "ef": 10}, InvalidArgumentError, "vector searches"),
    ({"text": "json", "k": 0}, InvalidArgumentError, "k"),
    ({"text": "json", "filter": {"$bad": 1}}, InvalidArgumentError, "bad"),
    ({"text": "x" * 100_001}, InvalidArgumentError, "characters"),
])
def test_bad_searches_are_refused(texts, arguments, error, message):
    with pytest.raises(error, match=message):
        texts.search(**arguments)


def test_text_that_is_not_text_is_refused_and_nothing_is_written(texts):
    with pytest.raises(InvalidPayloadError, match="'body' has a text index"):
        texts.upsert([7, 8], np.ones((2, 2)), [{"body": "fine"}, {"body": 42}])
    assert texts.get([7, 8]) == []
    assert [hit.id for hit in texts.search(text="fine")] == []
    texts.upsert([7], np.ones((1, 2)), [{"body": ["a list", "of strings"]}])
    assert [hit.id for hit in texts.search(text="strings")] == [7]


def test_a_field_holding_a_number_cannot_get_a_text_index(texts):
    texts.upsert([9], np.ones((1, 2)), [{"count": 3}])
    with pytest.raises(InvalidPayloadError, match="'count'"):
        texts.create_text_index("count")
    assert "count" not in texts.text_indexes


def test_index_settings_are_checked(texts):
    with pytest.raises(InvalidArgumentError, match="language"):
        texts.create_text_index("body", language="klingon")
    with pytest.raises(InvalidArgumentError, match="k1"):
        texts.create_text_index("body", k1=-1)
    with pytest.raises(InvalidArgumentError, match="stopwords"):
        texts.create_text_index("body", stopwords="the")


def test_which_text_index_is_searched(texts):
    texts.upsert([4], np.ones((1, 2)), [{"body": "nothing here", "title": "json everywhere"}])
    texts.create_text_index("title", language=None, stopwords=False)
    with pytest.raises(InvalidArgumentError, match="say which"):
        texts.search(text="json")
    assert [hit.id for hit in texts.search(text="json", text_field="title")] == [4]
    assert [hit.id for hit in texts.search(text="json", text_field="body")] == [1]
    texts.drop_text_index("title")
    assert [hit.id for hit in texts.search(text="json")] == [1]
    assert list(texts.text_indexes) == ["body"]


def test_a_collection_without_a_text_index_says_how_to_make_one(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("plain", dim=2)
        with pytest.raises(InvalidArgumentError, match="create_text_index"):
            collection.search(text="json")


def test_stop_words_alone_find_nothing(texts):
    assert texts.search(text="the and of") == []


def test_language_and_stop_words_are_applied(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("de", dim=2)
        collection.upsert([1, 2], np.ones((2, 2)), [{"t": "Die Häuser am See"}, {"t": "das Haus"}])
        collection.create_text_index("t", language="german", stopwords=["die", "das", "am"])
        assert {hit.id for hit in collection.search(text="Haus")} == {1, 2}  # häuser -> haus
        assert collection.search(text="die") == []


def test_text_indexes_survive_reopening_and_follow_a_read_only_handle(tmp_path):
    folder = tmp_path / "db"
    with vecdb.open(folder) as db:
        collection = db.create_collection("texts", dim=2)
        collection.upsert([1, 2], np.ones((2, 2)), [{"body": "fast json parser"}, {"body": "xml parser"}])
        collection.create_text_index("body")
        with vecdb.open(folder, read_only=True) as reader:
            viewer = reader.get_collection("texts")
            assert [hit.id for hit in viewer.search(text="json")] == [1]
            collection.upsert([3], np.ones((1, 2)), [{"body": "json json json"}])
            collection.delete([1])
            assert [hit.id for hit in viewer.search(text="json")] == [3]
            collection.create_text_index("title")
            collection.upsert([4], np.ones((1, 2)), [{"title": "json"}])
            assert [hit.id for hit in viewer.search(text="json", text_field="title")] == [4]
            with pytest.raises(ReadOnlyError):
                viewer.create_text_index("other")
    with vecdb.open(folder) as db:
        collection = db.get_collection("texts")
        assert [hit.id for hit in collection.search(text="json", text_field="body")] == [3]
        assert collection.stats()["text_indexes"]["body"]["points"] == 2


def test_a_search_racing_writes_sees_each_write_whole(tmp_path):
    """Every upsert rewrites all 60 points' text to one generation's word;
    a concurrent search for the shared word must return all 60, with one
    generation's payloads and equal scores (never half a write)."""
    with vecdb.open(tmp_path / "db") as db:
        collection = db.create_collection("race", dim=2)
        ids = list(range(60))
        collection.upsert(ids, np.ones((60, 2)), [{"body": "shared gen0"} for _ in ids])
        collection.create_text_index("body")
        stop = threading.Event()
        problems = []

        def search():
            while not stop.is_set():
                hits = collection.search(text="shared", k=100)
                generations = {hit.payload["body"] for hit in hits}
                if len(hits) != 60 or len(generations) != 1 or len({hit.score for hit in hits}) != 1:
                    problems.append((len(hits), generations))

        threads = [threading.Thread(target=search) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            for generation in range(1, 80):
                words = "shared " + " ".join(["gen%d" % generation] * (generation % 3 + 1))
                collection.upsert(ids, np.ones((60, 2)), [{"body": words} for _ in ids])
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert problems == []
