"""Documents in the embedded engine: after any sequence of upserts (with
and without documents), deletes, payload updates and reopenings, every
read and every ``$document`` filter agrees with a Python dict of the
documents given (hypothesis; nasty on purpose: empty and repeated texts,
substrings that are whole documents, points without one, one point);
documents survive a writer killed after its upsert returned; a collection
made before documents existed (no text part) takes them; ``vecdb check``
finds nothing wrong with them; a damaged document is reported, not
returned."""

from __future__ import annotations

import subprocess
import threading
import sys
import textwrap

import lmdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecdb
from vecdb.errors import CorruptRecordError
from vecdb.integrity import check_database

TEXTS = st.sampled_from(["", "a", "ab", "ba", "abc", "b a", "Ab", "ä", "a\x00b"])
OPS = st.lists(st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True),
              st.lists(st.one_of(st.none(), TEXTS), min_size=4, max_size=4), st.booleans()),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 6), max_size=3, unique=True), st.just([]), st.just(False)),
    st.tuples(st.just("payload"), st.lists(st.integers(0, 6), max_size=3, unique=True), st.just([]),
              st.booleans()),
    st.tuples(st.just("reopen"), st.just([]), st.just([]), st.just(False)),
), max_size=12)
NEEDLES = ["a", "b", "ab", "b a", "ä", "\x00", "zz"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_documents_match_a_dict_through_any_history(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("documents")
    expected = {}
    db = vecdb.open(path)
    collection = db.create_collection("docs", dim=2, index=vecdb.Flat())
    try:
        for op, ids, texts, flag in ops:
            if op == "upsert":
                documents = texts[:len(ids)] if flag else None
                collection.upsert(ids, np.ones((len(ids), 2), dtype=np.float32), documents=documents)
                for row, point in enumerate(ids):
                    expected[point] = None if documents is None else documents[row]
            elif op == "delete":
                collection.delete(ids)
                for point in ids:
                    expected.pop(point, None)
            elif op == "payload":
                collection.update_payload(ids, {"seen": True}, merge=flag)  # documents untouched
            else:
                db.close()
                db = vecdb.open(path)
                collection = db.get_collection("docs")
        records, _ = collection.scroll(limit=100, with_document=True)
        assert {record.id: record.document for record in records} == expected
        hits = collection.search([1.0, 1.0], 10, with_document=True)
        assert {hit.id: hit.document for hit in hits} == expected
        for needle in NEEDLES:
            matching = {point for point, text in expected.items() if text is not None and needle in text}
            assert {record.id for record in collection.scroll({"$document": {"$contains": needle}}, limit=100)[0]} \
                == matching
            assert collection.count({"$document": {"$eq": needle}}) == \
                sum(1 for text in expected.values() if text == needle)
        assert collection.count({"$document": {"$exists": True}}) == \
            sum(1 for text in expected.values() if text is not None)
    finally:
        db.close()


WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    import vecdb
    db = vecdb.open(sys.argv[1])
    docs = db.create_collection("docs", dim=2)
    for batch in range(20):
        ids = [batch * 5 + row for row in range(5)]
        docs.upsert(ids, np.ones((5, 2), dtype=np.float32), documents=[f"text {point}" for point in ids])
        print(batch, flush=True)
    os.kill(os.getpid(), 9)
""")


def test_documents_survive_a_killed_writer(tmp_path):
    done = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == -9 and done.stdout.split()[-1] == "19"
    with pytest.warns(RuntimeWarning, match="no snapshot"), vecdb.open(tmp_path) as db:
        records, _ = db.get_collection("docs").scroll(limit=200, with_document=True)
        assert {record.id: record.document for record in records} == {point: f"text {point}" for point in range(100)}
    assert check_database(tmp_path).ok


def test_documents_in_a_collection_without_a_text_part(tmp_path):
    with vecdb.open(tmp_path) as db:
        collection = db.create_collection("docs", dim=2)
        collection.upsert([1], np.ones((1, 2), dtype=np.float32))
        key = collection._config.key
    environment = lmdb.open(str(tmp_path), max_dbs=1024)
    with environment.begin(write=True) as txn:  # as a collection made before text indexes has it
        txn.drop(environment.open_db(f"{key}:text".encode(), txn=txn), delete=True)
    environment.close()
    with vecdb.open(tmp_path) as db:
        collection = db.get_collection("docs")
        assert collection.get([1], with_document=True)[0].document is None
        collection.upsert([2], np.ones((1, 2), dtype=np.float32), documents=["late"])
        assert [record.document for record in collection.get([1, 2], with_document=True)] == [None, "late"]


def test_a_damaged_document_is_reported(tmp_path):
    with vecdb.open(tmp_path) as db:
        collection = db.create_collection("docs", dim=2)
        collection.upsert([1], np.ones((1, 2), dtype=np.float32), documents=["intact text"])
        key = collection._config.key
    environment = lmdb.open(str(tmp_path), max_dbs=1024)
    with environment.begin(write=True) as txn:
        database = environment.open_db(f"{key}:text".encode(), txn=txn)
        entry_key, value = next(iter(txn.cursor(db=database)))
        txn.put(entry_key, value[:2] + b"X" + value[3:], db=database)
    environment.close()
    with vecdb.open(tmp_path) as db:
        collection = db.get_collection("docs")
        assert collection.get([1])[0].id == 1  # reads that do not touch the document still work
        with pytest.raises(CorruptRecordError, match="'docs'"):
            collection.get([1], with_document=True)


def test_documents_large_and_unicode(tmp_path):
    big = "ü" * 200_000 + " tail"
    with vecdb.open(tmp_path) as db:
        collection = db.create_collection("docs", dim=2)
        collection.upsert(["big", "emoji"], np.ones((2, 2), dtype=np.float32), documents=[big, "🦀 crab"])
    with vecdb.open(tmp_path) as db:
        collection = db.get_collection("docs")
        assert [record.document for record in collection.get(["big", "emoji"], with_document=True)] == \
            [big, "🦀 crab"]
        assert collection.count({"$document": {"$contains": "🦀"}}) == 1


def test_text_in_with_a_real_packaged_model_offline(tmp_path):
    """The README's example: WordLlama's weights ship in its wheel, so this
    runs without a network (CI runs the suite where only loopback exists)."""
    pytest.importorskip("wordllama")
    from vecdb.embeddings import WordLlama

    with vecdb.open(tmp_path) as db:
        notes = db.create_collection("notes", embedding=WordLlama())
        notes.add(["n1", "n2", "n3"], ["LMDB is a memory-mapped key-value store",
                                       "HNSW graphs answer nearest-neighbour queries",
                                       "Paris is the capital of France"])
        assert notes.dim == 256
        assert [hit.id for hit in notes.search("which store maps memory?", 3)][0] == "n1"
        assert notes.search("the French capital city", 1, with_document=True)[0].document == \
            "Paris is the capital of France"
    with vecdb.open(tmp_path) as db:  # the stored config finds the model again
        notes = db.get_collection("notes")
        assert notes.embedding is not None and notes.embedding.name == WordLlama().name
        assert notes.search("nearest neighbour graph index", 1)[0].id == "n2"


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_searches_and_gets_racing_writes_see_each_document_with_its_own_write(tmp_path, index):
    """A writer replaces every point, each write giving all of them one
    generation in payload and document (and, every other write, no document
    at all); searching and getting threads must see a point's document and
    payload from one write, never one write's document with another's
    payload (documents are read in the search's own transaction)."""
    db = vecdb.open(tmp_path)
    spec = vecdb.Flat() if index == "flat" else vecdb.HNSW()
    docs = db.create_collection("docs", dim=4, index=spec)
    ids = list(range(40))
    vectors = np.random.default_rng(2).normal(size=(40, 4)).astype(np.float32)
    docs.upsert(ids, vectors, [{"gen": 0}] * 40, documents=["gen 0"] * 40)
    stop = threading.Event()
    problems: list = []

    def check(point_id, payload, document) -> None:
        gen = payload["gen"]
        expected = None if gen % 2 else f"gen {gen}"
        if document != expected:
            problems.append((point_id, gen, document))

    def read() -> None:
        while not stop.is_set():
            for hit in docs.search(vectors[0], 10, with_document=True):
                check(hit.id, hit.payload, hit.document)
            for record in docs.get(ids[:10], with_document=True):
                check(record.id, record.payload, record.document)
            for hit in docs.search(vectors[1], 5, filter={"gen": {"$gte": 0}}, with_document=True):
                check(hit.id, hit.payload, hit.document)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for gen in range(1, 60):
            docs.upsert(ids, vectors, [{"gen": gen}] * 40, documents=None if gen % 2 else [f"gen {gen}"] * 40)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        db.close()
    assert problems == []
