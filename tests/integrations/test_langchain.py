"""The LangChain adapter beyond the standard suite: scores, filters and MMR
against a numpy brute force over the same embeddings, relevance scores per
metric, the retriever, from_texts on each kind of database, deletes, on
both databases (tests/integrations/conftest.py)."""

from __future__ import annotations

import asyncio
import math
from typing import List

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.vectorstores.utils import maximal_marginal_relevance  # noqa: E402

import vecdb  # noqa: E402
from tests.integrations.embeddings import DIM, bag_of_words  # noqa: E402
from vecdb.embeddings import Hashing  # noqa: E402
from vecdb.errors import InvalidArgumentError  # noqa: E402
from vecdb.integrations.langchain import VecdbVectorStore  # noqa: E402

WORDS = ["vector", "graph", "index", "disk", "text", "search", "filter", "server", "client", "cluster", "shard",
         "query"]
TEXTS = [" ".join(WORDS[(i * 7 + j * 5) % len(WORDS)] for j in range(1 + i % 4)) + f" note{i}" for i in range(40)]
METADATAS = [{"topic": ["db", "ml", "ops"][i % 3], "year": 2015 + i % 10, "n": i} for i in range(40)]
IDS = [f"doc-{i}" for i in range(40)]
QUERY = "graph index search"


class BagOfWords(Embeddings):
    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return [bag_of_words(text) for text in texts]

    def embed_query(self, text: str) -> List[float]:
        return bag_of_words(text)


def oracle_scores(metric: str, query: str) -> np.ndarray:
    """Each of TEXTS' vecdb score for ``query``, by numpy."""
    vectors, q = np.array([bag_of_words(text) for text in TEXTS]), np.array(bag_of_words(query))
    if metric == "l2":
        return np.linalg.norm(vectors - q, axis=1)
    if metric == "cosine":
        return vectors @ q / np.linalg.norm(vectors, axis=1) / np.linalg.norm(q)
    return vectors @ q


def oracle_ranking(metric: str, query: str, allowed=lambda metadata: True) -> List[int]:
    scores = oracle_scores(metric, query)
    order = np.argsort(scores if metric == "l2" else -scores, kind="stable")
    return [int(i) for i in order if allowed(METADATAS[i])]


@pytest.fixture(params=["cosine", "ip", "l2"])
def metric(request):
    return request.param


@pytest.fixture
def store(database, metric):
    collection = database.create_collection("notes", dim=DIM, metric=metric)
    store = VecdbVectorStore(collection, BagOfWords())
    assert store.add_texts(TEXTS, METADATAS, ids=IDS) == IDS
    return store


def test_similarity_search_with_score_is_the_brute_force_ranking(store, metric):
    results = store.similarity_search_with_score(QUERY, k=10)
    expected = oracle_ranking(metric, QUERY)[:10]
    assert [document.id for document, _ in results] == [IDS[i] for i in expected]
    assert [score for _, score in results] == pytest.approx(oracle_scores(metric, QUERY)[expected], abs=1e-5)
    assert [document.page_content for document, _ in results] == [TEXTS[i] for i in expected]
    assert [document.metadata for document, _ in results] == [METADATAS[i] for i in expected]


def test_search_by_vector_and_async_variants_agree(store):
    expected = store.similarity_search(QUERY, k=7)
    assert store.similarity_search_by_vector(bag_of_words(QUERY), k=7) == expected
    assert asyncio.run(store.asimilarity_search(QUERY, k=7)) == expected
    assert asyncio.run(store.asimilarity_search_by_vector(bag_of_words(QUERY), k=7)) == expected
    assert [document for document, _ in asyncio.run(store.asimilarity_search_with_score(QUERY, k=7))] == expected


def test_a_filter_is_a_vecdb_filter(store, metric):
    query_filter = {"$or": [{"topic": "db"}, {"year": {"$gte": 2022}}], "n": {"$nin": [0, 3]}}
    documents = store.similarity_search(QUERY, k=8, filter=query_filter)
    expected = oracle_ranking(metric, QUERY, lambda m: (m["topic"] == "db" or m["year"] >= 2022)
                              and m["n"] not in (0, 3))[:8]
    assert [document.id for document in documents] == [IDS[i] for i in expected]


def test_mmr_is_langchains_mmr_over_the_nearest(store, metric):
    candidates = oracle_ranking(metric, QUERY)[:12]
    chosen = maximal_marginal_relevance(np.array(bag_of_words(QUERY), dtype=np.float32),
                                        [bag_of_words(TEXTS[i]) for i in candidates], lambda_mult=0.3, k=5)
    expected = [IDS[candidates[i]] for i in chosen]
    assert [d.id for d in store.max_marginal_relevance_search(QUERY, k=5, fetch_k=12, lambda_mult=0.3)] == expected
    assert [d.id for d in store.max_marginal_relevance_search_by_vector(bag_of_words(QUERY), k=5, fetch_k=12,
                                                                        lambda_mult=0.3)] == expected
    assert [d.id for d in asyncio.run(store.amax_marginal_relevance_search(QUERY, k=5, fetch_k=12,
                                                                           lambda_mult=0.3))] == expected
    assert expected != [IDS[i] for i in candidates[:5]], "lambda_mult=0.3 should reorder: the test checks nothing"


def test_mmr_takes_a_filter(store, metric):
    documents = store.max_marginal_relevance_search(QUERY, k=4, fetch_k=10, filter={"topic": "ops"})
    assert len(documents) == 4 and all(document.metadata["topic"] == "ops" for document in documents)


def test_relevance_scores_map_the_metric_into_0_1(store, metric):
    results = store.similarity_search_with_relevance_scores(QUERY, k=40)
    scores = oracle_scores(metric, QUERY)[oracle_ranking(metric, QUERY)]
    expected = [max(0.0, 1 - d / math.sqrt(2)) for d in scores] if metric == "l2" else (1 + scores) / 2
    assert [relevance for _, relevance in results] == pytest.approx(expected, abs=1e-5)
    assert all(0 <= relevance <= 1 for _, relevance in results)


def test_the_retriever_takes_search_kwargs(store, metric):
    assert store.as_retriever(search_kwargs={"k": 3}).invoke(QUERY) == store.similarity_search(QUERY, k=3)
    threshold = sorted(relevance for _, relevance in store.similarity_search_with_relevance_scores(QUERY, k=40))[-5]
    retriever = store.as_retriever(search_type="similarity_score_threshold",
                                   search_kwargs={"k": 40, "score_threshold": threshold})
    assert [document.id for document in retriever.invoke(QUERY)] == [IDS[i] for i in oracle_ranking(metric, QUERY)[:5]]
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 12, "filter": {"topic": "ml"}})
    assert [d.id for d in mmr.invoke(QUERY)] == [d.id for d in store.max_marginal_relevance_search(
        QUERY, k=3, fetch_k=12, filter={"topic": "ml"})]


def test_texts_and_metadata_are_the_points_documents_and_payloads(store):
    record, = store.collection.get(["doc-5"], with_document=True)
    assert (record.document, record.payload) == (TEXTS[5], METADATAS[5])
    assert store.get_by_ids(["doc-7", "missing", "doc-5"]) == [
        store.similarity_search(TEXTS[7], k=1, filter={"n": 7})[0], store.similarity_search(TEXTS[5], k=1,
                                                                                            filter={"n": 5})[0]]


def test_add_texts_in_batches_generates_missing_ids(database):
    store = VecdbVectorStore(database.create_collection("notes", dim=DIM), BagOfWords())
    ids = store.add_texts(TEXTS[:10], METADATAS[:10], ids=[None, "b", *[None] * 8], batch_size=3)
    assert ids[1] == "b" and len(set(ids)) == 10 and all(isinstance(id_, str) for id_ in ids)
    assert [document.page_content for document in store.get_by_ids(ids)] == TEXTS[:10]
    async_ids = asyncio.run(store.aadd_texts(TEXTS[10:15], batch_size=2))
    assert [document.metadata for document in store.get_by_ids(async_ids)] == [{}] * 5
    assert store.add_texts([]) == []


@pytest.mark.parametrize("bad", [{"metadatas": [{}]}, {"ids": ["a"]}, {"batch_size": 0}])
def test_add_texts_refuses_mismatched_arguments(database, bad):
    store = VecdbVectorStore(database.create_collection("notes", dim=DIM), BagOfWords())
    with pytest.raises(InvalidArgumentError):
        store.add_texts(["one", "two"], **bad)
    with pytest.raises(TypeError, match="unexpected"):
        store.add_texts(["one"], colour="red")
    assert store.collection.count() == 0


def test_delete_by_ids_by_filter_and_everything(store):
    store.delete(["doc-0", "doc-1", "missing"])
    assert store.collection.count() == 38
    store.delete(filter={"topic": "db"})
    assert store.collection.count() == sum(1 for m in METADATAS[2:] if m["topic"] != "db")
    assert store.collection.count({"topic": "db"}) == 0
    asyncio.run(store.adelete(["doc-2"]))
    assert store.get_by_ids(["doc-2"]) == []
    store.delete()
    assert store.collection.count() == 0 and store.similarity_search(QUERY) == []


def test_from_texts_on_a_database(database):
    store = VecdbVectorStore.from_texts(TEXTS, BagOfWords(), METADATAS, ids=IDS, database=database,
                                        collection_name="made", metric="l2")
    assert (store.collection.metric, store.collection.dim, store.collection.count()) == ("l2", DIM, 40)
    again = VecdbVectorStore.from_texts(["more"], BagOfWords(), database=database, collection_name="made")
    assert (again.collection.metric, again.collection.count()) == ("l2", 41)
    with pytest.raises(InvalidArgumentError, match="exists"):
        VecdbVectorStore.from_texts(["more"], BagOfWords(), database=database, collection_name="made", metric="ip")
    store.close()  # the database was given, not opened: it stays open
    assert database.get_collection("made").count() == 41
    empty = VecdbVectorStore.from_texts([], BagOfWords(), database=database, collection_name="empty")
    assert (empty.collection.dim, empty.collection.count()) == (DIM, 0)


def test_from_texts_opens_a_path_and_closes_it(tmp_path):
    store = VecdbVectorStore.from_texts(TEXTS, BagOfWords(), METADATAS, path=tmp_path / "db")
    store.close()
    with vecdb.open(tmp_path / "db") as reopened:
        collection = reopened.get_collection("langchain")
        assert collection.count() == 40
        assert VecdbVectorStore(collection, BagOfWords()).similarity_search(TEXTS[3], k=1)[0].page_content == TEXTS[3]


def test_from_texts_connects_to_a_url(vecdb_server, remote_database):
    store = VecdbVectorStore.from_texts(TEXTS, BagOfWords(), url=vecdb_server.url, collection_name="from-url")
    assert store.similarity_search(TEXTS[9], k=1)[0].page_content == TEXTS[9]
    store.close()
    assert remote_database.get_collection("from-url").count() == 40


@pytest.mark.parametrize("where", [{}, {"path": "a", "url": "http://127.0.0.1:1"}])
def test_from_texts_needs_exactly_one_database(where):
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        VecdbVectorStore.from_texts(["one"], BagOfWords(), **where)


def test_a_vecdb_embedding_function_is_stored_with_the_collection(database):
    store = VecdbVectorStore.from_texts(TEXTS, Hashing(dim=48), METADATAS, ids=IDS, database=database,
                                        collection_name="hashed")
    collection = database.get_collection("hashed")
    assert (collection.dim, collection.embedding.config()) == (48, Hashing(dim=48).config())
    own = VecdbVectorStore(collection)  # the collection's own embedding function
    expected = [hit.id for hit in collection.search(QUERY, k=6)]
    assert [document.id for document in own.similarity_search(QUERY, k=6)] == expected
    assert [document.id for document in store.similarity_search(QUERY, k=6)] == expected


def test_a_store_needs_an_embedding(database):
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        VecdbVectorStore(database.create_collection("bare", dim=DIM))
