"""Request bodies, as pydantic models: they document the API (OpenAPI at
``/openapi.json``, interactive at ``/docs``) and fix which fields each
route takes. Values are checked by the collection methods the routes call,
so a bad value gets the same :mod:`vecdb.errors` error over HTTP as in
process; here only unknown and missing fields are caught."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from vecdb.config import HNSW, PQ

Id = Union[str, int]
Filter = Optional[Dict[str, Any]]
Vector = Union[List[float], bytes]
Vectors = Union[List[List[float]], bytes]
_VECTOR = "the query: a list of floats, or in MessagePack bodies little-endian float32 bytes"
_VECTORS = "a list of vectors, or in MessagePack bodies n * dim little-endian float32 values as bytes"
_FILTER = 'payload filter, Mongo-style: {"lang": "en", "year": {"$gte": 2020}}'
_PLAN = 'force a plan: {"kind": "scan"}, {"kind": "graph", "ef": 64}, {"kind": "funnel", "dims": 64, "candidates": 200}'


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Defaults read from the settings classes themselves, so the description
# cannot drift from what create_collection does.
class IndexBody(_Body):
    kind: Literal["hnsw", "flat"] = "hnsw"
    M: int = HNSW.M
    ef_construction: int = HNSW.ef_construction
    ef_search: int = HNSW.ef_search
    dtype: Literal["float32", "float16"] = HNSW.dtype


class QuantizationBody(_Body):
    m: Optional[int] = PQ.m
    rerank: int = PQ.rerank
    train_size: int = PQ.train_size
    max_samples: int = PQ.max_samples
    iterations: int = PQ.iterations
    opq: bool = PQ.opq


class CreateCollection(_Body):
    name: str = Field(description="1-128 letters, digits, '-' or '_'")
    dim: int
    metric: Literal["cosine", "ip", "l2"] = "cosine"
    index: Optional[IndexBody] = Field(None, description="HNSW (the default) or flat (exact)")
    quantization: Optional[QuantizationBody] = Field(None, description="product quantization (PQ codes in RAM)")
    mrl_dims: Optional[List[int]] = Field(None, description="Matryoshka prefix sizes with an index each")
    rotate: Optional[Literal["pca"]] = None
    exist_ok: bool = False


class Upsert(_Body):
    ids: List[Id]
    vectors: Vectors = Field(description=_VECTORS)
    payloads: Optional[List[Optional[Dict[str, Any]]]] = None


class GetPoints(_Body):
    ids: List[Id]
    with_payload: bool = True
    with_vector: bool = False


class DeletePoints(_Body):
    ids: Optional[List[Id]] = None
    filter: Filter = Field(None, description=_FILTER)


class CountPoints(_Body):
    filter: Filter = Field(None, description=_FILTER)


class Scroll(_Body):
    filter: Filter = Field(None, description=_FILTER)
    limit: int = 100
    cursor: Optional[int] = Field(None, description="the cursor the previous page returned")
    with_payload: bool = True
    with_vector: bool = False


class _SearchOptions(_Body):
    k: int = 10
    filter: Filter = Field(None, description=_FILTER)
    ef: Optional[int] = Field(None, description="graph beam width (default: the collection's ef_search)")
    dims: Optional[int] = Field(None, description="search only this MRL prefix's index")
    plan: Optional[Dict[str, Any]] = Field(None, description=_PLAN)


class Search(_SearchOptions):
    vector: Vector = Field(description=_VECTOR)
    with_payload: bool = True
    with_vector: bool = False


class SearchBatch(_SearchOptions):
    vectors: Vectors = Field(description=_VECTORS)
    with_payload: bool = True
    with_vector: bool = False


class Explain(_SearchOptions):
    query: Union[Vector, Vectors] = Field(description="one vector or a batch")
    execute: bool = False


class Tune(_Body):
    target_recall: float = 0.95
    k: int = 10
    queries: Union[int, Vectors] = Field(200, description="how many stored vectors to sample, or real queries")
    seed: int = 0


class PayloadIndex(_Body):
    kind: Literal["keyword", "integer", "float", "bool"]


class Restore(_Body):
    backup: str = Field(description="the archive's name in GET /v1/backups")
    source: Optional[str] = Field(None, description="the collection in the archive (default: the same name)")
