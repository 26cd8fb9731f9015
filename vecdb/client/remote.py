"""A database on a vecdb server: :class:`vecdb.api.DatabaseAPI` and
:class:`vecdb.api.CollectionAPI` over HTTP, with the same methods, arguments,
return types and exceptions as :class:`vecdb.Database` and
:class:`vecdb.Collection` (tests/api/test_protocols.py checks the signatures;
the API suite, the ``db`` fixture of tests/conftest.py, runs on both).
Values are checked by the server, so errors are the embedded ones.

Each method builds its request and the reading of its answer in
:mod:`.collection_calls` or :mod:`.database_calls` (shared with the
asynchronous client, :mod:`.async_remote`) and sends it here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union, overload

from vecdb import arrow
from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.client import database_calls
from vecdb.client.collection_calls import RemoteCollectionBase
from vecdb.client.messages import Call
from vecdb.client.transport import Transport
from vecdb.config import PQ, IndexSpec, VectorSpec
from vecdb.fusion import Fusion
from vecdb.plans import Plan
from vecdb.records import Hit, Record
from vecdb.reports import Explanation, TuneReport

T = TypeVar("T")

if TYPE_CHECKING:  # optional: only text in, to_arrow and to_pandas need them
    import pandas
    import pyarrow

    from vecdb.embeddings import EmbeddingFunction


class RemoteCollection(RemoteCollectionBase, CollectionAPI):
    """A collection on a vecdb server (see :class:`vecdb.Collection`)."""

    def __init__(self, transport: Transport, info: Dict[str, Any]) -> None:
        super().__init__(info)
        self._transport = transport

    def _send(self, call: Call[T]) -> T:
        return call.result(self._transport.call(call.method, call.path, call.body))

    @property
    def payload_indexes(self) -> Dict[str, str]:
        """Read from the server each time (another client may change them)."""
        return self._send(self._payload_indexes_call())

    @property
    def text_indexes(self) -> Dict[str, Dict[str, Any]]:
        """Read from the server each time (another client may change them)."""
        return self._send(self._text_indexes_call())

    def __len__(self) -> int:
        return self.count()

    # ---- writes ----

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
               sparse: Optional[Dict[str, Any]] = None, documents: Optional[Sequence[Optional[str]]] = None) -> None:
        """See :meth:`vecdb.Collection.upsert`."""
        self._send(self._upsert_call(ids, vectors, payloads, sparse=sparse, documents=documents))

    def train_quantizer(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.train_quantizer`."""
        self._send(self._train_quantizer_call(using))

    def learn_rotation(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.learn_rotation`."""
        self._send(self._learn_rotation_call(using))

    def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete`."""
        return self._send(self._delete_call(ids, filter=filter))

    def update_payload(self, ids: Any = None, payload: Optional[Dict[str, Any]] = None, *,
                       filter: Optional[Dict[str, Any]] = None, merge: bool = True) -> int:
        """See :meth:`vecdb.Collection.update_payload`."""
        return self._send(self._update_payload_call(ids, payload, filter=filter, merge=merge))

    def delete_payload_keys(self, ids: Any = None, keys: Optional[Sequence[str]] = None, *,
                            filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete_payload_keys`."""
        return self._send(self._delete_payload_keys_call(ids, keys, filter=filter))

    def create_payload_index(self, field: str, kind: str) -> None:
        """See :meth:`vecdb.Collection.create_payload_index`."""
        self._send(self._create_payload_index_call(field, kind))

    def drop_payload_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_payload_index`."""
        self._send(self._drop_payload_index_call(field))

    def create_text_index(self, field: str, *, language: Optional[str] = "english", stopwords: Any = None,
                          k1: float = 1.2, b: float = 0.75) -> None:
        """See :meth:`vecdb.Collection.create_text_index`."""
        self._send(self._create_text_index_call(field, language=language, stopwords=stopwords, k1=k1, b=b))

    def drop_text_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_text_index`."""
        self._send(self._drop_text_index_call(field))

    def compact(self) -> int:
        """See :meth:`vecdb.Collection.compact`."""
        return self._send(self._compact_call())

    def wait_indexed(self, timeout: Optional[float] = None) -> bool:
        """See :meth:`vecdb.Collection.wait_indexed`."""
        return self._send(self._wait_indexed_call(timeout))

    # ---- reads ----

    @overload
    def search(self, query: Sequence[float], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Sequence[Sequence[float]], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[List[Hit]]: ...

    @overload
    def search(self, query: Optional[Sequence[float]] = None, k: int = 10, *,
               filter: Optional[Dict[str, Any]] = None, ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: Optional[str] = None, text_field: Optional[str] = None,
               sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
               using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Any = None, k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: Optional[str] = None, text_field: Optional[str] = None,
               sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
               group_by: Optional[str] = None, group_size: int = 1, using: Optional[str] = None) -> Any: ...

    def search(
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
        """See :meth:`vecdb.Collection.search` (a text query is embedded here)."""
        return self._send(self._search_call(
            self._embedded_query(query), k, filter=filter, ef=ef, dims=dims, plan=plan, with_payload=with_payload,
            with_vector=with_vector, with_document=with_document, text=text, text_field=text_field, sparse=sparse,
            fusion=fusion, group_by=group_by, group_size=group_size, using=using))

    def recommend(self, positive: Sequence[Any], negative: Optional[Sequence[Any]] = None, k: int = 10, *,
                  filter: Optional[Dict[str, Any]] = None, strategy: str = "average_vector",
                  ef: Optional[int] = None, with_payload: bool = True, with_vector: bool = False,
                  with_document: bool = False, using: Optional[str] = None) -> List[Hit]:
        """See :meth:`vecdb.Collection.recommend`."""
        return self._send(self._recommend_call(positive, negative, k, filter=filter, strategy=strategy, ef=ef,
                                               with_payload=with_payload, with_vector=with_vector,
                                               with_document=with_document, using=using))

    def explain(
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
        return self._send(self._explain_call(query, k, filter=filter, ef=ef, dims=dims, plan=plan, execute=execute,
                                             text=text, text_field=text_field, sparse=sparse, fusion=fusion,
                                             using=using))

    def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0,
             using: Optional[str] = None) -> TuneReport:
        """See :meth:`vecdb.Collection.tune` (runs on the server; may take a while)."""
        return self._send(self._tune_call(target_recall, k, queries=queries, seed=seed, using=using))

    def get(self, ids: Any, *, with_payload: bool = True, with_vector: bool = False,
            with_document: bool = False) -> List[Record]:
        """See :meth:`vecdb.Collection.get`."""
        return self._send(self._get_call(ids, with_payload=with_payload, with_vector=with_vector,
                                         with_document=with_document))

    def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.count`."""
        return self._send(self._count_call(filter))

    def scroll(
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
        return self._send(self._scroll_call(filter, limit, cursor, with_payload=with_payload,
                                            with_vector=with_vector, with_document=with_document))

    def stats(self) -> Dict[str, Any]:
        """See :meth:`vecdb.Collection.stats`."""
        return self._send(self._stats_call())

    # ---- Arrow tables and DataFrames (vecdb.arrow: on upsert and scroll) ----

    def upsert_arrow(self, table: Any, *, id: str = "id", vector: Union[str, Mapping[str, str]] = "vector",
                     payload: Optional[Sequence[str]] = None, document: Optional[str] = None,
                     batch_size: int = 1000) -> int:
        """See :meth:`vecdb.api.CollectionAPI.upsert_arrow`."""
        return arrow.upsert_arrow(self, table, id=id, vector=vector, payload=payload, document=document,
                                  batch_size=batch_size)

    def to_arrow(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                 with_payload: bool = True, with_document: bool = False) -> pyarrow.Table:
        """See :meth:`vecdb.api.CollectionAPI.to_arrow`."""
        return arrow.to_arrow(self, filter, with_vector=with_vector, with_payload=with_payload,
                              with_document=with_document)

    def to_pandas(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                  with_payload: bool = True, with_document: bool = False) -> pandas.DataFrame:
        """See :meth:`vecdb.api.CollectionAPI.to_pandas`."""
        return arrow.to_pandas(self, filter, with_vector=with_vector, with_payload=with_payload,
                               with_document=with_document)


class RemoteDatabase(DatabaseAPI):
    """A database on a vecdb server. Use :func:`vecdb.connect`."""

    def __init__(self, url: str, *, api_key: Optional[str] = None, timeout: float = 60.0) -> None:
        self.url = url
        self._transport = Transport(url, api_key, timeout)
        self._collections: Dict[str, RemoteCollection] = {}

    def __enter__(self) -> "RemoteDatabase":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"vecdb.RemoteDatabase({self.url!r})"

    def _send(self, call: Call[T]) -> T:
        return call.result(self._transport.call(call.method, call.path, call.body))

    def create_collection(
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
    ) -> RemoteCollection:
        """See :meth:`vecdb.Database.create_collection` (the embedding
        function runs here; the server keeps its config)."""
        return self._handle(self._send(database_calls.create_collection(
            name, dim, metric, index=index, quantization=quantization, mrl_dims=mrl_dims, rotate=rotate,
            sparse=sparse, vectors=vectors, embedding=embedding, exist_ok=exist_ok)), embedding)

    def _handle(self, info: Dict[str, Any], embedding: Optional[EmbeddingFunction] = None) -> RemoteCollection:
        """One handle per collection, as in process; its settings refreshed
        (another client may have dropped and recreated it)."""
        collection = self._collections.get(info["name"])
        if collection is None or collection._info.get("embedding") != info.get("embedding"):
            collection = self._collections[info["name"]] = RemoteCollection(self._transport, info)
        collection._info = info
        if embedding is not None:
            collection._attach_embedding(info.get("embedding"), embedding)
        return collection

    def get_or_create_collection(self, name: str, dim: Optional[int] = None, metric: str = "cosine", *,
                                 index: Optional[IndexSpec] = None, quantization: Optional[PQ] = None,
                                 mrl_dims: Optional[Sequence[int]] = None,
                                 rotate: Optional[str] = None,
                                 sparse: Optional[Sequence[str]] = None,
                                 vectors: Optional[Dict[str, VectorSpec]] = None,
                                 embedding: Optional[EmbeddingFunction] = None) -> RemoteCollection:
        """See :meth:`vecdb.Database.get_or_create_collection`."""
        return self.create_collection(name, dim, metric, index=index, quantization=quantization, mrl_dims=mrl_dims,
                                      rotate=rotate, sparse=sparse, vectors=vectors, embedding=embedding,
                                      exist_ok=True)

    def get_collection(self, name: str, embedding: Optional[EmbeddingFunction] = None) -> RemoteCollection:
        """See :meth:`vecdb.Database.get_collection`."""
        return self._handle(self._send(database_calls.get_collection(name)), embedding)

    def list_collections(self) -> List[str]:
        """See :meth:`vecdb.Database.list_collections`."""
        return self._send(database_calls.list_collections())

    def describe(self) -> List[Dict[str, Any]]:
        """See :meth:`vecdb.Database.describe`."""
        return self._send(database_calls.describe())

    def drop_collection(self, name: str) -> None:
        """See :meth:`vecdb.Database.drop_collection`."""
        self._send(database_calls.drop_collection(name))
        self._collections.pop(name, None)

    def compact(self) -> int:
        """See :meth:`vecdb.Database.compact`."""
        return self._send(database_calls.compact())

    def backup(self, destination: Union[str, os.PathLike]) -> Path:
        """Have the server back up the whole database (a consistent copy,
        made while it serves) and download the archive to ``destination``:
        a new file, or a folder to put it in under the server's name for it
        (an existing one, or a path ending in a separator, created if
        missing). The archive stays on the server too (``GET /v1/backups``).
        See :meth:`vecdb.Database.backup`."""
        target = database_calls.backup_destination(destination)
        name = self._send(database_calls.create_backup())
        if target.is_dir():
            target = target / name
        self._transport.download(database_calls.archive_path(name), target)
        return target

    def refresh(self) -> None:
        """Nothing to do: every call reads the server's current state."""

    def close(self) -> None:
        """Close the connection pool (the server's database stays open)."""
        self._transport.close()


def connect(url: str = "http://127.0.0.1:8000", *, api_key: Optional[str] = None,
            timeout: float = 60.0) -> RemoteDatabase:
    """A database served by ``vecdb serve`` at ``url``, with the embedded
    API (:class:`vecdb.Database`'s methods, and collections with
    :class:`vecdb.Collection`'s)::

        db = vecdb.connect("http://127.0.0.1:8000", api_key=os.environ.get("VECDB_API_KEY"))
        docs = db.get_collection("docs")
        hits = docs.search(query, k=10, filter={"lang": "en"})

    Needs urllib3 (``pip install "vecdb-engine[client]"``). Calls are
    synchronous and share one connection pool (:func:`vecdb.connect_async`
    for coroutines). ``timeout`` (seconds) bounds each read (search, get,
    count, ...); writes and upkeep (upsert, delete, tune, compact, backups)
    wait for the server however long they take, since giving up would leave
    their outcome unknown.
    """
    return RemoteDatabase(url, api_key=api_key, timeout=timeout)
