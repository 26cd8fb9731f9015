"""The LlamaIndex adapter on both databases (tests/integrations/conftest.py):
a VectorStoreIndex round trip (ingest, retrieve, delete a document,
filtered retrieval, reopen) against the same index on LlamaIndex's own
SimpleVectorStore, every filter operator against SimpleVectorStore's
filter semantics, and node reads and deletes by id and filter."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.embeddings import BaseEmbedding  # noqa: E402
from llama_index.core.retrievers import VectorIndexRetriever  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.vector_stores import SimpleVectorStore  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

import vecdb  # noqa: E402
from tests.integrations.embeddings import DIM, bag_of_words  # noqa: E402
from vecdb.embeddings import Hashing  # noqa: E402
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError, InvalidFilterError  # noqa: E402
from vecdb.integrations.llama_index import VecdbEmbedding, VecdbVectorStore, to_vecdb_filter  # noqa: E402

TOPICS = ["graph index", "disk storage", "text search", "cluster shards", "client server", "vector filter"]
NOTES: List[Any] = [None, "", [], "check", ["later"]]


class BagOfWordsEmbedding(BaseEmbedding):
    """tests/integrations/embeddings.py's bag of words as a LlamaIndex model."""

    def _get_query_embedding(self, query: str) -> List[float]:
        return bag_of_words(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return bag_of_words(text)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return bag_of_words(query)


EMBED_MODEL = BagOfWordsEmbedding(model_name="bag-of-words")


def metadata(i: int) -> Dict[str, Any]:
    """Every kind of value the filters test: strings, ints, floats, lists,
    and a field missing, null, empty or set."""
    fields: Dict[str, Any] = {"author": ["ada", "bo", "cy"][i % 3], "year": 2016 + i % 8, "rating": 0.5 * (i % 7),
                              "tags": [["db", "ml", "ops", "web"][j] for j in range(4) if (i >> j) & 1],
                              "title": f"On {TOPICS[i % len(TOPICS)]}, part {i}"}
    if i % 6:
        fields["note"] = NOTES[i % 6 - 1]
    return fields


DOCUMENTS = [Document(id_=f"doc-{i}", text=f"{TOPICS[i % len(TOPICS)]} notes number {i}. " * 3, metadata=metadata(i))
             for i in range(24)]
QUERY = "graph search over disk"


def build_index(vector_store: Any) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(DOCUMENTS, storage_context=StorageContext.from_defaults(
        vector_store=vector_store), embed_model=EMBED_MODEL)


def retrieved(index: VectorStoreIndex, query: str = QUERY, **options: Any) -> List[tuple]:
    """What a retriever returns, by source document and text, with scores."""
    results = index.as_retriever(**options).retrieve(query)
    return [(result.node.ref_doc_id, result.node.get_content(), round(result.score, 5)) for result in results]


@pytest.fixture
def store(database):
    return VecdbVectorStore(database.create_collection("nodes", dim=DIM))


def test_a_vector_store_index_round_trip(database, store):
    index, reference = build_index(store), build_index(SimpleVectorStore())
    assert store.client.count() == len(DOCUMENTS)
    assert retrieved(index, similarity_top_k=5) == retrieved(reference, similarity_top_k=5)
    result, = index.as_retriever(similarity_top_k=1).retrieve(DOCUMENTS[7].text)
    assert (result.node.ref_doc_id, result.node.metadata, result.node.get_content()) == (
        "doc-7", DOCUMENTS[7].metadata, DOCUMENTS[7].text.strip())
    assert asyncio.run(index.as_retriever(similarity_top_k=5).aretrieve(QUERY)) == \
        index.as_retriever(similarity_top_k=5).retrieve(QUERY)

    for doc_id in ("doc-0", "doc-6"):
        index.delete_ref_doc(doc_id)
        reference.delete_ref_doc(doc_id)
    asyncio.run(index.adelete_ref_doc("doc-12"))
    reference.delete_ref_doc("doc-12")
    assert store.client.count() == len(DOCUMENTS) - 3
    assert retrieved(index, similarity_top_k=24) == retrieved(reference, similarity_top_k=24)

    filters = MetadataFilters(filters=[MetadataFilter(key="author", value="bo"),
                                       MetadataFilter(key="year", value=2019, operator=FilterOperator.GTE)])
    assert retrieved(index, similarity_top_k=4, filters=filters) == retrieved(reference, similarity_top_k=4,
                                                                             filters=filters)
    # SimpleVectorStore ignores doc_ids: its whole ranking, restricted.
    assert retrieved(index, similarity_top_k=4, doc_ids=["doc-1", "doc-2"]) == [
        result for result in retrieved(reference, similarity_top_k=24) if result[0] in ("doc-1", "doc-2")]
    some_nodes = [node.node_id for node in store.get_nodes(filters=filters)][:3]
    restricted = VectorIndexRetriever(index, similarity_top_k=2, node_ids=some_nodes).retrieve(QUERY)
    assert [result.node.node_id for result in restricted] == nearest(store, some_nodes)[:2]

    reopened = VectorStoreIndex.from_vector_store(VecdbVectorStore(database.get_collection("nodes")),
                                                  embed_model=EMBED_MODEL)
    assert retrieved(reopened, similarity_top_k=5) == retrieved(reference, similarity_top_k=5)


def nearest(store: VecdbVectorStore, node_ids: List[str]) -> List[str]:
    """These stored nodes' ids, nearest to QUERY first, by numpy."""
    records = store.client.get(node_ids, with_vector=True)
    scores = np.array([record.vector for record in records]) @ np.array(bag_of_words(QUERY))
    return [str(records[i].id) for i in np.argsort(-scores, kind="stable")]


def nodes() -> List[TextNode]:
    return [TextNode(id_=f"node-{i}", text=document.text, metadata=document.metadata,
                     embedding=bag_of_words(document.text)) for i, document in enumerate(DOCUMENTS)]


def query_ids(vector_store: Any, filters: MetadataFilters) -> List[str]:
    result = vector_store.query(VectorStoreQuery(query_embedding=bag_of_words(QUERY), similarity_top_k=len(DOCUMENTS),
                                                 filters=filters))
    return sorted(result.ids)


def one(key: str, value: Any, operator: FilterOperator) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=key, value=value, operator=operator)])


FILTERS = {
    "eq": one("author", "ada", FilterOperator.EQ),
    "ne": one("author", "ada", FilterOperator.NE),
    "gt": one("year", 2020, FilterOperator.GT),
    "gte": one("rating", 1.5, FilterOperator.GTE),
    "lt": one("year", 2018, FilterOperator.LT),
    "lte": one("rating", 1.0, FilterOperator.LTE),
    "in": one("author", ["bo", "cy"], FilterOperator.IN),
    "nin": one("year", [2016, 2017, 2023], FilterOperator.NIN),
    "any": one("tags", ["ml", "web"], FilterOperator.ANY),
    "all": one("tags", ["db", "ops"], FilterOperator.ALL),
    "contains": one("tags", "ml", FilterOperator.CONTAINS),
    "text_match": one("title", "disk", FilterOperator.TEXT_MATCH),
    "is_empty": one("note", None, FilterOperator.IS_EMPTY),
    "or": MetadataFilters(filters=[MetadataFilter(key="author", value="bo"),
                                   MetadataFilter(key="year", value=2022, operator=FilterOperator.GTE)],
                          condition=FilterCondition.OR),
    "not": MetadataFilters(filters=[MetadataFilter(key="author", value="bo"),
                                    MetadataFilter(key="tags", value="db", operator=FilterOperator.CONTAINS)],
                           condition=FilterCondition.NOT),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_filter_selects_what_llama_indexs_own_store_does(store, name):
    reference = SimpleVectorStore()
    reference.add(nodes())
    store.add(nodes())
    expected = query_ids(reference, FILTERS[name])
    assert 0 < len(expected) < len(DOCUMENTS), "a filter matching all or nothing tests little"
    assert query_ids(store, FILTERS[name]) == expected


def test_nested_filters(store):
    store.add(nodes())
    nested = MetadataFilters(filters=[
        MetadataFilter(key="year", value=2018, operator=FilterOperator.GTE),
        MetadataFilters(filters=[MetadataFilter(key="author", value="ada"),
                                 MetadataFilter(key="tags", value="web", operator=FilterOperator.CONTAINS)],
                        condition=FilterCondition.OR),
    ])
    expected = sorted(f"node-{i}" for i, document in enumerate(DOCUMENTS) if document.metadata["year"] >= 2018
                      and (document.metadata["author"] == "ada" or "web" in document.metadata["tags"]))
    assert query_ids(store, nested) == expected
    assert to_vecdb_filter(nested) == {"$and": [{"year": {"$gte": 2018}},
                                                {"$or": [{"author": {"$eq": "ada"}}, {"tags": {"$eq": "web"}}]}]}


def test_unsupported_queries_say_what_is_wrong(store):
    store.add(nodes())
    with pytest.raises(InvalidFilterError, match="TEXT_MATCH_INSENSITIVE"):
        query_ids(store, one("title", "DISK", FilterOperator.TEXT_MATCH_INSENSITIVE))
    with pytest.raises(InvalidArgumentError, match="sparse"):
        store.query(VectorStoreQuery(query_embedding=bag_of_words(QUERY), mode=VectorStoreQueryMode.SPARSE))
    with pytest.raises(InvalidArgumentError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str=QUERY))


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_similarities_are_higher_is_better_scores(database, metric):
    store = VecdbVectorStore(database.create_collection("nodes", dim=DIM, metric=metric))
    store.add(nodes())
    result = store.query(VectorStoreQuery(query_embedding=bag_of_words(QUERY), similarity_top_k=6))
    vectors, query = np.array([bag_of_words(document.text) for document in DOCUMENTS]), np.array(bag_of_words(QUERY))
    scores = -np.linalg.norm(vectors - query, axis=1) if metric == "l2" else vectors @ query
    best = np.argsort(-scores, kind="stable")[:6]
    assert result.ids == [f"node-{i}" for i in best]
    assert result.similarities == pytest.approx(scores[best], abs=1e-5)
    assert [node.get_content() for node in result.nodes] == [DOCUMENTS[i].text for i in best]


def test_get_and_delete_nodes_by_id_and_filter(store):
    store.add(nodes())
    ada = one("author", "ada", FilterOperator.EQ)
    ada_ids = [f"node-{i}" for i in range(0, 24, 3)]
    assert [node.node_id for node in store.get_nodes(["node-4", "missing", "node-1"])] == ["node-4", "node-1"]
    assert [node.node_id for node in store.get_nodes(filters=ada)] == ada_ids
    assert [node.node_id for node in store.get_nodes(["node-4", "node-3", "node-0"], ada)] == ["node-3", "node-0"]
    assert [node.get_content() for node in asyncio.run(store.aget_nodes(["node-5"]))] == [DOCUMENTS[5].text]
    assert len(store.get_nodes()) == 24

    store.delete_nodes(["node-1", "node-3"], filters=ada)  # only node-3 is by ada
    assert sorted(node.node_id for node in store.get_nodes()) == sorted(f"node-{i}" for i in range(24) if i != 3)
    store.delete_nodes(filters=ada)
    assert not store.get_nodes(filters=ada) and len(store.get_nodes()) == 24 - 8
    asyncio.run(store.adelete_nodes(["node-1"]))
    assert store.get_nodes(["node-1"]) == []
    store.clear()
    assert store.client.count() == 0 and store.get_nodes() == []


def test_async_add_and_query(store):
    assert asyncio.run(store.async_add(nodes())) == [f"node-{i}" for i in range(24)]
    query = VectorStoreQuery(query_embedding=bag_of_words(QUERY), similarity_top_k=3)
    assert asyncio.run(store.aquery(query)).ids == store.query(query).ids
    asyncio.run(store.aclear())
    assert store.client.count() == 0


def test_points_written_without_the_adapter_read_as_text_nodes(store):
    store.client.upsert(["plain"], np.array([bag_of_words("plain text")], dtype=np.float32), [{"lang": "en"}],
                        documents=["plain text"])
    node, = store.get_nodes(["plain"])
    assert (type(node), node.node_id, node.get_content(), node.metadata) == (TextNode, "plain", "plain text",
                                                                          {"lang": "en"})


def test_from_params_on_each_kind_of_database(tmp_path, vecdb_server, remote_database):
    store = VecdbVectorStore.from_params(path=tmp_path / "db", collection_name="made", dim=DIM, metric="l2")
    store.add(nodes()[:3])
    store.close()
    with vecdb.open(tmp_path / "db") as database:
        given = VecdbVectorStore.from_params(database=database, collection_name="made")
        assert (given.client.metric, given.client.count()) == ("l2", 3)
        given.close()  # given, not opened: it stays open
        assert database.get_collection("made").count() == 3
        with pytest.raises(CollectionNotFoundError, match="dim="):
            VecdbVectorStore.from_params(database=database, collection_name="missing")
    remote = VecdbVectorStore.from_params(url=vecdb_server.url, collection_name="made-remote", dim=DIM)
    remote.add(nodes()[:2])
    assert [node.node_id for node in remote.get_nodes()] == ["node-0", "node-1"]
    remote.close()
    assert remote_database.get_collection("made-remote").count() == 2


def vecdb_filter_of(value: Optional[Any], operator: FilterOperator) -> Dict[str, Any]:
    return to_vecdb_filter(one("field", value, operator))


def test_the_translation_of_each_operator():
    assert vecdb_filter_of("a", FilterOperator.EQ) == {"field": {"$eq": "a"}}
    assert vecdb_filter_of(["a", "b"], FilterOperator.ALL) == {"$and": [{"field": {"$eq": "a"}},
                                                                        {"field": {"$eq": "b"}}]}
    assert vecdb_filter_of("a", FilterOperator.TEXT_MATCH) == {"field": {"$contains": "a"}}
    with pytest.raises(InvalidFilterError, match="no filters"):
        to_vecdb_filter(MetadataFilters(filters=[]))


def test_a_vecdb_embedding_function_as_the_embed_model(database):
    function = Hashing(dim=48)
    collection = database.create_collection("hashed", embedding=function)
    index = VectorStoreIndex.from_documents(DOCUMENTS, storage_context=StorageContext.from_defaults(
        vector_store=VecdbVectorStore(collection)), embed_model=VecdbEmbedding(function))
    results = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
    assert [result.node.node_id for result in results] == [str(hit.id) for hit in collection.search(QUERY, k=3)]
