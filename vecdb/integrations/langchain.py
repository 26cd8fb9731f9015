"""A vecdb collection as a LangChain vector store::

    from langchain_core.documents import Document
    from vecdb.integrations.langchain import VecdbVectorStore

    store = VecdbVectorStore.from_texts(["vecdb is fast", "LMDB is durable"], embeddings,
                                        path="./data", collection_name="notes")
    store.add_documents([Document("HNSW is a graph", metadata={"topic": "index"})])
    store.similarity_search("which index?", k=2, filter={"topic": "index"})
    retriever = store.as_retriever(search_type="mmr")

Each LangChain document is one point: its ``page_content`` the point's
document, its ``metadata`` the payload, its ``id`` the point id (a uuid4
when not given). ``filter=`` takes vecdb's filter language
(:mod:`vecdb.query.filters`: ``{"topic": "index"}``, ``{"year": {"$gte":
2020}}``, ``$and``/``$or``/``$not``; ``{"$document": {"$contains": ...}}`` on
the text), the Mongo style LangChain's stores share. Needs
``langchain-core`` (extra ``vecdb-engine[langchain]``).
"""

from __future__ import annotations

import math
import os
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.embeddings.protocol import EmbeddingFunction
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError
from vecdb.integrations.collections import open_database, scroll_all
from vecdb.records import Hit, Record

# Texts embedded and upserted per call by add_texts (the texts, their metadatas, their ids).
DEFAULT_BATCH_SIZE = 1000
Batch = Tuple[List[str], List[Optional[Dict[str, Any]]], List[Optional[str]]]


class VecdbEmbeddings(Embeddings):
    """A vecdb embedding function (:mod:`vecdb.embeddings`) as LangChain
    ``Embeddings``."""

    def __init__(self, function: EmbeddingFunction) -> None:
        self.function = function

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return self.function(texts).tolist() if texts else []

    def embed_query(self, text: str) -> List[float]:
        return self.function([text])[0].tolist()


class VecdbVectorStore(VectorStore):
    """LangChain's ``VectorStore`` on a vecdb collection (embedded or
    remote). ``embedding``: LangChain ``Embeddings`` or a vecdb embedding
    function (:mod:`vecdb.embeddings`) of the collection's dimension; None:
    the collection's own (``create_collection(..., embedding=...)``).

    Scores (``similarity_search_with_score``) are vecdb's: cosine similarity
    or dot product (higher is better), or the Euclidean distance for an
    ``"l2"`` collection (lower is better). Relevance scores
    (``similarity_search_with_relevance_scores``, the retriever's
    ``score_threshold``) map them into [0, 1]: ``(1 + s) / 2`` for cosine
    and for dot products of unit vectors, ``1 - d / sqrt(2)`` for distances
    between unit vectors.
    """

    def __init__(self, collection: CollectionAPI, embedding: Union[Embeddings, EmbeddingFunction, None] = None, *,
                 owned_database: Optional[DatabaseAPI] = None) -> None:
        """``owned_database``: a database this store closes in :meth:`close`
        (the one :meth:`from_texts` opened)."""
        if embedding is None:
            embedding = collection.embedding
            if embedding is None:
                raise InvalidArgumentError(f"collection {collection.name!r} has no embedding function: pass embedding=")
        self.collection = collection
        self._embedding = embedding if isinstance(embedding, Embeddings) else VecdbEmbeddings(embedding)
        self._owned_database = owned_database

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    def close(self) -> None:
        """Close the database :meth:`from_texts` opened for this store (a
        store built on a collection it was given leaves it open)."""
        if self._owned_database is not None:
            self._owned_database.close()

    @classmethod
    def from_texts(
        cls,
        texts: List[str],
        embedding: Union[Embeddings, EmbeddingFunction],
        metadatas: Optional[List[Dict[str, Any]]] = None,
        *,
        ids: Optional[List[str]] = None,
        database: Optional[DatabaseAPI] = None,
        path: Optional[Union[str, os.PathLike]] = None,
        url: Optional[str] = None,
        collection_name: str = "langchain",
        metric: Optional[str] = None,
        **kwargs: Any,
    ) -> VecdbVectorStore:
        """A store on the collection ``collection_name`` holding ``texts``
        (added to those it has). A missing collection is created with
        ``embedding``'s dimension and ``metric`` (None: ``"cosine"``), and
        with ``embedding`` itself when it is a vecdb embedding function (its
        ``add`` and text queries then use it too); an existing one must have
        ``metric`` if given. The database is
        ``database``, or one opened at ``path`` or connected to at ``url``
        (exactly one; the store then owns it: :meth:`close`)."""
        if kwargs:
            raise TypeError(f"from_texts() got unexpected keyword arguments {sorted(kwargs)}")
        texts, all_metadatas, all_ids = _checked(texts, metadatas, ids)
        function: Optional[EmbeddingFunction] = None
        if isinstance(embedding, Embeddings):
            embeddings = embedding
        else:
            function, embeddings = embedding, VecdbEmbeddings(embedding)
        vectors = embeddings.embed_documents(texts)
        dim = len(vectors[0]) if vectors else len(embeddings.embed_query(""))
        opened, owned = open_database(database, path, url)
        try:
            collection = _collection(opened, collection_name, dim, metric, function)
            store = cls(collection, embeddings, owned_database=opened if owned else None)
            if texts:
                store._upsert(texts, vectors, all_metadatas, all_ids)
        except BaseException:
            if owned:
                opened.close()
            raise
        return store

    def add_texts(self, texts: Iterable[str], metadatas: Optional[List[Dict[str, Any]]] = None, *,
                  ids: Optional[List[str]] = None, batch_size: int = DEFAULT_BATCH_SIZE, **kwargs: Any) -> List[str]:
        """Embed ``texts`` and store them (replacing points with the same
        ids), ``batch_size`` at a time (each batch all or nothing); returns
        their ids. An id left out or None gets a uuid4."""
        _no_options("add_texts", kwargs)
        point_ids: List[str] = []
        for batch_texts, batch_metadatas, batch_ids in _batches(_checked(texts, metadatas, ids), batch_size):
            point_ids += self._upsert(batch_texts, self._embedding.embed_documents(batch_texts), batch_metadatas,
                                      batch_ids)
        return point_ids

    async def aadd_texts(self, texts: Iterable[str], metadatas: Optional[List[Dict[str, Any]]] = None, *,
                         ids: Optional[List[str]] = None, batch_size: int = DEFAULT_BATCH_SIZE,
                         **kwargs: Any) -> List[str]:
        _no_options("aadd_texts", kwargs)
        point_ids: List[str] = []
        for batch_texts, batch_metadatas, batch_ids in _batches(_checked(texts, metadatas, ids), batch_size):
            vectors = await self._embedding.aembed_documents(batch_texts)
            point_ids += await run_in_executor(None, self._upsert, batch_texts, vectors, batch_metadatas, batch_ids)
        return point_ids

    def _upsert(self, texts: List[str], vectors: Sequence[Sequence[float]],
                metadatas: Sequence[Optional[Dict[str, Any]]], ids: Sequence[Optional[str]]) -> List[str]:
        point_ids = [str(uuid.uuid4()) if id_ is None else str(id_) for id_ in ids]
        payloads = [dict(metadata or {}) for metadata in metadatas]
        self.collection.upsert(point_ids, np.asarray(vectors, dtype=np.float32), payloads, documents=texts)
        return point_ids

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Delete the points with these ids (missing ones are skipped), or,
        with ``filter=`` (a vecdb filter), those it matches too; with
        neither, every point."""
        filter = kwargs.pop("filter", None)
        _no_options("delete", kwargs)
        if ids is None and filter is None:
            ids = [str(record.id) for record in scroll_all(self.collection)]
        if ids or filter:
            self.collection.delete(ids or None, filter=filter)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        """The stored documents with these ids, in the order asked; missing
        ids are left out."""
        return [_document(record) for record in self.collection.get(list(ids), with_document=True)]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> List[Document]:
        """The ``k`` documents nearest to ``query``, best first. Keyword
        arguments go to :meth:`vecdb.CollectionAPI.search` (``filter``,
        ``ef``, ...)."""
        return [document for document, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> List[Document]:
        return [document for document, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4,
                                     **kwargs: Any) -> List[Tuple[Document, float]]:
        """:meth:`similarity_search` with each document's score (see the
        class docstring)."""
        return self.similarity_search_with_score_by_vector(self._embedding.embed_query(query), k, **kwargs)

    async def asimilarity_search_with_score(self, query: str, k: int = 4,
                                            **kwargs: Any) -> List[Tuple[Document, float]]:
        vector = await self._embedding.aembed_query(query)
        return await run_in_executor(None, self.similarity_search_with_score_by_vector, vector, k, **kwargs)

    def similarity_search_with_score_by_vector(self, embedding: Sequence[float], k: int = 4,
                                               **kwargs: Any) -> List[Tuple[Document, float]]:
        """The ``k`` documents nearest to the vector ``embedding`` with
        their scores, best first."""
        hits = self.collection.search(np.asarray(embedding, dtype=np.float32), k, with_document=True, **kwargs)
        return [(_document(hit), hit.score) for hit in hits]

    def similarity_search_by_vector(self, embedding: List[float], k: int = 4, **kwargs: Any) -> List[Document]:
        return [document for document, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      **kwargs: Any) -> List[Document]:
        """``k`` documents chosen among the ``fetch_k`` nearest to ``query``
        for both similarity to it and diversity among themselves
        (``lambda_mult``: 1 all similarity, 0 all diversity)."""
        return self.max_marginal_relevance_search_by_vector(self._embedding.embed_query(query), k, fetch_k,
                                                            lambda_mult, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, **kwargs: Any) -> List[Document]:
        vector = await self._embedding.aembed_query(query)
        return await run_in_executor(None, self.max_marginal_relevance_search_by_vector, vector, k, fetch_k,
                                     lambda_mult, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: List[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, **kwargs: Any) -> List[Document]:
        query = np.asarray(embedding, dtype=np.float32)
        hits = self.collection.search(query, fetch_k, with_vector=True, with_document=True, **kwargs)
        chosen = maximal_marginal_relevance(query, [_vector(hit).tolist() for hit in hits], lambda_mult=lambda_mult,
                                            k=k)
        return [_document(hits[index]) for index in chosen]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self.collection.metric == "l2":
            return _unit_distance_relevance
        return _similarity_relevance


def _collection(database: DatabaseAPI, name: str, dim: int, metric: Optional[str],
                function: Optional[EmbeddingFunction]) -> CollectionAPI:
    """The collection ``name`` (with embedding function ``function``, if
    any): created (``metric`` None: cosine) if missing, else checked
    against ``metric`` when given."""
    if metric is not None:
        return database.get_or_create_collection(name, dim=dim, metric=metric, embedding=function)
    try:
        return database.get_collection(name, embedding=function)
    except CollectionNotFoundError:
        return database.get_or_create_collection(name, dim=dim, embedding=function)


def _similarity_relevance(similarity: float) -> float:
    """A cosine similarity (or a dot product of unit vectors), in [-1, 1],
    as a relevance in [0, 1]."""
    return (1.0 + similarity) / 2.0


def _unit_distance_relevance(distance: float) -> float:
    """A Euclidean distance between unit vectors, in [0, 2], as a relevance
    in [0, 1] (LangChain's own mapping: 0 beyond sqrt(2), orthogonal)."""
    return max(0.0, 1.0 - distance / math.sqrt(2))


def _document(point: Union[Hit, Record]) -> Document:
    return Document(id=str(point.id), page_content=point.document or "", metadata=point.payload or {})


def _vector(hit: Hit) -> np.ndarray:
    if not isinstance(hit.vector, np.ndarray):
        raise InvalidArgumentError("max_marginal_relevance_search needs a collection of one unnamed vector")
    return hit.vector


def _checked(texts: Iterable[str], metadatas: Optional[Sequence[Optional[Dict[str, Any]]]],
             ids: Optional[Sequence[Optional[str]]]) -> Batch:
    """``texts`` with a metadata and an id (None where not given) each."""
    texts = list(texts)
    if metadatas is not None and len(metadatas) != len(texts):
        raise InvalidArgumentError(f"{len(metadatas)} metadatas for {len(texts)} texts")
    if ids is not None and len(ids) != len(texts):
        raise InvalidArgumentError(f"{len(ids)} ids for {len(texts)} texts")
    return texts, list(metadatas or [None] * len(texts)), list(ids or [None] * len(texts))


def _batches(batch: Batch, batch_size: int) -> Iterator[Batch]:
    """``batch`` cut into batches of ``batch_size`` texts."""
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
    texts, metadatas, ids = batch
    for start in range(0, len(texts), batch_size):
        end = start + batch_size
        yield texts[start:end], metadatas[start:end], ids[start:end]


def _no_options(method: str, options: Dict[str, Any]) -> None:
    if options:
        raise TypeError(f"{method}() got unexpected keyword arguments {sorted(options)}")
