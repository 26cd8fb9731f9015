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

from vecdb.query.grouping import MAX_GROUP_SIZE
from vecdb.config import HNSW, MAX_PREFIXES, PQ
from vecdb.query.arguments import MAX_TEXT_CHARS
from vecdb.sparse import MAX_INDEX, MAX_NONZEROS
from vecdb.storage.keys import MAX_ID_BYTES
from vecdb.text import settings as text_settings

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
# Named vectors' names, checked as collection names (vecdb.config.check_vector_specs).
VectorName = Annotated[str, Field(pattern=COLLECTION_NAME_PATTERN)]
NamedVectors = Dict[VectorName, List[Optional[Vector]]]  # an upsert's: one vector or null per id
Payload = Optional[Dict[str, Any]]
_VECTOR = "the query: a list of floats (in MessagePack bodies also little-endian float32 bytes)"
_VECTORS = "a list of vectors (in MessagePack bodies also n * dim little-endian float32 values as bytes)"
_FILTER = ('payload filter, Mongo-style: {"lang": "en", "year": {"$gte": 2020}}; operators $eq $ne $gt $gte $lt '
           '$lte $in $nin $exists on fields, $and $or $not to combine')
_PLAN = 'force a plan: {"kind": "scan"}, {"kind": "graph", "ef": 64}, {"kind": "funnel", "dims": 64, "candidates": 200}'
_TEXT = ("search by text instead of by vector (give one of the two): the points whose text ranks best by BM25 "
         "for it, in the collection's text index (see PUT .../text-indexes/{field})")
_TEXT_FIELD = "which text index 'text' searches: its field (needed when the collection has more than one)"
_SPARSE_NAME = r"^[A-Za-z0-9_-]{1,64}$"  # vecdb.sparse.check_sparse_names
_SPARSE_QUERY = ('search by a sparse vector (dot product): {"splade": {"indices": [...], "values": [...]}}, or the '
                 "vector alone when the collection declares one name")
_FUSION = ('a hybrid search: two or more of vector, text and sparse, each fetching its own candidates, fused: '
           '{"kind": "rrf", "k": 60} (reciprocal rank fusion) or {"kind": "dbsf"} (distribution-based score '
           "fusion); alpha weighs the vector branch (the others share 1 - alpha), candidates is each branch's "
           "depth (default max(20, 2k))")
_GROUP_BY = ('a payload field: answer {"groups": [{"key": ..., "hits": [...]}]} instead of hits, up to k groups '
             "(best first), each the best group_size hits of one value of the field")
_IDS = "point ids (or one id)"
_USING = ("which named vector of a collection made with 'vectors' (null: the default, the first declared); "
          "a collection of one vector takes none")


_EMBEDDING = ("the embedding function's config (vecdb.embeddings: name, dim and settings) that embeds its documents "
              "and text queries")


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


class SparseVector(_Body):
    indices: Annotated[List[Annotated[int, Field(ge=0, le=MAX_INDEX)]], Field(max_length=MAX_NONZEROS)] = Field(
        description="the nonzero dimensions, strictly increasing")
    values: Annotated[List[Number], Field(max_length=MAX_NONZEROS)] = Field(
        description="their values (finite), as many as indices")


# A vector's settings: create_collection's for a collection of one vector, and each named vector's.
Metric = Literal["cosine", "ip", "l2"]
IndexSettings = Annotated[Optional[IndexBody], Field(description="HNSW (the default) or flat (exact)")]
Quantization = Annotated[Optional[QuantizationBody], Field(description="product quantization (PQ codes in RAM)")]
PrefixSizes = Annotated[Optional[List[Annotated[int, Field(ge=1, le=MAX_DIM - 1)]]], Field(
    max_length=MAX_PREFIXES, description="Matryoshka prefix sizes (each below dim) with an index each")]
Rotation = Annotated[Optional[Literal["pca"]], Field(description="'pca' (needs mrl_dims)")]


class VectorBody(_Body):
    """One named vector's settings: vecdb.VectorSpec."""

    dim: int = Field(ge=1, le=MAX_DIM)
    metric: Metric = "cosine"
    index: IndexSettings = None
    quantization: Quantization = None
    mrl_dims: PrefixSizes = None
    rotate: Rotation = None


class CreateCollection(_Body):
    name: str = Field(description="1-128 letters, digits, '-' or '_'", pattern=COLLECTION_NAME_PATTERN)
    dim: Optional[int] = Field(None, ge=1, le=MAX_DIM, description="the vector dimension (or give 'vectors')")
    metric: Metric = "cosine"
    index: IndexSettings = None
    quantization: Quantization = None
    mrl_dims: PrefixSizes = None
    rotate: Rotation = None
    vectors: Optional[Dict[VectorName, VectorBody]] = Field(
        None, min_length=1, examples=[{"text": {"dim": 3}, "image": {"dim": 2, "metric": "l2"}}],
        description="instead of dim and the settings above: several named vectors per point, each with its own "
                    "settings and index, the first the default of searches ('using' picks another)")
    sparse: Optional[List[Annotated[str, Field(pattern=_SPARSE_NAME)]]] = Field(
        None, description="names of the sparse vectors its points may have (SPLADE, BM42, ...), e.g. [\"splade\"]")
    embedding: Optional[Dict[str, Any]] = Field(
        None, description=_EMBEDDING + " (clients embed; the server keeps it for every client to find)")
    exist_ok: bool = False


class Upsert(_Body):
    ids: Union[List[Id], Id] = Field(description="unique; as many as vectors (one id: one vector)")
    vectors: Union[Vectors, Vector, NamedVectors] = Field(
        description=_VECTORS + "; in a collection with named vectors {name: one vector or null per id} (a point "
                    "gets the vectors given for it)", examples=[{"text": [[0.1, 0.2, 0.3], None]}])
    payloads: Optional[List[Payload]] = Field(None, description="one per id (null: none)")
    sparse: Optional[Dict[str, List[Optional[SparseVector]]]] = Field(
        None, description="sparse vectors by declared name, one per id (null: none); a name left out leaves the "
                          "points without it")
    documents: Optional[List[Optional[str]]] = Field(
        None, description="the points' documents (text), one per id (null: none)", examples=[["a text", None]])


class GetPoints(_Body):
    ids: Union[List[Id], Id]
    with_payload: bool = True
    with_vector: bool = False
    with_document: bool = False


class UpdatePayload(_Body):
    ids: Union[List[Id], Id, None] = Field(None, description=_IDS)
    filter: Filter = Field(None, description=_FILTER + " (the points to change, with or instead of ids)")
    payload: Dict[str, Any] = Field(description="the keys to set (merge) or the whole new payload")
    merge: bool = Field(True, description="true: set these keys and keep the others; false: replace the payload")


class DeletePayloadKeys(_Body):
    ids: Union[List[Id], Id, None] = Field(None, description=_IDS)
    filter: Filter = Field(None, description=_FILTER + " (the points to change, with or instead of ids)")
    keys: List[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="the keys to remove; dotted paths reach into objects")


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
    with_document: bool = False


class _SearchOptions(_Body):
    k: int = Field(10, ge=1, le=INT64_MAX)
    filter: Filter = Field(None, description=_FILTER)
    ef: Optional[int] = Field(None, ge=1, le=INT64_MAX,
                              description="graph beam width (default: the collection's ef_search)")
    dims: Optional[int] = Field(None, ge=1, le=INT64_MAX, description="search only this MRL prefix's index")
    plan: Optional[Dict[str, Any]] = Field(None, description=_PLAN)
    using: Optional[VectorName] = Field(None, description=_USING)


class RRF(_Body):
    kind: Literal["rrf"]
    k: int = Field(60, ge=0, le=INT64_MAX, description="damps the weight of the top ranks")
    alpha: Optional[float] = Field(None, ge=0, le=1, description="the vector branch's weight (null: each weighs 1)")
    candidates: Optional[int] = Field(None, ge=1, le=100_000, description="how many points each branch fetches")


class DBSF(_Body):
    kind: Literal["dbsf"]
    alpha: Optional[float] = Field(None, ge=0, le=1, description="the vector branch's weight (null: each weighs 1)")
    candidates: Optional[int] = Field(None, ge=1, le=100_000, description="how many points each branch fetches")


class Search(_SearchOptions):
    vector: Optional[Vector] = Field(None, description=_VECTOR + "; or give 'text' or 'sparse' (or several, fused)")
    text: Optional[str] = Field(None, min_length=1, max_length=MAX_TEXT_CHARS, description=_TEXT)
    text_field: Optional[str] = Field(None, description=_TEXT_FIELD)
    sparse: Union[Dict[str, SparseVector], SparseVector, None] = Field(None, description=_SPARSE_QUERY)
    fusion: Union[RRF, DBSF, None] = Field(None, description=_FUSION)
    group_by: Optional[str] = Field(None, min_length=1, description=_GROUP_BY)
    group_size: int = Field(1, ge=1, le=MAX_GROUP_SIZE, description="hits per group (with group_by)")
    with_payload: bool = True
    with_vector: bool = False
    with_document: bool = False


class SearchBatch(_SearchOptions):
    vectors: Vectors = Field(description=_VECTORS)
    with_payload: bool = True
    with_vector: bool = False
    with_document: bool = False


class Recommend(_Body):
    positive: List[Union[Id, Vector]] = Field(min_length=1, description=(
        "examples like the points wanted: point ids (never returned) and/or vectors (in MessagePack bodies also "
        "float32 bytes)"))
    negative: Optional[List[Union[Id, Vector]]] = Field(None, description="examples unlike them, likewise")
    k: int = Field(10, ge=1, le=INT64_MAX)
    filter: Filter = Field(None, description=_FILTER)
    strategy: Literal["average_vector", "best_score"] = Field("average_vector", description=(
        "average_vector: one search with avg(positive) + (avg(positive) - avg(negative)); best_score: each point's "
        "best similarity to a positive example, or minus the square of its best to a negative one if that is "
        "higher (a search per positive example)"))
    ef: Optional[int] = Field(None, ge=1, le=INT64_MAX,
                              description="graph beam width (default: the collection's ef_search)")
    with_payload: bool = True
    with_vector: bool = False
    with_document: bool = False
    using: Optional[VectorName] = Field(None, description=_USING + "; ids' examples use it too")


class Explain(_SearchOptions):
    query: Union[Vector, Vectors, None] = Field(None, description="one vector or a batch; or give 'text' or 'sparse' "
                                                                   "(or several, fused), as /search takes them")
    execute: bool = False
    text: Optional[str] = Field(None, min_length=1, max_length=MAX_TEXT_CHARS, description=_TEXT)
    text_field: Optional[str] = Field(None, description=_TEXT_FIELD)
    sparse: Union[Dict[str, SparseVector], SparseVector, None] = Field(None, description=_SPARSE_QUERY)
    fusion: Union[RRF, DBSF, None] = Field(None, description=_FUSION)


class Tune(_Body):
    target_recall: float = Field(0.95, gt=0, le=1)
    k: int = Field(10, ge=1, le=INT64_MAX)
    queries: Union[Annotated[int, Field(ge=1, le=INT64_MAX)], Vectors] = Field(
        200, description="how many stored vectors to sample, or real queries")
    seed: int = Field(0, ge=0, le=INT64_MAX)
    using: Optional[VectorName] = Field(None, description=_USING)


class VectorUpkeep(_Body):
    """Upkeep of one vector's index (training the quantizer, learning a rotation)."""

    using: Optional[VectorName] = Field(None, description=_USING)


class WaitIndexed(_Body):
    timeout: Optional[float] = Field(None, ge=0, description="seconds; null: as long as it takes")


class PayloadIndex(_Body):
    kind: Literal["keyword", "integer", "float", "bool"]


# Defaults read from vecdb.text.settings.TextIndexSettings, as IndexBody's from HNSW.
class TextIndex(_Body):
    language: Optional[str] = Field(text_settings.TextIndexSettings.language, description=(
        "the Snowball stemmer's language (english, french, german, spanish, ...), or null for no stemming"))
    stopwords: Union[List[Annotated[str, Field(min_length=1)]], Literal[False], None] = Field(
        None, description="the words left out: null for the language's built-in list (English has one), false for "
                          "none, or a list of words")
    k1: float = Field(text_settings.TextIndexSettings.k1, ge=0, description="BM25's term-frequency saturation")
    b: float = Field(text_settings.TextIndexSettings.b, ge=0, le=1, description="BM25's length normalisation")


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


class TextIndexSettings(_Answer):
    language: Optional[str]
    stopwords: List[str]
    k1: float
    b: float


class VectorSettings(_Answer):
    dim: int
    metric: Metric
    index: Dict[str, Any]
    quantization: Optional[Dict[str, Any]]
    mrl_dims: List[int]
    rotate: Optional[str]
    default_plan: Optional[Dict[str, Any]]


class CollectionSettings(_Answer):
    name: str
    count: int
    dim: int = Field(description="the dimension (with named vectors: the default's, as the settings below)")
    metric: Literal["cosine", "ip", "l2"]
    index: Dict[str, Any]
    quantization: Optional[Dict[str, Any]]
    mrl_dims: List[int]
    rotate: Optional[str]
    payload_indexes: Dict[str, str]
    text_indexes: Dict[str, TextIndexSettings] = Field(description="field -> its text index's settings")
    sparse: List[str] = Field(description="the sparse vectors its points may have, by name")
    default_plan: Optional[Dict[str, Any]]
    vectors: Optional[Dict[str, VectorSettings]] = Field(
        None, description="a collection made with named vectors: each one's settings, the default first")
    embedding: Optional[Dict[str, Any]] = Field(None, description=_EMBEDDING)


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


class TextIndexes(_Answer):
    text_indexes: Dict[str, TextIndexSettings] = Field(description="field -> its text index's settings")


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
    vector: Union[List[float], Dict[str, List[float]], None] = Field(
        None, description="with with_vector (MessagePack: float32 bytes); with named vectors {name: vector} of those "
                          "the point has")
    document: Optional[str] = Field(None, description="with with_document, if the point has one")


class Hit(Point):
    score: float


class StoredPoint(Point):
    sparse: Optional[Dict[str, SparseVector]] = Field(
        None, description="with with_vector, in a collection that declares sparse vectors: those the point has")


class Records(_Answer):
    records: List[StoredPoint]


class Page(Records):
    cursor: Optional[int] = Field(description="pass it back for the next page; null at the end")


class Deleted(_Answer):
    deleted: int


class Count(_Answer):
    count: int


class Hits(_Answer):
    hits: List[Hit]


class Group(_Answer):
    key: Union[str, int, float, bool] = Field(description="the group_by field's value")
    hits: List[Hit] = Field(description="its best hits, best first")


class Groups(_Answer):
    groups: List[Group] = Field(description="best first, by their best hit")


class Updated(_Answer):
    updated: int = Field(description="how many points were found and changed")


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
    plan: Optional[Dict[str, Any]] = Field(description="null for a search by text or a sparse vector alone")
    description: str
    stages: List[Dict[str, Any]]
