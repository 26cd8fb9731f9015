"""A database on a vecdb server: :class:`vecdb.api.DatabaseAPI` and
:class:`vecdb.api.CollectionAPI` over HTTP, with the same methods, arguments,
return types and exceptions as :class:`vecdb.Database` and
:class:`vecdb.Collection` (tests/api/test_protocols.py checks the signatures;
the API suite, the ``db`` fixture of tests/conftest.py, runs on both).
Values are checked by the server, so errors are the embedded ones."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, overload

import numpy as np

from vecdb import arrow
from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.checks import check_timeout
from vecdb.client.transport import Transport, segment
from vecdb.config import PQ, CollectionSettings, IndexSpec, VectorSpec, check_collection_name, index_to_dict
from vecdb.errors import BackupExistsError, ServerError
from vecdb.fusion import DBSF, RRF, Fusion, fusion_to_dict
from vecdb.reports import Explanation, TuneReport
from vecdb.plans import Funnel, Graph, Plan, Prefix, Scan, plan_to_dict
from vecdb.records import Group, Hit, Record
from vecdb.payload_fields import check_field
from vecdb.sparse import SparseVector, _matrix_rows
from vecdb.wire import hit_from_wire, record_from_wire, vector_to_wire

if TYPE_CHECKING:  # optional: only to_arrow and to_pandas need them
    import pandas
    import pyarrow


class RemoteCollection(CollectionAPI):
    """A collection on a vecdb server (see :class:`vecdb.Collection`)."""

    def __init__(self, transport: Transport, info: Dict[str, Any]) -> None:
        self._transport = transport
        self._info = info
        self._path = f"/v1/collections/{segment(info['name'])}"

    @property
    def name(self) -> str:
        return self._info["name"]

    @property
    def dim(self) -> int:
        return self._info["dim"]

    @property
    def metric(self) -> str:
        return self._info["metric"]

    @property
    def vectors(self) -> Dict[str, VectorSpec]:
        return {name: VectorSpec.of(CollectionSettings.from_dict(settings))
                for name, settings in self._info.get("vectors", {}).items()}

    @property
    def index(self) -> IndexSpec:
        return CollectionSettings.from_dict(self._info).index

    @property
    def quantization(self) -> Optional[PQ]:
        return CollectionSettings.from_dict(self._info).quantization

    @property
    def payload_indexes(self) -> Dict[str, str]:
        """Read from the server each time (another client may change them)."""
        return dict(self._call("GET", "")["payload_indexes"])

    @property
    def text_indexes(self) -> Dict[str, Dict[str, Any]]:
        """Read from the server each time (another client may change them)."""
        return {field: dict(settings) for field, settings in self._call("GET", "")["text_indexes"].items()}

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return f"RemoteCollection({self.name!r}, dim={self.dim}, metric={self.metric!r}, index={self.index})"

    def _call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        return self._transport.call(method, self._path + path, body)

    def _dim(self, using: Any) -> Optional[int]:
        """The dimension of the vector ``using`` names (None: the default);
        None if the collection has no such vector (the server refuses it)."""
        if using is None:
            return self.dim
        settings = self._info.get("vectors", {}).get(using) if isinstance(using, str) else None
        return None if settings is None else settings["dim"]

    # ---- writes ----

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
               sparse: Optional[Dict[str, Any]] = None) -> None:
        """See :meth:`vecdb.Collection.upsert`."""
        if isinstance(vectors, Mapping):  # named vectors
            wire: Any = {name: self._named_batch(name, batch) for name, batch in vectors.items()}
        else:
            if _rank(ids) == 0 and _rank(vectors) == 1:  # one id with one vector
                ids = [ids]
            wire = _vectors(vectors, self.dim, batch=True)
        self._call("POST", "/points", {"ids": ids, "vectors": wire, "payloads": payloads,
                                        "sparse": _sparse_batch(sparse)})

    def _named_batch(self, name: Any, vectors: Any) -> Any:
        """One name's vectors in an upsert: a batch, or a list with a vector
        or None per id (each vector then travels on its own)."""
        dim = self._dim(name)
        if isinstance(vectors, (list, tuple)) and any(vector is None for vector in vectors):
            return [None if vector is None else _vectors(vector, dim, batch=False) for vector in vectors]
        return _vectors(vectors, dim, batch=True)

    def train_quantizer(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.train_quantizer`."""
        self._call("POST", "/train-quantizer", {"using": using})

    def learn_rotation(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.learn_rotation`."""
        self._call("POST", "/learn-rotation", {"using": using})

    def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete`."""
        return self._call("POST", "/points/delete", {"ids": ids,
                                                      "filter": filter})["deleted"]

    def update_payload(self, ids: Any = None, payload: Optional[Dict[str, Any]] = None, *,
                       filter: Optional[Dict[str, Any]] = None, merge: bool = True) -> int:
        """See :meth:`vecdb.Collection.update_payload`."""
        return self._call("POST", "/points/payload", {"ids": ids, "payload": payload, "filter": filter,
                                                       "merge": merge})["updated"]

    def delete_payload_keys(self, ids: Any = None, keys: Optional[Sequence[str]] = None, *,
                            filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete_payload_keys`."""
        return self._call("POST", "/points/payload/delete-keys", {"ids": ids, "keys": keys,
                                                                   "filter": filter})["updated"]

    def create_payload_index(self, field: str, kind: str) -> None:
        """See :meth:`vecdb.Collection.create_payload_index`."""
        if field == "":  # cannot be a URL segment: refuse it as the server would
            check_field(field)
        self._call("PUT", f"/payload-indexes/{segment(field)}", {"kind": kind})

    def drop_payload_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_payload_index`."""
        self._call("DELETE", f"/payload-indexes/{segment(check_field(field))}")

    def create_text_index(self, field: str, *, language: Optional[str] = "english", stopwords: Any = None,
                          k1: float = 1.2, b: float = 0.75) -> None:
        """See :meth:`vecdb.Collection.create_text_index`."""
        if field == "":  # cannot be a URL segment: refuse it as the server would
            check_field(field)
        self._call("PUT", f"/text-indexes/{segment(field)}", {"language": language, "stopwords": stopwords,
                                                               "k1": k1, "b": b})

    def drop_text_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_text_index`."""
        self._call("DELETE", f"/text-indexes/{segment(check_field(field))}")

    def compact(self) -> int:
        """See :meth:`vecdb.Collection.compact`."""
        return self._call("POST", "/compact")["removed"]

    def wait_indexed(self, timeout: Optional[float] = None) -> bool:
        """See :meth:`vecdb.Collection.wait_indexed`."""
        return self._call("POST", "/wait-indexed", {"timeout": check_timeout(timeout)})["indexed"]

    # ---- reads ----

    @overload
    def search(self, query: Sequence[float], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Sequence[Sequence[float]], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[List[Hit]]: ...

    @overload
    def search(self, query: Optional[Sequence[float]] = None, k: int = 10, *,
               filter: Optional[Dict[str, Any]] = None, ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, text: Optional[str] = None, text_field: Optional[str] = None,
               sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
               using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Any = None, k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, text: Optional[str] = None, text_field: Optional[str] = None,
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
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        sparse: Any = None,
        fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
        group_by: Optional[str] = None,
        group_size: int = 1,
        using: Optional[str] = None,
    ) -> Any:
        """See :meth:`vecdb.Collection.search`."""
        options = {"k": k, "filter": filter, "ef": ef, "dims": dims, "plan": _plan(plan),
                   "with_payload": with_payload, "with_vector": with_vector, "using": using}
        dim = self._dim(using)
        if any(value is not None for value in (text, text_field, sparse, fusion, group_by)):
            # One /search; the server checks the combination as the collection does.
            vector = None if query is None else _vectors(query, dim, batch=False)
            answer = self._call("POST", "/search", {
                "vector": vector, "text": text, "text_field": text_field, "sparse": _sparse_query(sparse),
                "fusion": fusion_to_dict(fusion) if isinstance(fusion, (RRF, DBSF)) else fusion,
                "group_by": group_by, "group_size": group_size, **options})
            if group_by is not None:
                return [Group(key=group["key"], hits=[hit_from_wire(hit) for hit in group["hits"]])
                        for group in answer["groups"]]
            return [hit_from_wire(hit) for hit in answer["hits"]]
        if _rank(query) == 2:
            answer = self._call("POST", "/search/batch", {"vectors": _vectors(query, dim, batch=True), **options})
            return [[hit_from_wire(hit) for hit in row] for row in answer["results"]]
        answer = self._call("POST", "/search", {"vector": _vectors(query, dim, batch=False), **options})
        return [hit_from_wire(hit) for hit in answer["hits"]]

    def recommend(self, positive: Sequence[Any], negative: Optional[Sequence[Any]] = None, k: int = 10, *,
                  filter: Optional[Dict[str, Any]] = None, strategy: str = "average_vector",
                  ef: Optional[int] = None, with_payload: bool = True, with_vector: bool = False,
                  using: Optional[str] = None) -> List[Hit]:
        """See :meth:`vecdb.Collection.recommend`."""
        dim = self._dim(using)
        answer = self._call("POST", "/recommend", {
            "positive": _examples(positive, dim), "negative": _examples(negative, dim), "k": k, "filter": filter,
            "strategy": strategy, "ef": ef, "with_payload": with_payload, "with_vector": with_vector,
            "using": using})
        return [hit_from_wire(hit) for hit in answer["hits"]]

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
        return Explanation.from_dict(self._call("POST", "/explain", {
            "query": None if query is None else _vectors(query, self._dim(using), batch=_rank(query) == 2), "k": k,
            "filter": filter, "ef": ef, "dims": dims, "plan": _plan(plan), "execute": execute, "text": text,
            "text_field": text_field, "sparse": _sparse_query(sparse),
            "fusion": fusion_to_dict(fusion) if isinstance(fusion, (RRF, DBSF)) else fusion, "using": using}))

    def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0,
             using: Optional[str] = None) -> TuneReport:
        """See :meth:`vecdb.Collection.tune` (runs on the server; may take a while)."""
        if not isinstance(queries, (int, np.integer)) or isinstance(queries, bool):
            queries = _vectors(queries, self._dim(using), batch=True)
        return TuneReport.from_dict(self._call("POST", "/tune", {
            "target_recall": target_recall, "k": k, "queries": queries, "seed": seed, "using": using}))

    def get(self, ids: Any, *, with_payload: bool = True, with_vector: bool = False) -> List[Record]:
        """See :meth:`vecdb.Collection.get`."""
        answer = self._call("POST", "/points/get", {"ids": ids, "with_payload": with_payload,
                                                     "with_vector": with_vector})
        return [record_from_wire(record) for record in answer["records"]]

    def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.count`."""
        return self._call("POST", "/points/count", {"filter": filter})["count"]

    def scroll(
        self,
        filter: Optional[Dict[str, Any]] = None,
        limit: int = 100,
        cursor: Optional[int] = None,
        *,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> Tuple[List[Record], Optional[int]]:
        """See :meth:`vecdb.Collection.scroll`."""
        answer = self._call("POST", "/points/scroll", {"filter": filter, "limit": limit,
                                                        "cursor": cursor, "with_payload": with_payload,
                                                        "with_vector": with_vector})
        return [record_from_wire(record) for record in answer["records"]], answer["cursor"]

    def stats(self) -> Dict[str, Any]:
        """See :meth:`vecdb.Collection.stats`."""
        return self._call("GET", "")["stats"]

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
        exist_ok: bool = False,
    ) -> RemoteCollection:
        """See :meth:`vecdb.Database.create_collection`."""
        info = self._transport.call("POST", "/v1/collections", {
            "name": name, **_vector_settings(dim, metric, index, quantization, mrl_dims, rotate),
            "vectors": _vector_specs(vectors), "sparse": _sizes(sparse), "exist_ok": exist_ok})
        return self._handle(info)

    def _handle(self, info: Dict[str, Any]) -> RemoteCollection:
        """One handle per collection, as in process; its settings refreshed
        (another client may have dropped and recreated it)."""
        collection = self._collections.get(info["name"])
        if collection is None:
            collection = self._collections[info["name"]] = RemoteCollection(self._transport, info)
        collection._info = info
        return collection

    def get_or_create_collection(self, name: str, dim: Optional[int] = None, metric: str = "cosine", *,
                                 index: Optional[IndexSpec] = None, quantization: Optional[PQ] = None,
                                 mrl_dims: Optional[Sequence[int]] = None,
                                 rotate: Optional[str] = None,
                                 sparse: Optional[Sequence[str]] = None,
                                 vectors: Optional[Dict[str, VectorSpec]] = None) -> RemoteCollection:
        """See :meth:`vecdb.Database.get_or_create_collection`."""
        return self.create_collection(name, dim, metric, index=index, quantization=quantization, mrl_dims=mrl_dims,
                                      rotate=rotate, sparse=sparse, vectors=vectors, exist_ok=True)

    def get_collection(self, name: str) -> RemoteCollection:
        """See :meth:`vecdb.Database.get_collection`."""
        return self._handle(self._transport.call("GET", f"/v1/collections/{segment(check_collection_name(name))}"))

    def list_collections(self) -> List[str]:
        """See :meth:`vecdb.Database.list_collections`."""
        return sorted(entry["name"] for entry in self.describe())

    def describe(self) -> List[Dict[str, Any]]:
        """See :meth:`vecdb.Database.describe`."""
        return self._transport.call("GET", "/v1/collections")["collections"]

    def drop_collection(self, name: str) -> None:
        """See :meth:`vecdb.Database.drop_collection`."""
        self._transport.call("DELETE", f"/v1/collections/{segment(check_collection_name(name))}")
        self._collections.pop(name, None)

    def compact(self) -> int:
        """See :meth:`vecdb.Database.compact`."""
        return self._transport.call("POST", "/v1/compact")["bytes_freed"]

    def backup(self, destination: Union[str, os.PathLike]) -> Path:
        """Have the server back up the whole database (a consistent copy,
        made while it serves) and download the archive to ``destination``:
        a new file, or a folder to put it in under the server's name for it
        (an existing one, or a path ending in a separator, created if
        missing). The archive stays on the server too (``GET /v1/backups``).
        See :meth:`vecdb.Database.backup`."""
        text = os.fspath(destination)
        target = Path(text)
        if text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep)):
            target.mkdir(parents=True, exist_ok=True)
        if target.exists() and not target.is_dir():
            raise BackupExistsError(f"{target} already exists; remove it or choose another name")
        name = self._transport.call("POST", "/v1/backups")["name"]
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ServerError(f"the server named its backup {name!r}, not a plain file name; not downloading it")
        if target.is_dir():
            target = target / name
        self._transport.download(f"/v1/backups/{segment(name)}", target)
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
    synchronous and share one connection pool. ``timeout`` (seconds) bounds
    each read (search, get, count, ...); writes and upkeep (upsert, delete,
    tune, compact, backups) wait for the server however long they take,
    since giving up would leave their outcome unknown.
    """
    return RemoteDatabase(url, api_key=api_key, timeout=timeout)


def _vector_settings(dim: Any, metric: Any, index: Any, quantization: Any, mrl_dims: Any,
                     rotate: Any) -> Dict[str, Any]:
    """A vector's settings in the body of a collection's creation."""
    return {"dim": dim, "metric": metric, "index": None if index is None else _settings(index, index_to_dict),
            "quantization": None if quantization is None else _settings(quantization, asdict),
            "mrl_dims": _sizes(mrl_dims), "rotate": rotate}


def _vector_specs(vectors: Any) -> Any:
    """Named vectors' settings, ``{name: settings}`` (what is not a dict of
    VectorSpec goes as its repr, for the server to refuse)."""
    if not isinstance(vectors, Mapping):
        return vectors if vectors is None else repr(vectors)
    return {name: _vector_settings(spec.dim, spec.metric, spec.index, spec.quantization, spec.mrl_dims, spec.rotate)
            if isinstance(spec, VectorSpec) else repr(spec) for name, spec in vectors.items()}


def _examples(examples: Any, dim: Optional[int]) -> Any:
    """A recommend's examples: ids as they are, vectors as float32 bytes
    (what is neither goes as given, for the server to refuse)."""
    if isinstance(examples, (str, bytes, dict, np.ndarray)) or not hasattr(examples, "__iter__"):
        return examples
    return [example if isinstance(example, (str, int, np.integer)) else _vectors(example, dim, batch=False)
            for example in examples]


def _vectors(values: Any, dim: Optional[int], batch: bool) -> Any:
    """Numeric arrays of the right shape travel as float32 bytes; anything
    else as given, for the server to refuse with the embedded error
    (``dim`` None: a named vector the collection lacks). (numpy scalars and
    arrays anywhere in a request become plain values in
    vecdb.wire.encode_msgpack.)"""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        return values
    if array.dtype.kind in "fiu" and array.ndim == (2 if batch else 1) and array.shape[-1] == dim:
        return vector_to_wire(array, binary=True)
    return array.tolist() if array.dtype.kind in "fiub" else values


def _rank(value: Any) -> int:
    """numpy's ndim, or 2 for a ragged batch (the server refuses it as the
    embedded API does)."""
    try:
        return np.ndim(value)
    except ValueError:
        return 2


def _sizes(sizes: Any) -> Any:
    """Prefix sizes: any iterable, as the embedded API takes them."""
    if sizes is None or isinstance(sizes, (str, bytes, dict)) or not hasattr(sizes, "__iter__"):
        return sizes
    return list(sizes)


def _sparse_vector(vector: Any) -> Any:
    """A sparse vector in its wire form, ``{"indices": [...], "values":
    [...]}`` (SparseVector, pair or dict; what is none of them goes as
    given, for the server to refuse)."""
    if isinstance(vector, SparseVector):
        return {"indices": vector.indices, "values": vector.values}
    if isinstance(vector, tuple) and len(vector) == 2:
        return {"indices": vector[0], "values": vector[1]}
    return vector


def _sparse_batch(given: Any) -> Any:
    """An upsert's ``sparse=``: per name, a list of wire vectors (a
    scipy.sparse matrix's rows, or each vector given)."""
    if not isinstance(given, Mapping):
        return given
    wire = {}
    for name, vectors in given.items():
        rows = _matrix_rows(vectors) if hasattr(vectors, "tocsr") else vectors
        wire[name] = [_sparse_vector(row) for row in rows] if isinstance(rows, (list, tuple)) else rows
    return wire


def _sparse_query(given: Any) -> Any:
    """A search's ``sparse=``: ``{name: vector}`` or the vector alone."""
    if isinstance(given, Mapping) and set(given) != {"indices", "values"}:
        return {name: _sparse_vector(vector) for name, vector in given.items()}
    return _sparse_vector(given)


def _plan(plan: Any) -> Any:
    return plan_to_dict(plan) if isinstance(plan, (Scan, Graph, Funnel, Prefix)) else plan


def _settings(value: Any, to_dict: Any) -> Any:
    try:
        return to_dict(value)
    except TypeError:  # not the settings object: let the server say so
        return repr(value)
