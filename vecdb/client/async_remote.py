"""A database on a vecdb server, for asyncio: :class:`vecdb.RemoteDatabase`
and :class:`vecdb.RemoteCollection` with each method a coroutine, taking the
same arguments and returning the same results, raising the same
:mod:`vecdb.errors` classes (tests/api/test_protocols.py checks the
signatures against :mod:`vecdb.api`; the API suite runs on it through a
synchronous wrapper, the ``remote-async`` ``db`` of tests/conftest.py).

What differs: ``async with`` instead of ``with``; ``await col.count()``
instead of ``len(col)``; ``payload_indexes`` and ``text_indexes``, read from
the server, are coroutines (``await col.payload_indexes()``), the other
settings still properties. Each method builds its request and the reading
of its answer in :mod:`.collection_calls` or :mod:`.database_calls` (shared
with :mod:`.remote`) and sends it on one httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union, cast, overload

from vecdb import arrow
from vecdb.client import database_calls
from vecdb.client.collection_calls import RemoteCollectionBase
from vecdb.client.messages import Call
from vecdb.client.async_transport import AsyncTransport
from vecdb.config import PQ, IndexSpec, VectorSpec
from vecdb.fusion import Fusion
from vecdb.plans import Plan
from vecdb.records import Hit, Record
from vecdb.errors import InvalidArgumentError
from vecdb.reports import Explanation, TuneReport
from vecdb.text_in import is_text_batch

if TYPE_CHECKING:  # optional: only text in, to_arrow and to_pandas need them
    import pandas
    import pyarrow

    from vecdb.embeddings import EmbeddingFunction

T = TypeVar("T")


class AsyncRemoteCollection(RemoteCollectionBase):
    """A collection on a vecdb server, its methods coroutines (see
    :class:`vecdb.RemoteCollection`)."""

    def __init__(self, transport: AsyncTransport, info: Dict[str, Any]) -> None:
        super().__init__(info)
        self._transport = transport

    async def _send(self, call: Call[T]) -> T:
        return call.result(await self._transport.call(call.method, call.path, call.body))

    async def payload_indexes(self) -> Dict[str, str]:
        """See :attr:`vecdb.Collection.payload_indexes` (read from the server:
        another client may change them)."""
        return await self._send(self._payload_indexes_call())

    async def text_indexes(self) -> Dict[str, Dict[str, Any]]:
        """See :attr:`vecdb.Collection.text_indexes` (read from the server:
        another client may change them)."""
        return await self._send(self._text_indexes_call())

    # ---- writes ----

    async def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
                     sparse: Optional[Dict[str, Any]] = None,
                     documents: Optional[Sequence[Optional[str]]] = None) -> None:
        """See :meth:`vecdb.Collection.upsert`."""
        await self._send(self._upsert_call(ids, vectors, payloads, sparse=sparse, documents=documents))

    async def add(self, ids: Any, documents: Sequence[str],  # type: ignore[override]
                  payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
                  sparse: Optional[Dict[str, Any]] = None, batch_size: int = 512) -> None:
        """See :meth:`vecdb.api.CollectionAPI.add`: embedded on a worker
        thread (the embedding function is not a coroutine), then upserted."""
        ids, texts, vectors = await asyncio.to_thread(self._embedded_documents, ids, documents, batch_size)
        await self.upsert(ids, vectors, payloads, sparse=sparse, documents=texts)

    async def train_quantizer(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.train_quantizer`."""
        await self._send(self._train_quantizer_call(using))

    async def learn_rotation(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.learn_rotation`."""
        await self._send(self._learn_rotation_call(using))

    async def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete`."""
        return await self._send(self._delete_call(ids, filter=filter))

    async def update_payload(self, ids: Any = None, payload: Optional[Dict[str, Any]] = None, *,
                             filter: Optional[Dict[str, Any]] = None, merge: bool = True) -> int:
        """See :meth:`vecdb.Collection.update_payload`."""
        return await self._send(self._update_payload_call(ids, payload, filter=filter, merge=merge))

    async def delete_payload_keys(self, ids: Any = None, keys: Optional[Sequence[str]] = None, *,
                                  filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete_payload_keys`."""
        return await self._send(self._delete_payload_keys_call(ids, keys, filter=filter))

    async def create_payload_index(self, field: str, kind: str) -> None:
        """See :meth:`vecdb.Collection.create_payload_index`."""
        await self._send(self._create_payload_index_call(field, kind))

    async def drop_payload_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_payload_index`."""
        await self._send(self._drop_payload_index_call(field))

    async def create_text_index(self, field: str, *, language: Optional[str] = "english", stopwords: Any = None,
                                k1: float = 1.2, b: float = 0.75) -> None:
        """See :meth:`vecdb.Collection.create_text_index`."""
        await self._send(self._create_text_index_call(field, language=language, stopwords=stopwords, k1=k1, b=b))

    async def drop_text_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_text_index`."""
        await self._send(self._drop_text_index_call(field))

    async def compact(self) -> int:
        """See :meth:`vecdb.Collection.compact`."""
        return await self._send(self._compact_call())

    async def wait_indexed(self, timeout: Optional[float] = None) -> bool:
        """See :meth:`vecdb.Collection.wait_indexed`."""
        return await self._send(self._wait_indexed_call(timeout))

    # ---- reads ----

    @overload
    async def search(self, query: Sequence[float], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
                     ef: Optional[int] = None, dims: Optional[int] = None,
                     plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
                     with_vector: bool = False, with_document: bool = False,
                     text: None = None, text_field: Optional[str] = None,
                     sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[Hit]: ...

    @overload
    async def search(self, query: Sequence[Sequence[float]], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
                     ef: Optional[int] = None, dims: Optional[int] = None,
                     plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
                     with_vector: bool = False, with_document: bool = False,
                     text: None = None, text_field: Optional[str] = None,
                     sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[List[Hit]]: ...

    @overload
    async def search(self, query: Optional[Sequence[float]] = None, k: int = 10, *,
                     filter: Optional[Dict[str, Any]] = None, ef: Optional[int] = None, dims: Optional[int] = None,
                     plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
                     with_vector: bool = False, with_document: bool = False,
                     text: Optional[str] = None, text_field: Optional[str] = None,
                     sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
                     using: Optional[str] = None) -> List[Hit]: ...

    @overload
    async def search(self, query: Any = None, k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
                     ef: Optional[int] = None, dims: Optional[int] = None,
                     plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
                     with_vector: bool = False, with_document: bool = False,
                     text: Optional[str] = None, text_field: Optional[str] = None,
                     sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
                     group_by: Optional[str] = None, group_size: int = 1, using: Optional[str] = None) -> Any: ...

    async def search(
        self,
        query: Any = None,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
        with_document: bool = False,
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        sparse: Any = None,
        fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
        group_by: Optional[str] = None,
        group_size: int = 1,
        using: Optional[str] = None,
    ) -> Any:
        """See :meth:`vecdb.Collection.search` (a text query is embedded here,
        on a worker thread)."""
        if isinstance(query, str) or is_text_batch(query):  # only text waits for a worker thread
            query = await asyncio.to_thread(self._embedded_query, query)
        return await self._send(self._search_call(
            query, k, filter=filter, ef=ef, dims=dims, plan=plan, with_payload=with_payload, with_vector=with_vector,
            with_document=with_document, text=text, text_field=text_field, sparse=sparse, fusion=fusion,
            group_by=group_by, group_size=group_size, using=using))

    async def recommend(self, positive: Sequence[Any], negative: Optional[Sequence[Any]] = None, k: int = 10, *,
                        filter: Optional[Dict[str, Any]] = None, strategy: str = "average_vector",
                        ef: Optional[int] = None, with_payload: bool = True, with_vector: bool = False,
                        with_document: bool = False, using: Optional[str] = None) -> List[Hit]:
        """See :meth:`vecdb.Collection.recommend`."""
        return await self._send(self._recommend_call(positive, negative, k, filter=filter, strategy=strategy, ef=ef,
                                                     with_payload=with_payload, with_vector=with_vector,
                                                     with_document=with_document, using=using))

    async def explain(
        self,
        query: Any = None,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        execute: bool = False,
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        sparse: Any = None,
        fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
        using: Optional[str] = None,
    ) -> Explanation:
        """See :meth:`vecdb.Collection.explain`."""
        return await self._send(self._explain_call(
            query, k, filter=filter, ef=ef, dims=dims, plan=plan, execute=execute, text=text, text_field=text_field,
            sparse=sparse, fusion=fusion, using=using))

    async def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0,
                   using: Optional[str] = None) -> TuneReport:
        """See :meth:`vecdb.Collection.tune` (runs on the server; may take a while)."""
        return await self._send(self._tune_call(target_recall, k, queries=queries, seed=seed, using=using))

    async def get(self, ids: Any, *, with_payload: bool = True, with_vector: bool = False,
                  with_document: bool = False) -> List[Record]:
        """See :meth:`vecdb.Collection.get`."""
        return await self._send(self._get_call(ids, with_payload=with_payload, with_vector=with_vector,
                                               with_document=with_document))

    async def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.count`."""
        return await self._send(self._count_call(filter))

    async def scroll(
        self,
        filter: Optional[Dict[str, Any]] = None,
        limit: int = 100,
        cursor: Optional[int] = None,
        *,
        with_payload: bool = True,
        with_vector: bool = False,
        with_document: bool = False,
    ) -> Tuple[List[Record], Optional[int]]:
        """See :meth:`vecdb.Collection.scroll`."""
        return await self._send(self._scroll_call(filter, limit, cursor, with_payload=with_payload,
                                                  with_vector=with_vector, with_document=with_document))

    async def stats(self) -> Dict[str, Any]:
        """See :meth:`vecdb.Collection.stats`."""
        return await self._send(self._stats_call())

    # ---- Arrow tables and DataFrames (vecdb.arrow: on upsert and scroll) ----

    async def upsert_arrow(self, table: Any, *, id: str = "id", vector: Union[str, Mapping[str, str]] = "vector",
                           payload: Optional[Sequence[str]] = None, document: Optional[str] = None,
                           batch_size: int = 1000) -> int:
        """See :meth:`vecdb.api.CollectionAPI.upsert_arrow`."""
        upserted = 0
        try:
            # cast: arrow reads only the collection's settings (dim, vectors) here, never awaits it.
            for batch in arrow.arrow_batches(cast(Any, self), table, id=id, vector=vector, payload=payload,
                                             document=document, batch_size=batch_size):
                with arrow.rows_of(batch):
                    await self.upsert(batch.ids, batch.vectors, batch.payloads, documents=batch.documents)
                upserted += len(batch.ids)
        except InvalidArgumentError as exc:
            raise arrow.written_before(exc, upserted) from None
        return upserted

    async def to_arrow(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                       with_payload: bool = True, with_document: bool = False) -> pyarrow.Table:
        """See :meth:`vecdb.api.CollectionAPI.to_arrow`."""
        pages, cursor = [], None
        while True:
            records, cursor = await self.scroll(filter, arrow.DEFAULT_BATCH_SIZE, cursor, with_payload=with_payload,
                                                with_vector=with_vector, with_document=with_document)
            pages.append(records)
            if cursor is None:
                break
        return arrow.table_from_pages(cast(Any, self), pages, with_vector=with_vector,  # its settings only
                                      with_payload=with_payload, with_document=with_document)

    async def to_pandas(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                        with_payload: bool = True, with_document: bool = False) -> pandas.DataFrame:
        """See :meth:`vecdb.api.CollectionAPI.to_pandas`."""
        return arrow.dataframe(await self.to_arrow(filter, with_vector=with_vector, with_payload=with_payload,
                                                   with_document=with_document))


class AsyncRemoteDatabase:
    """A database on a vecdb server, its methods coroutines (see
    :class:`vecdb.RemoteDatabase`). Use :func:`vecdb.connect_async`."""

    def __init__(self, url: str, *, api_key: Optional[str] = None, timeout: float = 60.0) -> None:
        self.url = url
        self._transport = AsyncTransport(url, api_key, timeout)
        self._collections: Dict[str, AsyncRemoteCollection] = {}

    async def __aenter__(self) -> "AsyncRemoteDatabase":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"vecdb.AsyncRemoteDatabase({self.url!r})"

    async def _send(self, call: Call[T]) -> T:
        return call.result(await self._transport.call(call.method, call.path, call.body))

    async def create_collection(
        self,
        name: str,
        dim: Optional[int] = None,
        metric: str = "cosine",
        *,
        index: Optional[IndexSpec] = None,
        quantization: Optional[PQ] = None,
        mrl_dims: Optional[Sequence[int]] = None,
        rotate: Optional[str] = None,
        sparse: Optional[Sequence[str]] = None,
        vectors: Optional[Dict[str, VectorSpec]] = None,
        embedding: Optional[EmbeddingFunction] = None,
        exist_ok: bool = False,
    ) -> AsyncRemoteCollection:
        """See :meth:`vecdb.Database.create_collection` (the embedding
        function runs here; the server keeps its config)."""
        return self._handle(await self._send(database_calls.create_collection(
            name, dim, metric, index=index, quantization=quantization, mrl_dims=mrl_dims, rotate=rotate,
            sparse=sparse, vectors=vectors, embedding=embedding, exist_ok=exist_ok)), embedding)

    def _handle(self, info: Dict[str, Any], embedding: Optional[EmbeddingFunction] = None) -> AsyncRemoteCollection:
        """One handle per collection, as in process; its settings refreshed
        (another client may have dropped and recreated it)."""
        collection = self._collections.get(info["name"])
        if collection is None or collection._info.get("embedding") != info.get("embedding"):
            collection = self._collections[info["name"]] = AsyncRemoteCollection(self._transport, info)
        collection._info = info
        if embedding is not None:
            collection._attach_embedding(info.get("embedding"), embedding)
        return collection

    async def get_or_create_collection(self, name: str, dim: Optional[int] = None, metric: str = "cosine", *,
                                       index: Optional[IndexSpec] = None, quantization: Optional[PQ] = None,
                                       mrl_dims: Optional[Sequence[int]] = None,
                                       rotate: Optional[str] = None,
                                       sparse: Optional[Sequence[str]] = None,
                                       vectors: Optional[Dict[str, VectorSpec]] = None,
                                       embedding: Optional[EmbeddingFunction] = None) -> AsyncRemoteCollection:
        """See :meth:`vecdb.Database.get_or_create_collection`."""
        return await self.create_collection(name, dim, metric, index=index, quantization=quantization,
                                            mrl_dims=mrl_dims, rotate=rotate, sparse=sparse, vectors=vectors,
                                            embedding=embedding, exist_ok=True)

    async def get_collection(self, name: str, embedding: Optional[EmbeddingFunction] = None) -> AsyncRemoteCollection:
        """See :meth:`vecdb.Database.get_collection`."""
        return self._handle(await self._send(database_calls.get_collection(name)), embedding)

    async def list_collections(self) -> List[str]:
        """See :meth:`vecdb.Database.list_collections`."""
        return await self._send(database_calls.list_collections())

    async def describe(self) -> List[Dict[str, Any]]:
        """See :meth:`vecdb.Database.describe`."""
        return await self._send(database_calls.describe())

    async def drop_collection(self, name: str) -> None:
        """See :meth:`vecdb.Database.drop_collection`."""
        await self._send(database_calls.drop_collection(name))
        self._collections.pop(name, None)

    async def compact(self) -> int:
        """See :meth:`vecdb.Database.compact`."""
        return await self._send(database_calls.compact())

    async def backup(self, destination: Union[str, os.PathLike]) -> Path:
        """Have the server back up the whole database (a consistent copy,
        made while it serves) and download the archive to ``destination``:
        a new file, or a folder to put it in under the server's name for it
        (an existing one, or a path ending in a separator, created if
        missing). The archive stays on the server too (``GET /v1/backups``).
        See :meth:`vecdb.Database.backup`."""
        target = database_calls.backup_destination(destination)
        name = await self._send(database_calls.create_backup())
        if target.is_dir():
            target = target / name
        await self._transport.download(database_calls.archive_path(name), target)
        return target

    async def refresh(self) -> None:
        """Nothing to do: every call reads the server's current state."""

    async def close(self) -> None:
        """Close the connection pool (the server's database stays open)."""
        await self._transport.close()


def connect_async(url: str = "http://127.0.0.1:8000", *, api_key: Optional[str] = None,
                  timeout: float = 60.0) -> AsyncRemoteDatabase:
    """A database served by ``vecdb serve`` at ``url``, its methods
    coroutines (:func:`vecdb.connect`'s, with the same arguments and
    results)::

        async with vecdb.connect_async("http://127.0.0.1:8000") as db:
            docs = await db.get_collection("docs")
            hits = await asyncio.gather(*(docs.search(query, k=10) for query in queries))

    Needs httpx (``pip install "vecdb-engine[client]"``). Calls share one
    connection pool of up to 100 connections (more requests at once wait
    for one); use the database on one event loop. ``timeout`` (seconds)
    bounds each read (search, get, count, ...) once it has a connection;
    writes and upkeep (upsert, delete, tune, compact, backups) wait for the
    server however long they take, since giving up would leave their
    outcome unknown. ``async with`` (or ``await db.close()``) closes the
    pool.
    """
    return AsyncRemoteDatabase(url, api_key=api_key, timeout=timeout)
