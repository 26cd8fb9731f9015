"""Search (one query or a batch) and explain."""

from __future__ import annotations

from typing import Any, Dict, Type

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from vecdb.server import models
from vecdb.server.bodies import documented, read_body, respond, wants_msgpack
from vecdb.server.state import state_of
from vecdb.wire import hit_to_wire, vectors_from_wire

reads = APIRouter(tags=["search"])


def _options(body: Dict[str, Any]) -> Dict[str, Any]:
    return {"filter": body["filter"], "ef": body["ef"], "dims": body["dims"], "plan": body["plan"]}


@reads.post("/v1/collections/{name}/search", summary="The k nearest points to one vector",
            openapi_extra=documented(models.Search))
async def search(name: str, request: Request) -> Response:
    hits = await _search(request, name, models.Search, batch=False)
    binary = wants_msgpack(request)
    return respond(request, {"hits": [hit_to_wire(hit, binary) for hit in hits]})


@reads.post("/v1/collections/{name}/search/batch", summary="The k nearest points to each of several vectors",
            openapi_extra=documented(models.SearchBatch))
async def search_batch(name: str, request: Request) -> Response:
    results = await _search(request, name, models.SearchBatch, batch=True)
    binary = wants_msgpack(request)
    return respond(request, {"results": [[hit_to_wire(hit, binary) for hit in row] for row in results]})


async def _search(request: Request, name: str, model: Type[BaseModel], batch: bool) -> Any:
    body = await read_body(request, model)
    state = state_of(request)
    collection = state.collection(name)
    state.check_k(body["k"])
    queries = vectors_from_wire(body["vectors" if batch else "vector"], collection.dim, batch=batch)
    if batch and hasattr(queries, "__len__"):
        state.check_batch(len(queries), "queries")
        state.check_hits(len(queries), body["k"])
    return await state.read(collection.search, queries, body["k"], with_payload=body["with_payload"],
                            with_vector=body["with_vector"], **_options(body))


@reads.post("/v1/collections/{name}/explain", summary="The plan a search would run, its estimates and timings",
            openapi_extra=documented(models.Explain))
async def explain(name: str, request: Request) -> Response:
    body = await read_body(request, models.Explain)
    state = state_of(request)
    collection = state.collection(name)
    state.check_k(body["k"])
    query = body["query"]
    if isinstance(query, (bytes, bytearray)):
        query = vectors_from_wire(query, collection.dim, batch=True)
    explanation = await state.read(collection.explain, query, body["k"], execute=body["execute"], **_options(body))
    return respond(request, explanation.to_dict())
