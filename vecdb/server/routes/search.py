"""Search (one query or a batch; by vector, text or sparse vector, or a
hybrid of them; grouped or not), recommend and explain; on the default
vector or, with ``using``, another of a collection's named vectors."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

import numpy as np
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from vecdb.errors import DimensionMismatchError, InvalidArgumentError
from vecdb.records import Group, Hit
from vecdb.server import models
from vecdb.server.bodies import documented, parse_body, read_body, respond, wants_msgpack
from vecdb.server.openapi import answers
from vecdb.server.state import ServerState, state_of
from vecdb.server.vector_bodies import vector_dim
from vecdb.wire import JSON, hit_to_wire, vectors_from_wire

reads = APIRouter(tags=["search"])


def _options(body: Dict[str, Any]) -> Dict[str, Any]:
    return {"filter": body["filter"], "ef": body["ef"], "dims": body["dims"], "plan": body["plan"],
            "using": body["using"]}


@reads.post("/v1/collections/{name}/search",
            summary="The k best points for one vector, text (BM25), sparse vector or a fusion of them; or groups",
            openapi_extra=documented(models.Search, {"vector": [0.1, 0.2, 0.3], "k": 2, "filter": {"lang": "en"}}),
            **answers(Union[models.Hits, models.Groups], 404))
async def search(name: str, request: Request) -> Response:
    return await _answer_request(request, name, answer_search)


@reads.post("/v1/collections/{name}/search/batch", summary="The k nearest points to each of several vectors",
            openapi_extra=documented(models.SearchBatch, {"vectors": [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], "k": 2}),
            **answers(models.BatchHits, 404))
async def search_batch(name: str, request: Request) -> Response:
    return await _answer_request(request, name, answer_search_batch)


async def answer_search(state: ServerState, name: str, raw: bytes, content_type: str, binary: bool) -> Dict[str, Any]:
    """The answer to a /search body ``raw`` sent as ``content_type``; hits'
    vectors as float32 bytes if ``binary``. Takes no Request: the fast path
    (vecdb.server.fast_path) calls it straight from ASGI."""
    body = parse_body(raw, content_type, models.Search)
    found = await _search(state, name, body, batch=False)
    if body["group_by"] is not None:
        return {"groups": [_group_to_wire(group, binary) for group in found]}
    return {"hits": [hit_to_wire(hit, binary) for hit in found]}


async def answer_search_batch(state: ServerState, name: str, raw: bytes, content_type: str,
                              binary: bool) -> Dict[str, Any]:
    """:func:`answer_search` for /search/batch."""
    results = await _search(state, name, parse_body(raw, content_type, models.SearchBatch), batch=True)
    return {"results": [[hit_to_wire(hit, binary) for hit in row] for row in results]}


async def _answer_request(request: Request, name: str, answer: "Answer") -> Response:
    return respond(request, await answer(state_of(request), name, await request.body(),
                                         request.headers.get("content-type", JSON), wants_msgpack(request)))


async def _search(state: ServerState, name: str, body: Dict[str, Any], batch: bool) -> Any:
    state.check_k(body["k"])
    if not batch and any(body[field] is not None for field in _BRANCH_FIELDS):
        if body["group_by"] is not None:  # searches again, deeper, until its groups are full: off the loop
            if isinstance(body["group_size"], int):
                state.check_queries(body["group_size"], body["k"])  # k groups of group_size hits: max_hits
            return await state.read(_search_branches, state, name, body)
        return await state.read_short(lambda: _search_branches(state, name, body))
    if not batch and body["vector"] is None:
        raise InvalidArgumentError("missing field(s): vector (or text or sparse)")

    def run() -> Any:
        collection = state.collection(name)
        queries = vectors_from_wire(body["vectors" if batch else "vector"], vector_dim(collection, body["using"]),
                                    batch=batch)
        _check_rank(queries, 2 if batch else 1)
        if batch and hasattr(queries, "__len__") and _rank(queries) != 0:  # a 0-d array: the collection refuses it
            state.check_queries(len(queries), body["k"])
        return collection.search(queries, body["k"], with_payload=body["with_payload"],
                                 with_vector=body["with_vector"], with_document=body["with_document"],
                                 **_options(body))

    return await (state.read(run) if batch else state.read_short(run))


# The /search fields that make it more than one vector's nearest points.
_BRANCH_FIELDS = ("text", "text_field", "sparse", "fusion", "group_by")


def _search_branches(state: ServerState, name: str, body: Dict[str, Any]) -> Union[List[Hit], List[Group]]:
    """A /search by text or sparse vector, hybrid or grouped: the
    collection checks the combination (and the vector), as in process."""
    collection = state.collection(name)
    vector = body["vector"]
    if vector is not None:
        vector = vectors_from_wire(vector, vector_dim(collection, body["using"]), batch=False)
    return collection.search(vector, body["k"], text=body["text"], text_field=body["text_field"],
                             sparse=body["sparse"], fusion=body["fusion"], group_by=body["group_by"],
                             group_size=body["group_size"], with_payload=body["with_payload"],
                             with_vector=body["with_vector"], with_document=body["with_document"], **_options(body))


def _group_to_wire(group: Group, binary: bool) -> Dict[str, Any]:
    return {"key": group.key, "hits": [hit_to_wire(hit, binary) for hit in group.hits]}


@reads.post("/v1/collections/{name}/recommend",
            summary="Points like the positive examples (ids or vectors) and unlike the negative ones",
            openapi_extra=documented(models.Recommend, {"positive": [1], "negative": [[0.3, 0.2, 0.1]], "k": 2}),
            **answers(models.Hits, 404))
async def recommend(name: str, request: Request) -> Response:
    body = await read_body(request, models.Recommend)
    state = state_of(request)
    state.check_k(body["k"])

    def run() -> List[Hit]:
        collection = state.collection(name)
        dim = vector_dim(collection, body["using"])
        return collection.recommend(_examples(body["positive"], dim), _examples(body["negative"], dim), body["k"],
                                    filter=body["filter"], strategy=body["strategy"], ef=body["ef"],
                                    with_payload=body["with_payload"], with_vector=body["with_vector"],
                                    with_document=body["with_document"], using=body["using"])

    binary = wants_msgpack(request)
    return respond(request, {"hits": [hit_to_wire(hit, binary) for hit in await state.read(run)]})


def _examples(examples: Any, dim: Optional[int]) -> Any:
    """A recommend's examples as sent: vectors in float32 bytes become
    arrays; ids, lists and anything else go to the collection's checks."""
    if not isinstance(examples, list):
        return examples
    return [vectors_from_wire(example, dim, batch=False) if isinstance(example, (bytes, bytearray)) else example
            for example in examples]


def _check_rank(queries: Any, rank: int) -> None:
    """One vector for /search, a list of them for /search/batch (the
    collection checks everything else, ragged lists included)."""
    found = _rank(queries)
    if found != rank and found in (1, 2):  # None (ragged): the collection names the problem
        raise DimensionMismatchError("/search takes one vector as 'vector'; send several as 'vectors' to /search/batch"
                                     if rank == 1 else "/search/batch takes a list of vectors as 'vectors'; send one "
                                     "as 'vector' to /search")


def _rank(value: Any) -> Optional[int]:
    """numpy's ndim of a query or batch; None for a ragged list."""
    try:
        return np.ndim(value)
    except ValueError:
        return None


@reads.post("/v1/collections/{name}/explain", summary="The plan a search would run, its estimates and timings",
            openapi_extra=documented(models.Explain, {"query": [0.1, 0.2, 0.3], "k": 2}),
            **answers(models.ExplainAnswer, 404))
async def explain(name: str, request: Request) -> Response:
    body = await read_body(request, models.Explain)
    state = state_of(request)
    state.check_k(body["k"])

    def run() -> Any:
        collection = state.collection(name)
        query = body["query"]
        branches = any(body[field] is not None for field in ("text", "text_field", "sparse", "fusion"))
        if isinstance(query, (bytes, bytearray)):  # one vector in a hybrid search; else a batch
            query = vectors_from_wire(query, vector_dim(collection, body["using"]), batch=not branches)
        if query is not None and _rank(query) == 2:
            state.check_queries(len(query), body["k"])
        return collection.explain(query, body["k"], execute=body["execute"], text=body["text"],
                                  text_field=body["text_field"], sparse=body["sparse"], fusion=body["fusion"],
                                  **_options(body)).to_dict()

    return respond(request, await state.read(run))


Answer = Callable[[ServerState, str, bytes, str, bool], Awaitable[Dict[str, Any]]]

# Served by vecdb.server.fast_path (FastAPI still declares and documents
# the endpoints): each endpoint and the function answering its body.
FAST_ROUTES: Dict[Callable[..., Any], Answer] = {search: answer_search, search_batch: answer_search_batch}
