"""Points: upsert, get, delete (by ids or filter), payload updates, count,
scroll."""

from __future__ import annotations

from typing import Any

import msgpack
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from vecdb.errors import RequestTooLargeError
from vecdb.server import models
from vecdb.server.bodies import documented, read_body, respond, wants_msgpack
from vecdb.server.openapi import answers
from vecdb.server.state import ServerState, require_write, state_of
from vecdb.server.vector_bodies import upsert_vectors
from vecdb.wire import record_to_wire

reads = APIRouter(tags=["points"])
writes = APIRouter(tags=["points"], dependencies=[Depends(require_write)])


@writes.post("/v1/collections/{name}/points",
             summary="Insert or replace points (vector or named vectors, payload and sparse vectors) by id",
             openapi_extra=documented(models.Upsert, {
                 "ids": [1, 2, "c"], "vectors": [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.5, 0.5]],
                 "payloads": [{"lang": "en"}, {"lang": "fr"}, None]}),
             **answers(models.Upserted, 404))
async def upsert(name: str, request: Request) -> Response:
    body = await read_body(request, models.Upsert)
    state = state_of(request)
    ids = body["ids"]
    if isinstance(ids, list):
        state.check_batch(len(ids), "points")
    _check_payload_sizes(state, body["payloads"])

    def upsert_points() -> None:
        collection = state.collection(name)
        collection.upsert(ids, upsert_vectors(collection, body["vectors"]), body["payloads"], sparse=body["sparse"],
                          documents=body["documents"])

    await state.write(upsert_points)
    return respond(request, {"upserted": len(ids) if isinstance(ids, list) else 1})


@reads.post("/v1/collections/{name}/points/get", summary="Points by id (missing ids are left out)",
            openapi_extra=documented(models.GetPoints, {"ids": [1, "c"], "with_vector": True}),
            **answers(models.Records, 404))
async def get_points(name: str, request: Request) -> Response:
    body = await read_body(request, models.GetPoints)
    state = state_of(request)
    if isinstance(body["ids"], list):
        state.check_batch(len(body["ids"]), "ids")
    records = await state.read_on(name, "get", body["ids"], with_payload=body["with_payload"],
                                  with_vector=body["with_vector"], with_document=body["with_document"])
    binary = wants_msgpack(request)
    return respond(request, {"records": [record_to_wire(record, binary) for record in records]})


@writes.post("/v1/collections/{name}/points/delete", summary="Delete points by ids and/or payload filter",
             openapi_extra=documented(models.DeletePoints, {"ids": [2]}), **answers(models.Deleted, 404))
async def delete_points(name: str, request: Request) -> Response:
    body = await read_body(request, models.DeletePoints)
    state = state_of(request)
    deleted = await state.write_on(name, "delete", body["ids"], filter=body["filter"])
    return respond(request, {"deleted": deleted})


@writes.post("/v1/collections/{name}/points/payload",
             summary="Set payload keys (or replace payloads) of points by ids and/or filter, vectors untouched",
             openapi_extra=documented(models.UpdatePayload, {"ids": [1], "payload": {"reviewed": True}}),
             **answers(models.Updated, 404))
async def update_payload(name: str, request: Request) -> Response:
    body = await read_body(request, models.UpdatePayload)
    state = state_of(request)
    if isinstance(body["payload"], dict):
        _check_payload_sizes(state, [body["payload"]])
    updated = await state.write_on(name, "update_payload", body["ids"], body["payload"], filter=body["filter"],
                                   merge=body["merge"])
    return respond(request, {"updated": updated})


@writes.post("/v1/collections/{name}/points/payload/delete-keys",
             summary="Remove keys from the payloads of points by ids and/or filter",
             openapi_extra=documented(models.DeletePayloadKeys, {"ids": [1], "keys": ["reviewed"]}),
             **answers(models.Updated, 404))
async def delete_payload_keys(name: str, request: Request) -> Response:
    body = await read_body(request, models.DeletePayloadKeys)
    state = state_of(request)
    updated = await state.write_on(name, "delete_payload_keys", body["ids"], body["keys"], filter=body["filter"])
    return respond(request, {"updated": updated})


@reads.post("/v1/collections/{name}/points/count", summary="Count points, optionally matching a filter",
            openapi_extra=documented(models.CountPoints, {"filter": {"lang": "en"}}), **answers(models.Count, 404))
async def count_points(name: str, request: Request) -> Response:
    body = await read_body(request, models.CountPoints)
    state = state_of(request)
    return respond(request, {"count": await state.read_on(name, "count", body["filter"])})


@reads.post("/v1/collections/{name}/points/scroll", summary="Page through points in insertion order",
            openapi_extra=documented(models.Scroll, {"limit": 10}), **answers(models.Page, 404))
async def scroll(name: str, request: Request) -> Response:
    body = await read_body(request, models.Scroll)
    state = state_of(request)
    state.check_limit(body["limit"])
    records, cursor = await state.read_on(name, "scroll", body["filter"], body["limit"], body["cursor"],
                                          with_payload=body["with_payload"], with_vector=body["with_vector"],
                                          with_document=body["with_document"])
    binary = wants_msgpack(request)
    return respond(request, {"records": [record_to_wire(record, binary) for record in records], "cursor": cursor})


def _check_payload_sizes(state: ServerState, payloads: Any) -> None:
    if not isinstance(payloads, list):
        return  # the collection names the problem
    limit = state.settings.max_payload_bytes
    for row, payload in enumerate(payloads):
        if isinstance(payload, dict):
            try:
                size = len(msgpack.packb(payload, use_bin_type=True))
            except (TypeError, ValueError, OverflowError):
                continue  # not encodable: the collection says why
            if size > limit:
                raise RequestTooLargeError(f"payload {row} is {size:,} bytes encoded; this server's max_payload_bytes "
                                           f"is {limit:,} (vecdb serve --max-payload-bytes)")
