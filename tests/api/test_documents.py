"""Documents and text in, on every backend (the ``db`` fixture): a point's
document is stored beside its payload, read back by get, scroll, search and
recommend with ``with_document=True``, dropped by a replace without one,
and filtered by ``{"$document": {"$contains": ...}}`` (checked against
Python's ``in`` over the documents given); a collection made with an
embedding function embeds ``add``'s documents and string queries itself
(the same hits as searching the function's own vectors), and a handle
opened later finds the function again from the stored config; bad input
is refused with nothing written."""

from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np
import pytest

from vecdb.embeddings import Hashing
from vecdb.errors import InvalidArgumentError, InvalidDTypeError, InvalidFilterError

WORDS = ["vector", "graph", "index", "search", "lmdb", "payload", "Vector", "néon", "数据"]


def _documents(count: int, rng: np.random.Generator) -> list:
    """Texts from a small vocabulary (so substrings repeat, case differs),
    some points without one, some empty, some repeated."""
    documents = []
    for row in range(count):
        if row % 7 == 3:
            documents.append(None)
        elif row % 11 == 5:
            documents.append("")
        elif row % 13 == 2 and documents:
            documents.append(documents[-1])
        else:
            documents.append(" ".join(rng.choice(WORDS, size=int(rng.integers(1, 6)))))
    return documents


@pytest.fixture
def stored(db):
    collection = db.create_collection("docs", dim=4, metric="l2")
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(60, 4)).astype(np.float32)
    documents = _documents(60, rng)
    payloads = [{"tags": ["a-vector", "b"] if row % 2 else "lmdb store", "row": row} for row in range(60)]
    collection.upsert(list(range(60)), vectors, payloads, documents=documents)
    return collection, vectors, documents


def test_documents_come_back_with_records_and_hits(stored):
    collection, vectors, documents = stored
    records = collection.get(list(range(60)), with_document=True)
    assert [record.document for record in records] == documents
    assert all(record.document is None for record in collection.get(list(range(60))))
    page, _ = collection.scroll(limit=60, with_document=True, with_payload=False)
    assert [record.document for record in page] == documents
    for query_row in (0, 17, 59):
        hits = collection.search(vectors[query_row], 5, with_document=True, with_payload=False)
        assert hits[0].id == query_row
        assert [hit.document for hit in hits] == [documents[hit.id] for hit in hits]
        assert all(hit.payload is None for hit in hits)
    batch = collection.search(vectors[:3], 2, with_document=True)
    assert [[hit.document for hit in row] for row in batch] == [[documents[hit.id] for hit in row] for row in batch]
    liked = collection.recommend([1], k=3, with_document=True)
    assert [hit.document for hit in liked] == [documents[hit.id] for hit in liked]


def test_a_replace_without_documents_drops_them_and_a_delete_removes_them(stored):
    collection, vectors, documents = stored
    collection.upsert([0, 1], vectors[:2], documents=[None, "replaced text"])
    collection.upsert([2], vectors[2:3])
    collection.delete([4])
    assert [record.document for record in collection.get([0, 1, 2, 3, 4], with_document=True)] == \
        [None, "replaced text", None, documents[3]]
    assert collection.count({"$document": {"$contains": "replaced"}}) == 1


@pytest.mark.parametrize("needle", ["vector", "Vector", "ect", "néon", "数", "graph index", "absent"])
def test_contains_on_the_document_matches_python_substrings(stored, needle):
    collection, vectors, documents = stored
    expected = {row for row, text in enumerate(documents) if text is not None and needle in text}
    assert collection.count({"$document": {"$contains": needle}}) == len(expected)
    page, _ = collection.scroll({"$document": {"$contains": needle}}, limit=100)
    assert {record.id for record in page} == expected
    hits = collection.search(vectors[0], 60, filter={"$document": {"$contains": needle}})
    assert {hit.id for hit in hits} == expected
    negated = collection.count({"$not": {"$document": {"$contains": needle}}})
    assert negated == 60 - len(expected)  # points without a document included, as $not matches a missing field
    both = collection.count({"$and": [{"$document": {"$contains": needle}}, {"row": {"$lt": 30}}]})
    assert both == len([row for row in expected if row < 30])
    either = collection.count({"$or": [{"$document": {"$contains": needle}}, {"row": 0}]})
    assert either == len(expected | {0})


def test_contains_on_payload_strings_and_lists(stored):
    collection, _, _ = stored
    assert collection.count({"tags": {"$contains": "vector"}}) == 30  # a list element containing it
    assert collection.count({"tags": {"$contains": "store"}}) == 30
    assert collection.count({"row": {"$contains": "1"}}) == 0  # numbers hold no substrings
    assert collection.count({"$document": {"$exists": True}}) == len([row for row in range(60) if row % 7 != 3])


@pytest.mark.parametrize("documents, problem", [
    (["one"], "1 documents for 2 ids"),
    ("one two", r"one string \(or None\) per id"),
    ([1, "two"], "document 0 must be a string"),
    (["\ud800", "two"], "lone surrogate"),
])
def test_bad_documents_are_refused_and_nothing_is_written(db, documents, problem):
    collection = db.create_collection("docs", dim=2)
    with pytest.raises(InvalidArgumentError, match=problem):
        collection.upsert(["a", "b"], np.ones((2, 2), dtype=np.float32), documents=documents)
    assert collection.count() == 0


def test_bad_document_arguments_are_refused(stored):
    collection, vectors, _ = stored
    with pytest.raises(InvalidDTypeError, match="with_document"):
        collection.get([1], with_document="yes")
    with pytest.raises(InvalidDTypeError, match="with_document"):
        collection.search(vectors[0], 3, with_document=1)
    with pytest.raises(InvalidFilterError, match=r"\$contains"):
        collection.count({"$document": {"$contains": 3}})
    with pytest.raises(InvalidFilterError, match=r"\$contains"):
        collection.count({"$document": {"$contains": ""}})


class Letters:
    """A custom embedding function (not one vecdb ships): letter counts."""

    name = "letters"
    dim = 26

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text.lower():
                if "a" <= char <= "z":
                    out[row, ord(char) - ord("a")] += 1
            out[row, 0] += 0.5  # never all zero (cosine)
        return out

    def config(self) -> Dict[str, Any]:
        return {"name": self.name}


TEXTS = ["a vector database for python", "graphs of nearest neighbours", "lmdb keeps the payloads",
         "search by text or by vector", "the quick brown fox", "hybrid retrieval fuses rankings"]


def test_text_in_embeds_documents_and_queries(db):
    embedding = Hashing(32)
    collection = db.create_collection("text", embedding=embedding)
    assert collection.dim == 32 and collection.embedding is not None and collection.embedding.name == embedding.name
    collection.add([f"d{row}" for row in range(len(TEXTS))], TEXTS, [{"row": row} for row in range(len(TEXTS))])
    assert [record.document for record in collection.get(["d0", "d5"], with_document=True)] == [TEXTS[0], TEXTS[5]]
    stored = {record.id: record.vector for record in collection.get([f"d{row}" for row in range(6)],
                                                                       with_vector=True)}
    for row, text in enumerate(TEXTS):
        np.testing.assert_allclose(stored[f"d{row}"], embedding([text])[0], rtol=1e-6)
    question = "which database stores vectors"
    by_text = collection.search(question, 3, with_document=True)
    by_vector = collection.search(embedding([question])[0], 3)
    assert [hit.id for hit in by_text] == [hit.id for hit in by_vector]
    assert [hit.document for hit in by_text] == [TEXTS[int(hit.id[1:])] for hit in by_text]
    batch = collection.search([question, "fox"], 2)
    assert [[hit.id for hit in row] for row in batch] == \
        [[hit.id for hit in row] for row in collection.search(embedding([question, "fox"]), 2)]
    assert collection.search("the quick brown fox", 1, filter={"row": {"$gte": 0}})[0].id == "d4"
    again = db.get_collection("text")  # the stored config finds the ready-made function again
    assert again.embedding is not None and again.embedding.name == embedding.name
    assert [hit.id for hit in again.search(question, 3)] == [hit.id for hit in by_vector]


def test_a_custom_embedding_function_must_be_passed_again(db):
    collection = db.create_collection("letters", embedding=Letters())
    collection.add(["x", "y"], ["abc", "xyz"])
    assert collection.search("abd", 1)[0].id == "x"
    reopened_name = db.get_collection("letters", embedding=Letters())
    assert reopened_name.search("xyy", 1)[0].id == "y"
    with pytest.raises(InvalidArgumentError, match="created with the embedding function 'letters'"):
        db.get_collection("letters", embedding=Hashing(26))


def test_text_in_refuses_what_it_cannot_do(db):
    plain = db.create_collection("plain", dim=4)
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        plain.add(["a"], ["text"])
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        plain.search("text")
    with pytest.raises(InvalidArgumentError, match="dimensional"):
        db.create_collection("wrong", dim=8, embedding=Hashing(16))
    with pytest.raises(InvalidDTypeError, match="an embedding function needs name, dim"):
        db.create_collection("notone", embedding=lambda texts: texts)
    text = db.create_collection("text", embedding=Hashing(8))
    with pytest.raises(InvalidArgumentError, match="a document"):
        text.add(["a", "b"], ["one", None])
    with pytest.raises(InvalidArgumentError, match="2 documents for 1 ids"):
        text.add(["a"], ["one", "two"])
    assert text.count() == 0
