"""Index choices and collection settings (what ``create_collection`` takes and
what is stored with a collection)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

from vecdb.checks import positive_int
from vecdb.errors import InvalidArgumentError
from vecdb.metrics import parse_metric

_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # matched whole (fullmatch: "$" would allow a final newline)
MAX_ROTATE_DIM = 2048  # a PCA rotation's eigendecomposition: ~10-20 s at 2048 on the reference machine
MAX_PREFIXES = 8  # each prefix is one more index to keep in RAM and update on every write


@dataclass(frozen=True)
class HNSW:
    """Approximate search on an HNSW graph (the default).

    Args:
        M: links per node (``2*M`` on the bottom layer).
        ef_construction: beam width while inserting.
        ef_search: default beam width of a search (a search may pass ``ef``).
        dtype: ``"float32"``, or ``"float16"`` to halve the graph's vector memory.
    """

    M: int = 16
    ef_construction: int = 200
    ef_search: int = 64
    dtype: Literal["float32", "float16"] = "float32"

    def __post_init__(self) -> None:
        # The native index's limits, checked here so a collection is never
        # stored with settings its index cannot be built with.
        if positive_int(self.M, "M", 2) > 256:
            raise InvalidArgumentError(f"M must be between 2 and 256, got {self.M}")
        if positive_int(self.ef_construction, "ef_construction") > 100_000:
            raise InvalidArgumentError(f"ef_construction must be between 1 and 100000, got {self.ef_construction}")
        positive_int(self.ef_search, "ef_search")
        if self.dtype not in ("float32", "float16"):
            raise InvalidArgumentError(f"HNSW dtype must be 'float32' or 'float16', got {self.dtype!r}")


@dataclass(frozen=True)
class Flat:
    """Exact search: every query scans every vector (best below ~10k vectors,
    and the reference for recall)."""


IndexSpec = Union[HNSW, Flat]


@dataclass(frozen=True)
class PQ:
    """Product quantization: keep ``m``-byte codes in memory instead of
    vectors, and re-rank each search's best ``rerank`` candidates with the
    full vectors read from disk (LMDB).

    Until the collection holds ``train_size`` vectors it is searched exactly;
    at that point the codebooks are trained (on a sample of at most
    ``max_samples`` vectors, ``iterations`` k-means steps), stored with the
    collection, and used for every vector from then on. They are trained
    again only on request (:meth:`vecdb.Collection.train_quantizer`).

    With ``vecdb.HNSW`` the graph navigates by code distances (links and
    codes in RAM); with ``vecdb.Flat`` every search scans all codes.

    Args:
        m: bytes per vector; must divide the dimension (``None``: the
            largest divisor of the dimension up to ``dim / 8``, e.g. 48 for 384).
        rerank: candidates re-ranked exactly per search (at least ``k`` are).
        train_size: vectors needed before the codebooks are trained (>= 256).
        max_samples: at most this many vectors are sampled for training.
        iterations: k-means iterations per sub-vector.
        opq: learn a rotation first (see :class:`vecdb.ProductQuantizer`):
            better codes, slower training.
    """

    m: Optional[int] = None
    rerank: int = 100
    train_size: int = 10_000
    max_samples: int = 65_536
    iterations: int = 20
    opq: bool = False

    def __post_init__(self) -> None:
        # Stored as plain ints (a numpy integer would not serialize).
        if self.m is not None:
            object.__setattr__(self, "m", positive_int(self.m, "m"))
        object.__setattr__(self, "rerank", positive_int(self.rerank, "rerank"))
        object.__setattr__(self, "train_size", positive_int(self.train_size, "train_size", 256))
        object.__setattr__(self, "max_samples", positive_int(self.max_samples, "max_samples", 256))
        object.__setattr__(self, "iterations", positive_int(self.iterations, "iterations"))
        if self.iterations > 1000:
            raise InvalidArgumentError(f"PQ iterations must be at most 1000, got {self.iterations}")
        if not isinstance(self.opq, bool):
            raise InvalidArgumentError(f"PQ opq must be True or False, got {self.opq!r}")

    def for_dim(self, dim: int) -> "PQ":
        """These settings with ``m`` chosen for (and checked against) ``dim``."""
        m = self.m if self.m is not None else max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
        if m > dim or dim % m:
            divisors = ", ".join(str(d) for d in range(1, min(dim, 256) + 1) if dim % d == 0)
            raise InvalidArgumentError(f"PQ m={m} does not divide the dimension {dim} into equal sub-vectors; "
                                       f"m can be one of {divisors}")
        return replace(self, m=m)


def index_to_dict(index: IndexSpec) -> Dict[str, Any]:
    return {"kind": "hnsw" if isinstance(index, HNSW) else "flat", **asdict(index)}


def check_mrl_dims(mrl_dims: Any, dim: int) -> List[int]:
    """Prefix sizes: distinct integers in [1, dim), returned sorted."""
    if mrl_dims is None:
        return []
    if isinstance(mrl_dims, (str, bytes, Mapping)) or not hasattr(mrl_dims, "__iter__"):  # a dict's keys: a mistake
        raise InvalidArgumentError(f"mrl_dims must be a list of prefix sizes, e.g. [64, 128], got {mrl_dims!r}")
    sizes = [positive_int(size, "mrl_dims entry") for size in mrl_dims]
    for size in sizes:
        if size >= dim:
            raise InvalidArgumentError(f"mrl_dims entry {size} must be below the dimension {dim} "
                                       "(the full dimension is always indexed)")
    if len(set(sizes)) != len(sizes):
        raise InvalidArgumentError(f"mrl_dims has repeated sizes: {sizes}")
    if len(sizes) > MAX_PREFIXES:
        raise InvalidArgumentError(f"mrl_dims may list at most {MAX_PREFIXES} prefix sizes, got {len(sizes)}")
    return sorted(sizes)


def check_rotate(rotate: Any, mrl_dims: List[int], dim: int) -> Optional[str]:
    if rotate is None:
        return None
    if rotate != "pca":
        raise InvalidArgumentError(f"rotate must be None or 'pca', got {rotate!r}")
    if dim > MAX_ROTATE_DIM:
        raise InvalidArgumentError(f"rotate='pca' supports dim up to {MAX_ROTATE_DIM} (learning it is a dim x dim "
                                   f"eigendecomposition inside an upsert: ~2 minutes at 4096 on 2 cores); got "
                                   f"dim={dim}. Models with Matryoshka training need no rotation")
    if not mrl_dims:
        raise InvalidArgumentError("rotate='pca' needs mrl_dims (the rotation only serves the prefix indexes)")
    return rotate


def check_collection_name(name: Any) -> str:
    """Collection names are 1-128 letters, digits, ``-`` or ``_`` (they name
    files, so no separators, dots or ``..``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"invalid collection name {name!r}: use 1-128 letters, digits, '-' or '_'"
        )
    return name


def vector_part_name(name: str, vector: str) -> str:
    """The collection holding vector ``vector`` of collection ``name``, a
    collection of named vectors (see vecdb.named_vectors): a name with a
    dot, which no user collection can take."""
    return f"{name}.{vector}"


def is_part_name(name: str) -> bool:
    """Whether a stored collection name is a named vector's part."""
    return "." in name


@dataclass(frozen=True)
class VectorSpec:
    """One of a collection's named vectors (``create_collection(name,
    vectors={"text": vecdb.VectorSpec(384), "image": vecdb.VectorSpec(512)})``):
    its dimension, metric and index settings, as ``create_collection`` takes
    them for a collection of one vector. Each named vector has its own
    index, quantization and MRL prefixes."""

    dim: int
    metric: str = "cosine"
    index: Optional[IndexSpec] = None  # None: vecdb.HNSW()
    quantization: Optional[PQ] = None
    mrl_dims: Optional[Tuple[int, ...]] = None
    rotate: Optional[str] = None

    def settings(self) -> "CollectionSettings":
        """These settings checked (InvalidArgumentError) and normalized."""
        return CollectionSettings.new(self.dim, self.metric, self.index or HNSW(), self.quantization, self.mrl_dims,
                                      self.rotate)

    @classmethod
    def of(cls, settings: "CollectionSettings") -> "VectorSpec":
        return cls(dim=settings.dim, metric=settings.metric, index=settings.index,
                   quantization=settings.quantization, mrl_dims=settings.mrl_dims or None, rotate=settings.rotate)


def check_vector_specs(vectors: Any) -> Dict[str, "CollectionSettings"]:
    """``create_collection(vectors=...)``: a non-empty ``{name: VectorSpec}``
    (names as collection names), each spec checked."""
    if not isinstance(vectors, Mapping) or not vectors:
        raise InvalidArgumentError("vectors must be a non-empty dict of vector names to vecdb.VectorSpec(dim, ...), "
                                   f"got {vectors!r}")
    checked = {}
    for name, spec in vectors.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidArgumentError(f"invalid vector name {name!r}: use 1-128 letters, digits, '-' or '_'")
        if not isinstance(spec, VectorSpec):
            raise InvalidArgumentError(f"vectors[{name!r}] must be vecdb.VectorSpec(dim, metric, ...), got {spec!r}")
        checked[name] = spec.settings()
    return checked


@dataclass(frozen=True)
class CollectionSettings:
    """What a collection is created with, typed and checked; it never
    changes afterwards."""

    dim: int
    metric: str
    index: IndexSpec
    quantization: Optional[PQ] = None  # with ``m`` chosen for ``dim``
    mrl_dims: Tuple[int, ...] = ()  # prefix sizes with an index each, sorted
    rotate: Optional[str] = None  # "pca": prefixes of the PCA-rotated vectors

    @classmethod
    def new(cls, dim: Any, metric: Any, index: Any, quantization: Any = None, mrl_dims: Any = None,
            rotate: Any = None) -> "CollectionSettings":
        """Settings checked and normalized from what ``create_collection`` takes."""
        if not isinstance(index, (HNSW, Flat)):
            raise InvalidArgumentError(f"index must be vecdb.HNSW(...) or vecdb.Flat(), got {index!r}")
        if quantization is not None and not isinstance(quantization, PQ):
            raise InvalidArgumentError(f"quantization must be vecdb.PQ(...) or None, got {quantization!r}")
        dim = positive_int(dim, "dim")
        if dim > 32768:
            raise InvalidArgumentError(f"dim must be at most 32768, got {dim}")
        sizes = check_mrl_dims(mrl_dims, dim)
        return cls(dim=dim, metric=parse_metric(metric), index=index,
                   quantization=None if quantization is None else quantization.for_dim(dim),
                   mrl_dims=tuple(sizes), rotate=check_rotate(rotate, sizes, dim))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CollectionSettings":
        """The settings in ``data``: a stored config, or a collection's entry
        in ``describe()`` (embedded or from a server); other keys are
        ignored. Raises KeyError, TypeError or InvalidArgumentError when
        they are incomplete or invalid."""
        index = dict(data["index"])
        kind = index.pop("kind")
        quantization = data.get("quantization")
        return cls(dim=data["dim"], metric=data["metric"], index=HNSW(**index) if kind == "hnsw" else Flat(),
                   quantization=None if quantization is None else PQ(**quantization),
                   mrl_dims=tuple(data.get("mrl_dims") or ()), rotate=data.get("rotate"))

    def to_dict(self) -> Dict[str, Any]:
        """Plain values (what ``describe()`` reports and a config stores)."""
        return {"dim": self.dim, "metric": self.metric, "index": index_to_dict(self.index),
                "quantization": None if self.quantization is None else asdict(self.quantization),
                "mrl_dims": list(self.mrl_dims), "rotate": self.rotate}


@dataclass
class CollectionConfig:
    """A collection's name and key, its settings (fixed at creation) and its
    counters (advanced by writes and upkeep), stored (msgpack of
    :meth:`to_dict`) in LMDB and rewritten by every write transaction."""

    name: str
    key: str  # random hex naming the collection's LMDB databases and snapshot
    settings: CollectionSettings
    payload_indexes: Dict[str, str] = field(default_factory=dict)
    next_label: int = 0
    sequence: int = 0  # number of committed write batches
    log_start: int = 1  # oldest sequence still in the change log
    quantizer_version: int = 0  # codebooks trained so far (0: searching exactly)
    rotation_version: int = 0  # rotations learned so far (0: none yet)
    default_plan: Optional[Dict[str, Any]] = None  # set by Collection.tune()
    default_plan_k: int = 0  # the k it was tuned for
    # A hash chained over every committed batch's labels and vectors (what
    # an index holds): an index snapshot is used only if it carries the
    # fingerprint of the state it claims to reflect (see
    # CollectionStore.fingerprint_at), so a copy that diverged is never
    # mistaken for this collection at the same sequence and count.
    fingerprint: int = 0
    base_fingerprint: int = 0  # the fingerprint at log_start - 1
    # field -> TextIndexSettings.to_dict() of each text index (stored only
    # once there is one: configs written before text indexes read back
    # byte for byte the same).
    text_indexes: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # The sparse vectors its points may have, by name (set at creation;
    # stored only when there are some, like text_indexes).
    sparse: List[str] = field(default_factory=list)
    # A named-vectors collection's vector names, the default first (set at
    # creation; stored only when there are some). Its points' vectors live
    # in one collection per name (see vecdb.named_vectors).
    vectors: List[str] = field(default_factory=list)
    # Whether any point was ever given a document (set by the first upsert
    # with documents; stored only once set): only then do replaces and
    # deletes have stored documents to remove.
    documents: bool = False
    # The embedding function's config (vecdb.embeddings: what rebuilds it
    # when the collection is opened again), if it was created with one.
    embedding: Optional[Dict[str, Any]] = None

    @classmethod
    def new(cls, name: str, key: str, dim: Any, metric: Any, index: Any,
            quantization: Any = None, mrl_dims: Any = None, rotate: Any = None) -> "CollectionConfig":
        return cls(name=name, key=key, settings=CollectionSettings.new(dim, metric, index, quantization, mrl_dims,
                                                                       rotate))

    @classmethod
    def from_dict(cls, data: Any) -> "CollectionConfig":
        """The config :meth:`to_dict` stored; ValueError if ``data`` is not one."""
        try:
            counters = {name: value for name, value in data.items() if name not in _SETTINGS_KEYS}
            return cls(settings=CollectionSettings.from_dict(data), **counters)
        except (AttributeError, KeyError, TypeError, InvalidArgumentError) as exc:
            raise ValueError(f"not a collection config: {exc}") from None

    def to_dict(self) -> Dict[str, Any]:
        """The stored form. Keys keep the order they have always been stored
        in (msgpack keeps it), so a config reads and writes back byte for
        byte the same."""
        settings = self.settings.to_dict()
        return {"name": self.name, "key": self.key, "dim": settings["dim"], "metric": settings["metric"],
                "index": settings["index"], "payload_indexes": self.payload_indexes, "next_label": self.next_label,
                "sequence": self.sequence, "log_start": self.log_start, "quantization": settings["quantization"],
                "quantizer_version": self.quantizer_version, "mrl_dims": settings["mrl_dims"],
                "rotate": settings["rotate"], "rotation_version": self.rotation_version,
                "default_plan": self.default_plan, "default_plan_k": self.default_plan_k,
                "fingerprint": self.fingerprint, "base_fingerprint": self.base_fingerprint,
                **({"text_indexes": self.text_indexes} if self.text_indexes else {}),
                **({"sparse": self.sparse} if self.sparse else {}),
                **({"vectors": self.vectors} if self.vectors else {}),
                **({"documents": True} if self.documents else {}),
                **({"embedding": self.embedding} if self.embedding is not None else {})}

    @property
    def label(self) -> str:
        """How messages name it: ``'docs'``, or for a named vector's part
        (see vecdb.named_vectors) ``'docs' (vector 'image')``."""
        if not is_part_name(self.name):
            return repr(self.name)
        collection, _, vector = self.name.rpartition(".")
        return f"{collection!r} (vector {vector!r})"

    # Shorthands for the settings every layer reads.

    @property
    def dim(self) -> int:
        return self.settings.dim

    @property
    def metric(self) -> str:
        return self.settings.metric

    @property
    def index_spec(self) -> IndexSpec:
        return self.settings.index

    @property
    def pq(self) -> Optional[PQ]:
        return self.settings.quantization

    @property
    def mrl_dims(self) -> Tuple[int, ...]:
        return self.settings.mrl_dims

    @property
    def rotate(self) -> Optional[str]:
        return self.settings.rotate

    @property
    def prefixes_ready(self) -> bool:
        """Whether the prefix indexes exist (with ``rotate="pca"``, only once
        the rotation is learned)."""
        return bool(self.mrl_dims) and (self.rotate is None or self.rotation_version > 0)


_SETTINGS_KEYS = frozenset(CollectionSettings.__dataclass_fields__)
