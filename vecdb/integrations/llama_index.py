"""A vecdb collection as a LlamaIndex vector store::

    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from vecdb.integrations.llama_index import VecdbVectorStore

    store = VecdbVectorStore.from_params(path="./data", collection_name="notes", dim=384)
    index = VectorStoreIndex.from_documents(documents, storage_context=StorageContext.from_defaults(vector_store=store))
    index.as_retriever(similarity_top_k=3).retrieve("which index?")

Each node is one point: its text the point's document, its metadata the
payload's top-level fields (filterable: ``MetadataFilters`` are translated
into vecdb filters, see :func:`to_vecdb_filter`), beside what LlamaIndex
needs to rebuild the node (``_node_content``, ``_node_type``,
``ref_doc_id``, ...: ``node_to_metadata_dict``) and its id (``node_id``). Points written by other
means (vecdb's own ``add``) come back as plain ``TextNode``. Needs
``llama-index-core`` (extra ``vecdb-engine[llama-index]``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.embeddings.protocol import EmbeddingFunction
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError, InvalidFilterError
from vecdb.integrations.collections import open_database, scroll_all
from vecdb.records import Hit, Record

# The payload field node_to_metadata_dict stores a node's source document's id in.
REF_DOC_ID_FIELD = "ref_doc_id"
# The payload field the adapter stores a node's id in (also the point id), so
# a query restricted to node ids is a filter.
NODE_ID_FIELD = "node_id"

_COMPARISONS = {
    FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte", FilterOperator.IN: "$in", FilterOperator.NIN: "$nin",
    # A payload list matches when any element does: "any of these values is in the list".
    FilterOperator.ANY: "$in",
    # ... and "the list holds this value" is plain equality.
    FilterOperator.CONTAINS: "$eq",
    FilterOperator.TEXT_MATCH: "$contains",
}


class VecdbEmbedding(BaseEmbedding):
    """A vecdb embedding function (:mod:`vecdb.embeddings`) as a LlamaIndex
    embedding model (``embed_model=``)."""

    _function: EmbeddingFunction = PrivateAttr()

    def __init__(self, function: EmbeddingFunction, **kwargs: Any) -> None:
        super().__init__(model_name=function.name, **kwargs)
        self._function = function

    @classmethod
    def class_name(cls) -> str:
        return "VecdbEmbedding"

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._function(texts).tolist()

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)


class VecdbVectorStore(BasePydanticVectorStore):
    """LlamaIndex's ``BasePydanticVectorStore`` on a vecdb collection
    (embedded or remote) whose dimension is the embedding model's.

    Similarities in query results are vecdb's scores, higher is better:
    cosine similarity or dot product, or, in an ``"l2"`` collection, the
    negated Euclidean distance.
    """

    stores_text: bool = True
    flat_metadata: bool = False

    _collection: CollectionAPI = PrivateAttr()
    _owned_database: Optional[DatabaseAPI] = PrivateAttr(default=None)

    def __init__(self, collection: CollectionAPI, *, owned_database: Optional[DatabaseAPI] = None,
                 **kwargs: Any) -> None:
        """``owned_database``: a database this store closes in :meth:`close`
        (the one :meth:`from_params` opened)."""
        super().__init__(**kwargs)
        self._collection = collection
        self._owned_database = owned_database

    @classmethod
    def from_params(cls, *, database: Optional[DatabaseAPI] = None,
                    path: Optional[Union[str, os.PathLike]] = None, url: Optional[str] = None,
                    collection_name: str = "llama_index", dim: Optional[int] = None,
                    metric: str = "cosine") -> VecdbVectorStore:
        """A store on the collection ``collection_name``, created with
        ``dim`` (the embedding model's dimension) and ``metric`` if missing.
        The database is ``database``, or one opened at ``path`` or connected
        to at ``url`` (exactly one; the store then owns it: :meth:`close`)."""
        opened, owned = open_database(database, path, url)
        try:
            if dim is None:
                collection = opened.get_collection(collection_name)
            else:
                collection = opened.get_or_create_collection(collection_name, dim=dim, metric=metric)
        except CollectionNotFoundError as error:
            if owned:
                opened.close()
            raise CollectionNotFoundError(f"{error}; give dim= to create it") from error
        except BaseException:
            if owned:
                opened.close()
            raise
        return cls(collection, owned_database=opened if owned else None)

    @classmethod
    def class_name(cls) -> str:
        return "VecdbVectorStore"

    @property
    def client(self) -> CollectionAPI:
        """The vecdb collection."""
        return self._collection

    def close(self) -> None:
        """Close the database :meth:`from_params` opened for this store (a
        store built on a collection it was given leaves it open)."""
        if self._owned_database is not None:
            self._owned_database.close()

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        """Store nodes (each with its embedding), replacing those with the
        same ids; returns their ids."""
        if not nodes:
            return []
        ids = [node.node_id for node in nodes]
        vectors = np.asarray([node.get_embedding() for node in nodes], dtype=np.float32)
        documents = [node.get_content(metadata_mode=MetadataMode.NONE) for node in nodes]
        payloads = [{**node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata),
                     NODE_ID_FIELD: node.node_id} for node in nodes]
        self._collection.upsert(ids, vectors, payloads, documents=documents)
        return ids

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete the nodes of the source document ``ref_doc_id``."""
        self._collection.delete(filter={REF_DOC_ID_FIELD: ref_doc_id})

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest to ``query_embedding``
        among those ``filters``, ``doc_ids`` and ``node_ids`` allow, best
        first. Keyword
        arguments go to :meth:`vecdb.CollectionAPI.search` (``ef``, ...)."""
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise InvalidArgumentError(f"VecdbVectorStore answers {VectorStoreQueryMode.DEFAULT.value!r} queries "
                                       f"(by embedding), not {query.mode.value!r}")
        if query.query_embedding is None:
            raise InvalidArgumentError("a query needs query_embedding")
        hits = self._collection.search(np.asarray(query.query_embedding, dtype=np.float32), query.similarity_top_k,
                                       filter=self._query_filter(query), with_document=True, **kwargs)
        negate = self._collection.metric == "l2"
        return VectorStoreQueryResult(nodes=[_node(hit) for hit in hits],
                                      similarities=[-hit.score if negate else hit.score for hit in hits],
                                      ids=[str(hit.id) for hit in hits])

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)

    @staticmethod
    def _query_filter(query: VectorStoreQuery) -> Optional[Dict[str, Any]]:
        parts = []
        if query.filters is not None and query.filters.filters:
            parts.append(to_vecdb_filter(query.filters))
        if query.doc_ids is not None:
            parts.append({REF_DOC_ID_FIELD: {"$in": list(query.doc_ids)}})
        # An empty list is no restriction: VectorStoreIndex passes the node ids
        # it keeps itself, none for a store that keeps the text.
        if query.node_ids:
            parts.append({NODE_ID_FIELD: {"$in": list(query.node_ids)}})
        return None if not parts else parts[0] if len(parts) == 1 else {"$and": parts}

    def get_nodes(self, node_ids: Optional[List[str]] = None,
                  filters: Optional[MetadataFilters] = None) -> List[BaseNode]:
        """The stored nodes with these ids (in that order; missing ones are
        left out) and/or matching ``filters``; every node with neither."""
        return [_node(record) for record in self._records(node_ids, filters, with_content=True)]

    async def aget_nodes(self, node_ids: Optional[List[str]] = None,
                         filters: Optional[MetadataFilters] = None) -> List[BaseNode]:
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    def delete_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None,
                     **delete_kwargs: Any) -> None:
        """Delete the nodes with these ids and/or matching ``filters``
        (both given: those with these ids that match); every node with
        neither."""
        if node_ids is not None and not (filters and filters.filters):
            if node_ids:
                self._collection.delete(list(node_ids))
            return
        ids = [record.id for record in self._records(node_ids, filters, with_content=False)]
        if ids:
            self._collection.delete(ids)

    async def adelete_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None,
                            **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    def clear(self) -> None:
        """Delete every node (the collection stays)."""
        self.delete_nodes()

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    def _records(self, node_ids: Optional[List[str]], filters: Optional[MetadataFilters], *,
                 with_content: bool) -> List[Record]:
        """The stored points with these ids and/or matching ``filters``."""
        if filters is None or not filters.filters:
            if node_ids is None:
                return scroll_all(self._collection, with_payload=with_content, with_document=with_content)
            return self._collection.get(list(node_ids), with_payload=with_content, with_document=with_content)
        matching = scroll_all(self._collection, to_vecdb_filter(filters), with_payload=with_content,
                              with_document=with_content)
        if node_ids is None:
            return matching
        by_id = {str(record.id): record for record in matching}
        return [by_id[node_id] for node_id in node_ids if node_id in by_id]


def to_vecdb_filter(filters: MetadataFilters) -> Dict[str, Any]:
    """LlamaIndex ``MetadataFilters`` as a vecdb filter (nested ones too).
    ``EQ NE GT GTE LT LTE IN NIN`` are vecdb's operators of the same names,
    ``ANY`` (a list field holding any of the values) ``$in``, ``ALL``
    (holding each) an ``$and`` of equalities, ``CONTAINS`` (a list field
    holding the value) equality, ``TEXT_MATCH`` (a substring,
    case-sensitive) ``$contains``, ``IS_EMPTY`` a missing field, null, ``""``
    or ``[]``; conditions ``AND OR NOT`` (none matches) are ``$and $or``
    and ``$not`` of ``$or``. Anything else raises
    :class:`vecdb.errors.InvalidFilterError`."""
    if not filters.filters:
        raise InvalidFilterError("MetadataFilters with no filters")
    parts = [to_vecdb_filter(part) if isinstance(part, MetadataFilters) else _condition(part)
             for part in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return parts[0] if len(parts) == 1 else {"$and": parts}
    if condition == FilterCondition.OR:
        return parts[0] if len(parts) == 1 else {"$or": parts}
    if condition == FilterCondition.NOT:
        return {"$not": parts[0] if len(parts) == 1 else {"$or": parts}}
    raise InvalidFilterError(f"vecdb has no filter condition {condition.value!r}")


def _condition(part: MetadataFilter) -> Dict[str, Any]:
    key, value, operator = part.key, part.value, part.operator
    if operator in _COMPARISONS:
        return {key: {_COMPARISONS[operator]: value}}
    if operator == FilterOperator.ALL:
        if not isinstance(value, list) or not value:
            raise InvalidFilterError(f"ALL on {key!r} takes a non-empty list of values, got {value!r}")
        return {"$and": [{key: {"$eq": item}} for item in value]}
    if operator == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"$exists": False}}, {key: {"$eq": None}}, {key: {"$eq": ""}}, {key: {"$eq": []}}]}
    raise InvalidFilterError(f"vecdb cannot filter with {operator.name} (on {key!r}); TEXT_MATCH is case-sensitive "
                             "substring matching")


def _node(point: Union[Hit, Record]) -> BaseNode:
    """The node stored as ``point``; a plain ``TextNode`` for a point the
    adapter did not write."""
    payload = point.payload or {}
    if "_node_content" in payload:
        return metadata_dict_to_node(payload, text=point.document)
    return TextNode(id_=str(point.id), text=point.document or "", metadata=payload)
