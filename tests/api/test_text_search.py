"""Full-text search (BM25) through the API, on every backend (the ``db``
fixture: embedded, remote, remote through a reader worker, a 2-shard
cluster): text indexes made, listed and dropped; searches by text giving
the brute-force BM25 oracle's top k and scores (a cluster's too: its shards
score with the whole collection's statistics), with filters and a choice of
index; bad input refused with the embedded error, and nothing written."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidArgumentError, InvalidDTypeError, InvalidPayloadError
from vecdb.text.analyzer import Analyzer
from vecdb.text.settings import TextIndexSettings
from tests.support.servers import serve_in_thread
from tests.support.text_reference import assert_top_k, bm25_scores

DATA = Path(__file__).resolve().parents[1] / "data"
DEFAULTS = {"language": "english", "stopwords": list(TextIndexSettings.new().stopwords), "k1": 1.2, "b": 0.75}


def _lines(name: str, count: int) -> list:
    return (DATA / name).read_text(encoding="utf-8").split("\n")[:count]


TEXTS = _lines("minilm_base_3000_texts.txt", 400)
QUERIES = _lines("minilm_queries_100_texts.txt", 30) + ["react react component", "the of and", "zzzz"]


def expected_scores(payloads, query, field="body", settings=TextIndexSettings.new(), keep=lambda payload: True):
    """The oracle: BM25 of ``query`` over every payload's ``field``, by id,
    for the points ``keep`` keeps (a filter picks among the points; every
    point with text counts for the statistics)."""
    analyzer = Analyzer(settings)
    documents = {point: dict(Counter(analyzer.terms(payload[field]))) for point, payload in payloads.items()
                 if payload and field in payload}
    scores = bm25_scores(documents, {term: 1.0 for term in analyzer.terms(query)}, settings.k1, settings.b)
    return {point: score for point, score in scores.items() if keep(payloads[point])}


def assert_matches_oracle(collection, payloads, query, k, **options):
    keep = options.pop("keep", lambda payload: True)
    settings = options.pop("settings", TextIndexSettings.new())
    field = options.get("text_field") or "body"
    hits = collection.search(text=query, k=k, **options)
    expected = expected_scores(payloads, query, field, settings, keep)
    assert_top_k([hit.id for hit in hits], [hit.score for hit in hits], expected, k)
    return hits


@pytest.fixture
def texts(db):
    """A collection of 400 package descriptions (ids 0-399, a tag each),
    text-indexed on "body" halfway through loading it."""
    collection = db.create_collection("texts", dim=4, metric="l2", index=vecdb.Flat())
    vectors = np.random.default_rng(3).standard_normal((len(TEXTS), 4)).astype(np.float32)
    payloads = {i: {"body": text, "tag": ["a", "b", "c"][i % 3]} for i, text in enumerate(TEXTS)}
    collection.upsert(list(range(200)), vectors[:200], [payloads[i] for i in range(200)])
    collection.create_text_index("body")  # indexes the points stored so far
    collection.upsert(list(range(200, 400)), vectors[200:], [payloads[i] for i in range(200, 400)])  # as they come
    return collection, payloads


def test_search_by_text_gives_the_bm25_top_k(texts):
    collection, payloads = texts
    assert collection.text_indexes == {"body": DEFAULTS}
    for query in QUERIES:
        for k in (1, 10, 500):
            hits = assert_matches_oracle(collection, payloads, query, k)
            assert all(hit.payload == payloads[hit.id] and hit.vector is None for hit in hits)
    assert collection.search(text="the of and") == []  # stop words only
    assert collection.search(text="zzzz") == []


def test_writes_change_what_text_searches_find(texts):
    collection, payloads = texts
    collection.upsert([5, 400], np.ones((2, 4)), [{"body": "quantum react parser"}, {"body": "quantum"}])
    payloads.update({5: {"body": "quantum react parser"}, 400: {"body": "quantum"}})
    assert collection.delete([7, 8]) == 2 and collection.delete(filter={"tag": "c"}) > 0
    payloads = {point: payload for point, payload in payloads.items()
                if point not in (7, 8) and payload.get("tag") != "c"}
    collection.upsert([9], np.ones((1, 4)), [{"tag": "a"}])  # no text any more
    payloads[9] = {"tag": "a"}
    for query in ("quantum react", "parser for node", "typescript definitions"):
        assert_matches_oracle(collection, payloads, query, 10)
    assert {hit.id for hit in collection.search(text="quantum")} == {5, 400}


@pytest.mark.parametrize("query_filter, keep", [
    ({"tag": "a"}, lambda payload: payload["tag"] == "a"),
    ({"tag": {"$in": ["b", "c"]}}, lambda payload: payload["tag"] in ("b", "c")),
    ({"tag": "none"}, lambda payload: False),
])
def test_a_filter_applies_to_text_searches(texts, query_filter, keep):
    collection, payloads = texts
    for query in QUERIES[:10]:
        hits = assert_matches_oracle(collection, payloads, query, 10, filter=query_filter, keep=keep)
        assert all(keep(hit.payload) for hit in hits)


def test_hits_carry_vectors_and_payloads_as_asked(texts):
    collection, payloads = texts
    bare = collection.search(text="react", k=3, with_payload=False, with_vector=True)
    assert bare and all(hit.payload is None and hit.vector is not None and len(hit.vector) == 4 for hit in bare)
    stored = {record.id: record.vector for record in collection.get([hit.id for hit in bare], with_vector=True)}
    assert all(np.array_equal(hit.vector, stored[hit.id]) for hit in bare)


def test_text_field_picks_the_index_and_each_has_its_settings(texts):
    collection, payloads = texts
    collection.upsert([1000, 1001], np.ones((2, 4)), [{"title": "The Parsers", "body": "x"},
                                                      {"title": "parser", "body": "y"}])
    payloads.update({1000: {"title": "The Parsers", "body": "x"}, 1001: {"title": "parser", "body": "y"}})
    plain = TextIndexSettings.new(None, ["The", "a"], 2.0, 0.5)
    collection.create_text_index("title", language=None, stopwords=["The", "a"], k1=2.0, b=0.5)
    assert collection.text_indexes == {"body": DEFAULTS,
                                       "title": {"language": None, "stopwords": ["a", "the"], "k1": 2.0, "b": 0.5}}
    with pytest.raises(InvalidArgumentError, match="say which"):
        collection.search(text="parser")
    hits = assert_matches_oracle(collection, payloads, "parsers", 10, text_field="title", settings=plain)
    assert [hit.id for hit in hits] == [1000]  # no stemming: "parsers" is not "parser"
    assert 1000 not in {hit.id for hit in collection.search(text="parsers", text_field="body", k=400)}
    assert_matches_oracle(collection, payloads, "parsers", 10, text_field="body")
    collection.create_text_index("title", language="english", stopwords=False)  # made again: re-indexed
    assert {hit.id for hit in collection.search(text="parsers", text_field="title")} == {1000, 1001}
    collection.drop_text_index("title")
    collection.drop_text_index("title")  # a field without one is left as it is
    assert collection.text_indexes == {"body": DEFAULTS}
    assert_matches_oracle(collection, payloads, "parser", 10)  # one index again: text_field may be left out


def test_dropping_the_last_text_index_ends_text_searches(texts):
    collection, _ = texts
    collection.drop_text_index("body")
    assert collection.text_indexes == {}
    with pytest.raises(InvalidArgumentError, match="create_text_index"):
        collection.search(text="react")
    collection.upsert([1], np.ones((1, 4)), [{"body": 42}])  # no index: anything goes
    with pytest.raises(InvalidPayloadError, match="'body'"):
        collection.create_text_index("body")
    assert collection.text_indexes == {}


def test_text_indexes_show_in_stats_and_describe(db, texts):
    collection, _ = texts
    stats = collection.stats()["text_indexes"]["body"]
    assert stats["points"] == 400 and stats["terms"] > 100 and stats["memory_bytes"] > 0
    assert {key: stats[key] for key in DEFAULTS} == DEFAULTS
    described = next(entry for entry in db.describe() if entry["name"] == "texts")
    assert described["text_indexes"] == {"body": DEFAULTS} and described["payload_indexes"] == {}


@pytest.mark.parametrize("arguments, error, message", [
    ({"text": ""}, InvalidArgumentError, "empty"),
    ({"text": "  \n"}, InvalidArgumentError, "empty"),
    ({"text": 3}, InvalidDTypeError, "string"),
    ({"text": ["react"]}, InvalidDTypeError, "string"),
    ({"text": "x" * 100_001}, InvalidArgumentError, "characters"),
    ({"text": "react", "text_field": "title"}, InvalidArgumentError, "no text index"),
    ({"text": "react", "text_field": 5}, InvalidArgumentError, "no text index"),
    ({"text_field": "body"}, InvalidArgumentError, "text="),
    ({"text": "react", "query": [1.0, 0.0, 0.0, 0.0]}, InvalidArgumentError, "query and text needs a fusion"),
    ({"text": "react", "ef": 10}, InvalidArgumentError, "vector searches"),
    ({"text": "react", "dims": 2}, InvalidArgumentError, "vector searches"),
    ({"text": "react", "plan": {"kind": "scan"}}, InvalidArgumentError, "vector searches"),
    ({"text": "react", "k": 0}, InvalidArgumentError, "k"),
    ({"text": "react", "filter": {"tag": {"$near": 1}}}, InvalidArgumentError, "near"),
    ({"text": "react", "with_payload": "yes"}, InvalidDTypeError, "true or false"),
])
def test_bad_text_searches_are_refused(texts, arguments, error, message):
    collection, _ = texts
    with pytest.raises(error, match=message):
        collection.search(**arguments)


def test_a_collection_without_a_text_index_says_how_to_make_one(db):
    collection = db.create_collection("plain", dim=2)
    collection.upsert([1], np.ones((1, 2)), [{"body": "react"}])
    with pytest.raises(InvalidArgumentError, match="create_text_index"):
        collection.search(text="react")


def test_text_that_is_not_text_is_refused_and_nothing_is_written(texts):
    collection, payloads = texts
    with pytest.raises(InvalidPayloadError, match="'body' has a text index"):
        collection.upsert([500, 501], np.ones((2, 4)), [{"body": "unheard-of words"}, {"body": 42}])
    assert collection.get([500, 501]) == [] and collection.count() == 400
    assert collection.search(text="unheard") == []
    collection.upsert([500], np.ones((1, 4)), [{"body": ["a list", "of unheard strings"]}])
    assert [hit.id for hit in collection.search(text="unheard")] == [500]


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.create_text_index("body", language="klingon"), InvalidArgumentError, "language"),
    (lambda c: c.create_text_index("body", k1=-1), InvalidArgumentError, "k1"),
    (lambda c: c.create_text_index("body", b=1.5), InvalidArgumentError, "b must be"),
    (lambda c: c.create_text_index("body", stopwords="the"), InvalidArgumentError, "stopwords"),
    (lambda c: c.create_text_index("body", stopwords=["ok", 3]), InvalidArgumentError, "stopwords"),
    (lambda c: c.create_text_index(""), InvalidArgumentError, "field"),
    (lambda c: c.create_text_index("a..b"), InvalidArgumentError, "field"),
    (lambda c: c.create_text_index("n"), InvalidPayloadError, "'n'"),
    (lambda c: c.drop_text_index(""), InvalidArgumentError, "field"),
])
def test_bad_text_indexes_are_refused_and_change_nothing(db, call, error, message):
    collection = db.create_collection("c", dim=2)
    collection.upsert([1, 2], np.ones((2, 2)), [{"body": "fast json parser", "n": 3}, {"body": "xml parser"}])
    collection.create_text_index("body", language=None)
    with pytest.raises(error, match=message):
        call(collection)
    assert collection.text_indexes == {"body": {**DEFAULTS, "language": None, "stopwords": []}}  # none without one
    assert [hit.id for hit in collection.search(text="parser")] == [2, 1]


@contextlib.contextmanager
def reopened(path: Path, backend: str) -> Iterator[vecdb.DatabaseAPI]:
    """The database at ``path``, embedded or served (a new server each time)."""
    if backend == "embedded":
        with vecdb.open(path) as db:
            yield db
    else:
        with serve_in_thread(path) as url, vecdb.connect(url) as db:
            yield db


@pytest.mark.parametrize("backend", ["embedded", "remote"])
def test_text_indexes_survive_reopening(tmp_path, backend):
    payloads = {i: {"body": text} for i, text in enumerate(TEXTS[:100])}
    with reopened(tmp_path / "db", backend) as db:
        collection = db.create_collection("texts", dim=2)
        collection.create_text_index("body", stopwords=["react"], k1=0.9)
        collection.upsert(list(payloads), np.ones((100, 2)), list(payloads.values()))
        before = [(hit.id, hit.score) for hit in collection.search(text="react parser typescript", k=20)]
    with reopened(tmp_path / "db", backend) as db:
        collection = db.get_collection("texts")
        assert collection.text_indexes == {"body": {**DEFAULTS, "stopwords": ["react"], "k1": 0.9}}
        assert [(hit.id, hit.score) for hit in collection.search(text="react parser typescript", k=20)] == before
        assert_matches_oracle(collection, payloads, "react parser typescript", 20,
                              settings=TextIndexSettings.new(stopwords=["react"], k1=0.9))


def test_a_text_index_made_after_readers_opened_the_collection(db):
    collection = db.create_collection("late", dim=2)
    collection.upsert([1, 2], np.eye(2), [{"body": "red fox"}, {"body": "blue fox"}])
    assert [hit.id for hit in collection.search([1.0, 0.0], k=1)] == [1]  # every reader has it open now
    collection.create_text_index("body")
    assert [hit.id for hit in collection.search(text="red")] == [1]
