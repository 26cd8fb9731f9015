"""Collections: list, create, info, drop, and the per-collection upkeep
(payload and text indexes, compaction, quantizer training, rotation,
tuning)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from vecdb.config import HNSW, PQ, Flat, IndexSpec, VectorSpec
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError
from vecdb.server import models
from vecdb.server.bodies import documented, read_body, respond
from vecdb.server.openapi import answers
from vecdb.server.state import ServerState, require_write, state_of
from vecdb.server.vector_bodies import vector_dim
from vecdb.text_in import DescribedEmbedding
from vecdb.wire import vectors_from_wire

reads = APIRouter(tags=["collections"])
writes = APIRouter(tags=["collections"], dependencies=[Depends(require_write)])


def collection_info(state: ServerState, name: str) -> Dict[str, Any]:
    """Settings and counts from LMDB, plus the live index's statistics."""
    collection = state.collection(name)
    described = next((entry for entry in state.database.describe() if entry["name"] == name), None)
    if described is None:  # dropped meanwhile
        raise CollectionNotFoundError(f"collection {name!r} does not exist")
    return {**described, "stats": collection.stats()}


@reads.get("/v1/collections", summary="List collections with their settings and point counts",
           **answers(models.CollectionList))
async def list_collections(request: Request) -> Response:
    state = state_of(request)
    return respond(request, {"collections": await state.read(state.database.describe)})


@writes.post("/v1/collections", summary="Create a collection (of one vector per point, or of named vectors)",
             openapi_extra=documented(models.CreateCollection, {"name": "docs", "dim": 3, "metric": "cosine"}),
             **answers(models.CollectionInfo, 409, status=201))
async def create_collection(request: Request) -> Response:
    body = await read_body(request, models.CreateCollection)
    state = state_of(request)
    name = body["name"]
    await state.write(state.database.create_collection, name, body["dim"], body["metric"],
                      index=index_from_body(body["index"]), quantization=quantization_from_body(body["quantization"]),
                      mrl_dims=body["mrl_dims"], rotate=body["rotate"], sparse=body["sparse"],
                      vectors=vectors_from_body(body["vectors"]), embedding=_described(body["embedding"], body["dim"]),
                      exist_ok=body["exist_ok"])
    return respond(request, await state.read(collection_info, state, name), status=201)


@writes.post("/v1/compact", summary="Rewrite the LMDB file without its free space; returns the bytes freed",
             **answers(models.BytesFreed))
async def compact_database(request: Request) -> Response:
    state = state_of(request)
    return respond(request, {"bytes_freed": await state.write(state.database.compact)})


@reads.get("/v1/collections/{name}", summary="A collection's settings, counts and index statistics",
           **answers(models.CollectionInfo, 404))
async def get_collection(name: str, request: Request) -> Response:
    state = state_of(request)
    return respond(request, await state.read(collection_info, state, name))


@writes.delete("/v1/collections/{name}", summary="Drop a collection and everything in it",
               **answers(models.Dropped, 404))
async def drop_collection(name: str, request: Request) -> Response:
    state = state_of(request)
    await state.write(state.database.drop_collection, name)
    return respond(request, {"dropped": name})


@writes.put("/v1/collections/{name}/payload-indexes/{field:path}", summary="Index a payload field",
            openapi_extra=documented(models.PayloadIndex, {"kind": "keyword"}), **answers(models.PayloadIndexes, 404))
async def create_payload_index(name: str, field: str, request: Request) -> Response:
    body = await read_body(request, models.PayloadIndex)
    state = state_of(request)

    def create() -> Dict[str, str]:
        collection = state.collection(name)
        collection.create_payload_index(field, body["kind"])
        return collection.payload_indexes

    return respond(request, {"payload_indexes": await state.write(create)})


@writes.delete("/v1/collections/{name}/payload-indexes/{field:path}", summary="Drop a payload index",
               **answers(models.PayloadIndexes, 404))
async def drop_payload_index(name: str, field: str, request: Request) -> Response:
    state = state_of(request)

    def drop() -> Dict[str, str]:
        collection = state.collection(name)
        collection.drop_payload_index(field)
        return collection.payload_indexes

    return respond(request, {"payload_indexes": await state.write(drop)})


@writes.put("/v1/collections/{name}/text-indexes/{field:path}",
            summary="Index a payload field's text for full-text search (BM25)",
            openapi_extra=documented(models.TextIndex, {"language": "english"}), **answers(models.TextIndexes, 404))
async def create_text_index(name: str, field: str, request: Request) -> Response:
    body = await read_body(request, models.TextIndex)
    state = state_of(request)

    def create() -> Dict[str, Dict[str, Any]]:
        collection = state.collection(name)
        collection.create_text_index(field, language=body["language"], stopwords=body["stopwords"], k1=body["k1"],
                                     b=body["b"])
        return collection.text_indexes

    return respond(request, {"text_indexes": await state.write(create)})


@writes.delete("/v1/collections/{name}/text-indexes/{field:path}", summary="Drop a text index",
               **answers(models.TextIndexes, 404))
async def drop_text_index(name: str, field: str, request: Request) -> Response:
    state = state_of(request)

    def drop() -> Dict[str, Dict[str, Any]]:
        collection = state.collection(name)
        collection.drop_text_index(field)
        return collection.text_indexes

    return respond(request, {"text_indexes": await state.write(drop)})


@writes.post("/v1/collections/{name}/compact", summary="Rebuild the index without deleted points",
             **answers(models.Removed, 404))
async def compact(name: str, request: Request) -> Response:
    state = state_of(request)
    return respond(request, {"removed": await state.write_on(name, "compact")})


@writes.post("/v1/collections/{name}/wait-indexed",
             summary="Wait until every upserted point is in the graph (searches find them before)",
             openapi_extra=documented(models.WaitIndexed, {"timeout": 30}), **answers(models.Indexed, 404))
async def wait_indexed(name: str, request: Request) -> Response:
    body = await read_body(request, models.WaitIndexed)
    state = state_of(request)
    return respond(request, {"indexed": await state.write_on(name, "wait_indexed", body["timeout"])})


@writes.post("/v1/collections/{name}/train-quantizer", summary="Train the PQ codebooks (of one vector) again",
             openapi_extra=documented(models.VectorUpkeep, {"using": None}), **answers(models.Trained, 400, 404))
async def train_quantizer(name: str, request: Request) -> Response:
    body = await read_body(request, models.VectorUpkeep)
    state = state_of(request)
    await state.write_on(name, "train_quantizer", body["using"])
    return respond(request, {"trained": True})


@writes.post("/v1/collections/{name}/learn-rotation",
             summary="Learn the PCA rotation of the MRL prefixes (of one vector) again",
             openapi_extra=documented(models.VectorUpkeep, {"using": None}), **answers(models.Learned, 400, 404))
async def learn_rotation(name: str, request: Request) -> Response:
    body = await read_body(request, models.VectorUpkeep)
    state = state_of(request)
    await state.write_on(name, "learn_rotation", body["using"])
    return respond(request, {"learned": True})


@writes.post("/v1/collections/{name}/tune", summary="Measure plans; keep the fastest reaching the target recall",
             openapi_extra=documented(models.Tune, {"target_recall": 0.9, "k": 1, "queries": 2}),
             **answers(models.TuneAnswer, 404))
async def tune(name: str, request: Request) -> Response:
    body = await read_body(request, models.Tune)
    state = state_of(request)
    state.check_k(body["k"])

    def tune_collection() -> Dict[str, Any]:
        collection = state.collection(name)
        queries = body["queries"]
        if not isinstance(queries, int):
            queries = vectors_from_wire(queries, vector_dim(collection, body["using"]), batch=True)
        return collection.tune(body["target_recall"], body["k"], queries=queries, seed=body["seed"],
                               using=body["using"]).to_dict()

    return respond(request, await state.write(tune_collection))


def index_from_body(body: Optional[Dict[str, Any]]) -> Optional[IndexSpec]:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"index must be an object like {{\"kind\": \"hnsw\", \"M\": 16}}, got {body!r}")
    settings = dict(body)
    kind = settings.pop("kind", "hnsw")
    if kind == "flat" and not settings:
        return Flat()
    if kind != "hnsw":
        raise InvalidArgumentError(f"index kind must be 'hnsw' or 'flat' (which takes no settings), got {body!r}")
    return _construct(HNSW, settings, "HNSW index")


def vectors_from_body(body: Any) -> Any:
    """Named vectors' settings, ``{name: VectorSpec}``; the database checks
    the names and the settings (and anything but an object, None aside)."""
    if not isinstance(body, dict):
        return body
    return {name: _vector_spec(name, settings) for name, settings in body.items()}


def _vector_spec(name: Any, body: Any) -> VectorSpec:
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"vectors[{name!r}] must be an object of vecdb.VectorSpec's settings, like "
                                   f"{{\"dim\": 384, \"metric\": \"cosine\"}}, got {body!r}")
    settings = {**body, "index": index_from_body(body.get("index")),
                "quantization": quantization_from_body(body.get("quantization"))}
    return _construct(VectorSpec, settings, f"vectors[{name!r}]")


def quantization_from_body(body: Optional[Dict[str, Any]]) -> Optional[PQ]:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"quantization must be an object like {{\"m\": 48}}, got {body!r}")
    return _construct(PQ, body, "PQ quantization")


def _construct(cls: Any, settings: Dict[str, Any], what: str) -> Any:
    try:
        return cls(**settings)
    except TypeError as exc:  # an unknown setting
        raise InvalidArgumentError(f"invalid {what} settings {settings!r}: {exc}") from None


def _described(config: Optional[Dict[str, Any]], dim: Optional[int]) -> Optional[DescribedEmbedding]:
    """A create body's embedding config: the server stores it, clients embed."""
    if config is None:
        return None
    if dim is None:
        raise InvalidArgumentError("a collection with an embedding function needs its dim in the body")
    return DescribedEmbedding(config, dim)
