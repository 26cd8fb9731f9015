"""Request and response bodies, as pydantic models: they document the API
(OpenAPI at ``/openapi.json``, interactive at ``/docs``) and fix which
fields each route takes. Values are checked by the collection methods the
routes call, so a bad value gets the same :mod:`vecdb.errors` error over
HTTP as in process; here only unknown and missing fields are caught. The
constraints below (ranges, patterns) describe those checks for clients and
for schemathesis (tests/server/test_server_schema.py); they are not enforced here.
"""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from vecdb.config import HNSW, MAX_PREFIXES, PQ
from vecdb.storage.keys import MAX_ID_BYTES

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # INT64_MAX: vecdb.native.arrays.MAX_INT_PARAMETER, every setting's bound
MAX_DIM = 32_768  # vecdb.config.CollectionConfig's limit (the native indexes')
# float32's largest value plus half its last step: numbers below this round
# to a finite float32, larger ones overflow (and are refused).
FLOAT32_LIMIT = 3.4028235677973366e38
# Collection names, as vecdb.config.check_collection_name checks them (matched whole).
COLLECTION_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
# Backup archive names (vecdb.server.routes.backups matches them whole):
# plain file names, no leading dot (staging files start with one).
BACKUP_NAME_PATTERN = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}\.tar"
EXAMPLE_ARCHIVE = "docs-20261205T101500000000Z.tar"  # a collection backup's name, as the server makes them

Id = Union[Annotated[str, Field(min_length=1, max_length=MAX_ID_BYTES)],
           Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]]
Filter = Optional[Dict[str, Any]]
Number = Annotated[float, Field(gt=-FLOAT32_LIMIT, lt=FLOAT32_LIMIT)]
Vector = Annotated[List[Number], Field(min_length=1)]
Vectors = List[Vector]
Payload = Optional[Dict[str, Any]]
_VECTOR = "the query: a list of floats (in MessagePack bodies also little-endian float32 bytes)"
_VECTORS = "a list of vectors (in MessagePack bodies also n * dim little-endian float32 values as bytes)"
_FILTER = ('payload filter, Mongo-style: {"lang": "en", "year": {"$gte": 2020}}; operators $eq $ne $gt $gte $lt '
           '$lte $in $nin $exists on fields, $and $or $not to combine')
_PLAN = 'force a plan: {"kind": "scan"}, {"kind": "graph", "ef": 64}, {"kind": "funnel", "dims": 64, "candidates": 200}'


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Defaults read from the settings classes themselves, so the description
# cannot drift from what create_collection does.
class IndexBody(_Body):
    kind: Literal["hnsw", "flat"] = Field("hnsw", description="'flat' (exact search) takes no other settings")
    M: int = Field(HNSW.M, ge=2, le=256)
    ef_construction: int = Field(HNSW.ef_construction, ge=1, le=100_000)
    ef_search: int = Field(HNSW.ef_search, ge=1, le=INT64_MAX)
    dtype: Literal["float32", "float16"] = HNSW.dtype


class QuantizationBody(_Body):
    m: Optional[int] = Field(PQ.m, ge=1, le=INT64_MAX, description="must divide the dimension")
    rerank: int = Field(PQ.rerank, ge=1, le=INT64_MAX)
    train_size: int = Field(PQ.train_size, ge=256, le=INT64_MAX)
    max_samples: int = Field(PQ.max_samples, ge=256, le=INT64_MAX)
    iterations: int = Field(PQ.iterations, ge=1, le=1000)
    opq: bool = PQ.opq


class CreateCollection(_Body):
    name: str = Field(description="1-128 letters, digits, '-' or '_'", pattern=COLLECTION_NAME_PATTERN)
    dim: int = Field(ge=1, le=MAX_DIM)
    metric: Literal["cosine", "ip", "l2"] = "cosine"
    index: Optional[IndexBody] = Field(None, description="HNSW (the default) or flat (exact)")
    quantization: Optional[QuantizationBody] = Field(None, description="product quantization (PQ codes in RAM)")
    mrl_dims: Optional[List[Annotated[int, Field(ge=1, le=MAX_DIM - 1)]]] = Field(
        None, max_length=MAX_PREFIXES, description="Matryoshka prefix sizes (each below dim) with an index each")
    rotate: Optional[Literal["pca"]] = Field(None, description="'pca' (needs mrl_dims)")
    exist_ok: bool = False


class Upsert(_Body):
    ids: Union[List[Id], Id] = Field(description="unique; as many as vectors (one id: one vector)")
    vectors: Union[Vectors, Vector] = Field(description=_VECTORS)
    payloads: Optional[List[Payload]] = Field(None, description="one per id (null: none)")


class GetPoints(_Body):
    ids: Union[List[Id], Id]
    with_payload: bool = True
    with_vector: bool = False


class DeletePoints(_Body):
    ids: Union[List[Id], Id, None] = None
    filter: Filter = Field(None, description=_FILTER)


class CountPoints(_Body):
    filter: Filter = Field(None, description=_FILTER)


class Scroll(_Body):
    filter: Filter = Field(None, description=_FILTER)
    limit: int = Field(100, ge=1, le=INT64_MAX)
    cursor: Optional[int] = Field(None, ge=0, le=INT64_MAX, description="the cursor the previous page returned")
    with_payload: bool = True
    with_vector: bool = False


class _SearchOptions(_Body):
    k: int = Field(10, ge=1, le=INT64_MAX)
    filter: Filter = Field(None, description=_FILTER)
    ef: Optional[int] = Field(None, ge=1, le=INT64_MAX,
                              description="graph beam width (default: the collection's ef_search)")
    dims: Optional[int] = Field(None, ge=1, le=INT64_MAX, description="search only this MRL prefix's index")
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
    target_recall: float = Field(0.95, gt=0, le=1)
    k: int = Field(10, ge=1, le=INT64_MAX)
    queries: Union[Annotated[int, Field(ge=1, le=INT64_MAX)], Vectors] = Field(
        200, description="how many stored vectors to sample, or real queries")
    seed: int = Field(0, ge=0, le=INT64_MAX)


class WaitIndexed(_Body):
    timeout: Optional[float] = Field(None, ge=0, description="seconds; null: as long as it takes")


class PayloadIndex(_Body):
    kind: Literal["keyword", "integer", "float", "bool"]


class Restore(_Body):
    backup: str = Field(description="the archive's name in GET /v1/backups", pattern=f"^{BACKUP_NAME_PATTERN}$")
    source: Optional[str] = Field(None, pattern=COLLECTION_NAME_PATTERN,
                                  description="the collection in the archive (default: the same name)")


# ---- answers ----


class _Answer(BaseModel):
    pass


class ErrorDetail(_Answer):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="the vecdb.errors class (the Python client raises it)")
    message: str
    status: int


class ErrorBody(_Answer):
    """What every refused request gets."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


class CollectionSettings(_Answer):
    name: str
    count: int
    dim: int
    metric: Literal["cosine", "ip", "l2"]
    index: Dict[str, Any]
    quantization: Optional[Dict[str, Any]]
    mrl_dims: List[int]
    rotate: Optional[str]
    payload_indexes: Dict[str, str]
    default_plan: Optional[Dict[str, Any]]


class CollectionInfo(CollectionSettings):
    stats: Dict[str, Any] = Field(description="the live index: memory, sequences, where it was loaded from")


class CollectionList(_Answer):
    collections: List[CollectionSettings]


class Dropped(_Answer):
    dropped: str


class BytesFreed(_Answer):
    bytes_freed: int


class PayloadIndexes(_Answer):
    payload_indexes: Dict[str, str] = Field(description="field -> kind")


class Removed(_Answer):
    removed: int


class Indexed(_Answer):
    indexed: bool = Field(description="false: the timeout passed first")


class Trained(_Answer):
    trained: bool


class Learned(_Answer):
    learned: bool


class Upserted(_Answer):
    upserted: int


class Point(_Answer):
    id: Union[str, int]
    payload: Optional[Dict[str, Any]] = Field(None, description="with with_payload")
    vector: Optional[List[float]] = Field(None, description="with with_vector (MessagePack: float32 bytes)")


class Hit(Point):
    score: float


class Records(_Answer):
    records: List[Point]


class Page(Records):
    cursor: Optional[int] = Field(description="pass it back for the next page; null at the end")


class Deleted(_Answer):
    deleted: int


class Count(_Answer):
    count: int


class Hits(_Answer):
    hits: List[Hit]


class BatchHits(_Answer):
    results: List[List[Hit]]


class BackupCollection(_Answer):
    name: str
    count: int
    dim: int
    metric: str


class BackupInfo(_Answer):
    name: str
    bytes: int
    created: str
    collections: List[BackupCollection]


class BackupEntry(_Answer):
    name: str
    bytes: int


class BackupList(_Answer):
    backups: List[BackupEntry]


class BackupDeleted(_Answer):
    deleted: str


class Restored(_Answer):
    restored: str
    source: str
    count: int
    from_: str = Field(alias="from")


class Health(_Answer):
    status: Literal["ok"]
    version: str


class Readiness(_Answer):
    status: Literal["ready", "starting"]


class TuneAnswer(_Answer):
    """vecdb.query.tuning.TuneReport.to_dict(): the plans tried and the one kept."""

    model_config = ConfigDict(extra="allow")


class ExplainAnswer(_Answer):
    """vecdb.reports.Explanation.to_dict(): the plan, why, estimates, stages."""

    model_config = ConfigDict(extra="allow")
    plan: Dict[str, Any]
    description: str
    stages: List[Dict[str, Any]]
