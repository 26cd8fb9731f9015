"""Search (one query or a batch) and explain."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Optional

import numpy as np
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from vecdb.errors import DimensionMismatchError
from vecdb.server import models
from vecdb.server.bodies import documented, parse_body, read_body, respond, wants_msgpack
from vecdb.server.openapi import answers
from vecdb.server.state import ServerState, state_of
from vecdb.wire import JSON, hit_to_wire, vectors_from_wire

reads = APIRouter(tags=["search"])


def _options(body: Dict[str, Any]) -> Dict[str, Any]:
    return {"filter": body["filter"], "ef": body["ef"], "dims": body["dims"], "plan": body["plan"]}


@reads.post("/v1/collections/{name}/search", summary="The k nearest points to one vector",
            openapi_extra=documented(models.Search, {"vector": [0.1, 0.2, 0.3], "k": 2, "filter": {"lang": "en"}}),
            **answers(models.Hits, 404))
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
    hits = await _search(state, name, parse_body(raw, content_type, models.Search), batch=False)
    return {"hits": [hit_to_wire(hit, binary) for hit in hits]}


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

    def run() -> Any:
        collection = state.collection(name)
        queries = vectors_from_wire(body["vectors" if batch else "vector"], collection.dim, batch=batch)
        _check_rank(queries, 2 if batch else 1)
        if batch and hasattr(queries, "__len__"):
            state.check_queries(len(queries), body["k"])
        return collection.search(queries, body["k"], with_payload=body["with_payload"],
                                 with_vector=body["with_vector"], **_options(body))

    return await (state.read(run) if batch else state.read_short(run))


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
            openapi_extra=documented(models.Explain, {"query": [0.1, 0.2, 0.3], "k": 2}), **answers(models.ExplainAnswer, 404))
async def explain(name: str, request: Request) -> Response:
    body = await read_body(request, models.Explain)
    state = state_of(request)
    state.check_k(body["k"])

    def run() -> Any:
        collection = state.collection(name)
        query = body["query"]
        if isinstance(query, (bytes, bytearray)):
            query = vectors_from_wire(query, collection.dim, batch=True)
        if _rank(query) == 2:
            state.check_queries(len(query), body["k"])
        return collection.explain(query, body["k"], execute=body["execute"], **_options(body)).to_dict()

    return respond(request, await state.read(run))


Answer = Callable[[ServerState, str, bytes, str, bool], Awaitable[Dict[str, Any]]]

# Served by vecdb.server.fast_path (FastAPI still declares and documents
# the endpoints): each endpoint and the function answering its body.
FAST_ROUTES: Dict[Callable[..., Any], Answer] = {search: answer_search, search_batch: answer_search_batch}
