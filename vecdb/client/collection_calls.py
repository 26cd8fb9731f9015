"""What the synchronous and asynchronous remote collections share: the
collection's settings as the server described them (read without asking it
again), and each method's :class:`~vecdb.client.messages.Call`: its request
(method, path, body) and how the answer becomes the method's result. A
method of either client builds its call here and sends it with its own
transport, so a new argument is sent and read in one place."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from vecdb.checks import check_timeout
from vecdb.client import arguments
from vecdb.client.messages import Call, segment
from vecdb.config import PQ, CollectionSettings, IndexSpec, VectorSpec
from vecdb.fusion import Fusion
from vecdb.payload_fields import check_field
from vecdb.plans import Plan
from vecdb.records import Group, Hit, Record
from vecdb.reports import Explanation, TuneReport
from vecdb.text_in import TextIn
from vecdb.wire import hit_from_wire, record_from_wire

T = TypeVar("T")


class RemoteCollectionBase(TextIn):
    """A collection on a vecdb server, less the sending: subclassed by
    :class:`vecdb.RemoteCollection` and :class:`vecdb.AsyncRemoteCollection`.
    Text in (``add``, string queries) embeds here, on the client's side."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self._info = info  # the server's description; the database refreshes it
        self._embedding_config = info.get("embedding")

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim}, metric={self.metric!r}, index={self.index})"

    def _call(self, method: str, path: str, body: Optional[Dict[str, Any]], result: Callable[[Any], T]) -> Call[T]:
        """A call on this collection's URL."""
        return Call(method, f"/v1/collections/{segment(self.name)}{path}", body, result)

    def _dim(self, using: Any) -> Optional[int]:
        """The dimension of the vector ``using`` names (None: the default);
        None if the collection has no such vector (the server refuses it)."""
        if using is None:
            return self.dim
        settings = self._info.get("vectors", {}).get(using) if isinstance(using, str) else None
        return None if settings is None else settings["dim"]

    # ---- the settings the server has now (another client may change them) ----

    def _payload_indexes_call(self) -> Call[Dict[str, str]]:
        return self._call("GET", "", None, lambda answer: dict(answer["payload_indexes"]))

    def _text_indexes_call(self) -> Call[Dict[str, Dict[str, Any]]]:
        return self._call("GET", "", None, lambda answer: {field: dict(settings) for field, settings
                                                           in answer["text_indexes"].items()})

    def _stats_call(self) -> Call[Dict[str, Any]]:
        return self._call("GET", "", None, lambda answer: answer["stats"])

    # ---- writes ----

    def _upsert_call(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]], *,
                     sparse: Optional[Dict[str, Any]], documents: Optional[Sequence[Optional[str]]]) -> Call[None]:
        if isinstance(vectors, Mapping):  # named vectors
            wire: Any = {name: self._named_batch(name, batch) for name, batch in vectors.items()}
        else:
            if arguments.rank(ids) == 0 and arguments.rank(vectors) == 1:  # one id with one vector
                ids = [ids]
            wire = arguments.vectors(vectors, self.dim, batch=True)
        return self._call("POST", "/points", {"ids": ids, "vectors": wire, "payloads": payloads,
                                              "sparse": arguments.sparse_batch(sparse),
                                              "documents": arguments.documents(documents)}, _nothing)

    def _named_batch(self, name: Any, vectors: Any) -> Any:
        """One name's vectors in an upsert: a batch, or a list with a vector
        or None per id (each vector then travels on its own)."""
        dim = self._dim(name)
        if isinstance(vectors, (list, tuple)) and any(vector is None for vector in vectors):
            return [None if vector is None else arguments.vectors(vector, dim, batch=False) for vector in vectors]
        return arguments.vectors(vectors, dim, batch=True)

    def _train_quantizer_call(self, using: Optional[str]) -> Call[None]:
        return self._call("POST", "/train-quantizer", {"using": using}, _nothing)

    def _learn_rotation_call(self, using: Optional[str]) -> Call[None]:
        return self._call("POST", "/learn-rotation", {"using": using}, _nothing)

    def _delete_call(self, ids: Any, *, filter: Optional[Dict[str, Any]]) -> Call[int]:
        return self._call("POST", "/points/delete", {"ids": ids, "filter": filter}, lambda answer: answer["deleted"])

    def _update_payload_call(self, ids: Any, payload: Optional[Dict[str, Any]], *,
                             filter: Optional[Dict[str, Any]], merge: bool) -> Call[int]:
        return self._call("POST", "/points/payload", {"ids": ids, "payload": payload, "filter": filter,
                                                      "merge": merge}, lambda answer: answer["updated"])

    def _delete_payload_keys_call(self, ids: Any, keys: Optional[Sequence[str]], *,
                                  filter: Optional[Dict[str, Any]]) -> Call[int]:
        return self._call("POST", "/points/payload/delete-keys", {"ids": ids, "keys": keys, "filter": filter},
                          lambda answer: answer["updated"])

    def _create_payload_index_call(self, field: str, kind: str) -> Call[None]:
        if field == "":  # cannot be a URL segment: refuse it as the server would
            check_field(field)
        return self._call("PUT", f"/payload-indexes/{segment(field)}", {"kind": kind}, _nothing)

    def _drop_payload_index_call(self, field: str) -> Call[None]:
        return self._call("DELETE", f"/payload-indexes/{segment(check_field(field))}", None, _nothing)

    def _create_text_index_call(self, field: str, *, language: Optional[str], stopwords: Any, k1: float,
                                b: float) -> Call[None]:
        if field == "":  # cannot be a URL segment: refuse it as the server would
            check_field(field)
        return self._call("PUT", f"/text-indexes/{segment(field)}", {"language": language, "stopwords": stopwords,
                                                                     "k1": k1, "b": b}, _nothing)

    def _drop_text_index_call(self, field: str) -> Call[None]:
        return self._call("DELETE", f"/text-indexes/{segment(check_field(field))}", None, _nothing)

    def _compact_call(self) -> Call[int]:
        return self._call("POST", "/compact", None, lambda answer: answer["removed"])

    def _wait_indexed_call(self, timeout: Optional[float]) -> Call[bool]:
        return self._call("POST", "/wait-indexed", {"timeout": check_timeout(timeout)},
                          lambda answer: answer["indexed"])

    # ---- reads ----

    def _search_call(self, query: Any, k: int, *, filter: Optional[Dict[str, Any]], ef: Optional[int],
                     dims: Optional[int], plan: Optional[Union[Plan, Dict[str, Any]]], with_payload: bool,
                     with_vector: bool, with_document: bool, text: Optional[str], text_field: Optional[str],
                     sparse: Any, fusion: Optional[Union[Fusion, Dict[str, Any]]], group_by: Optional[str],
                     group_size: int, using: Optional[str]) -> Call[Any]:
        options = {"k": k, "filter": filter, "ef": ef, "dims": dims, "plan": arguments.plan(plan),
                   "with_payload": with_payload, "with_vector": with_vector, "with_document": with_document,
                   "using": using}
        dim = self._dim(using)
        if any(value is not None for value in (text, text_field, sparse, fusion, group_by)):
            # One /search; the server checks the combination as the collection does.
            vector = None if query is None else arguments.vectors(query, dim, batch=False)
            return self._call("POST", "/search", {
                "vector": vector, "text": text, "text_field": text_field, "sparse": arguments.sparse_query(sparse),
                "fusion": arguments.fusion(fusion), "group_by": group_by, "group_size": group_size, **options},
                _hits if group_by is None else _groups)
        if arguments.rank(query) == 2:
            return self._call("POST", "/search/batch", {"vectors": arguments.vectors(query, dim, batch=True),
                                                        **options}, _hit_lists)
        return self._call("POST", "/search", {"vector": arguments.vectors(query, dim, batch=False), **options}, _hits)

    def _recommend_call(self, positive: Sequence[Any], negative: Optional[Sequence[Any]], k: int, *,
                        filter: Optional[Dict[str, Any]], strategy: str, ef: Optional[int], with_payload: bool,
                        with_vector: bool, with_document: bool, using: Optional[str]) -> Call[List[Hit]]:
        dim = self._dim(using)
        return self._call("POST", "/recommend", {
            "positive": arguments.examples(positive, dim), "negative": arguments.examples(negative, dim), "k": k,
            "filter": filter, "strategy": strategy, "ef": ef, "with_payload": with_payload,
            "with_vector": with_vector, "with_document": with_document, "using": using}, _hits)

    def _explain_call(self, query: Any, k: int, *, filter: Optional[Dict[str, Any]], ef: Optional[int],
                      dims: Optional[int], plan: Optional[Union[Plan, Dict[str, Any]]], execute: bool,
                      text: Optional[str], text_field: Optional[str], sparse: Any,
                      fusion: Optional[Union[Fusion, Dict[str, Any]]], using: Optional[str]) -> Call[Explanation]:
        vector = None if query is None else arguments.vectors(query, self._dim(using),
                                                              batch=arguments.rank(query) == 2)
        return self._call("POST", "/explain", {
            "query": vector, "k": k, "filter": filter, "ef": ef, "dims": dims, "plan": arguments.plan(plan),
            "execute": execute, "text": text, "text_field": text_field, "sparse": arguments.sparse_query(sparse),
            "fusion": arguments.fusion(fusion), "using": using}, Explanation.from_dict)

    def _tune_call(self, target_recall: float, k: int, *, queries: Any, seed: int,
                   using: Optional[str]) -> Call[TuneReport]:
        if not isinstance(queries, (int, np.integer)) or isinstance(queries, bool):
            queries = arguments.vectors(queries, self._dim(using), batch=True)
        return self._call("POST", "/tune", {"target_recall": target_recall, "k": k, "queries": queries, "seed": seed,
                                            "using": using}, TuneReport.from_dict)

    def _get_call(self, ids: Any, *, with_payload: bool, with_vector: bool,
                  with_document: bool) -> Call[List[Record]]:
        return self._call("POST", "/points/get", {"ids": ids, "with_payload": with_payload,
                                                  "with_vector": with_vector, "with_document": with_document},
                          _records)

    def _count_call(self, filter: Optional[Dict[str, Any]]) -> Call[int]:
        return self._call("POST", "/points/count", {"filter": filter}, lambda answer: answer["count"])

    def _scroll_call(self, filter: Optional[Dict[str, Any]], limit: int, cursor: Optional[int], *,
                     with_payload: bool, with_vector: bool,
                     with_document: bool) -> Call[Tuple[List[Record], Optional[int]]]:
        return self._call("POST", "/points/scroll", {"filter": filter, "limit": limit, "cursor": cursor,
                                                     "with_payload": with_payload, "with_vector": with_vector,
                                                     "with_document": with_document},
                          lambda answer: (_records(answer), answer["cursor"]))


def _nothing(answer: Any) -> None:
    """The result of a method that returns nothing."""


def _hits(answer: Any) -> List[Hit]:
    return [hit_from_wire(hit) for hit in answer["hits"]]


def _hit_lists(answer: Any) -> List[List[Hit]]:
    return [[hit_from_wire(hit) for hit in row] for row in answer["results"]]


def _groups(answer: Any) -> List[Group]:
    return [Group(key=group["key"], hits=[hit_from_wire(hit) for hit in group["hits"]]) for group in answer["groups"]]


def _records(answer: Any) -> List[Record]:
    return [record_from_wire(record) for record in answer["records"]]
