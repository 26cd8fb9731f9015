"""Index choices and collection settings (what ``create_collection`` takes and
what is stored with a collection)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Union

from vecdb._arrays import positive_int
from vecdb.errors import InvalidArgumentError
from vecdb.metrics import parse_metric

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


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
    dtype: str = "float32"

    def __post_init__(self) -> None:
        positive_int(self.M, "M", 2)
        positive_int(self.ef_construction, "ef_construction")
        positive_int(self.ef_search, "ef_search")
        if self.dtype not in ("float32", "float16"):
            raise InvalidArgumentError(f"HNSW dtype must be 'float32' or 'float16', got {self.dtype!r}")


@dataclass(frozen=True)
class Flat:
    """Exact search: every query scans every vector (best below ~10k vectors,
    and the reference for recall)."""


IndexSpec = Union[HNSW, Flat]


def index_to_dict(index: IndexSpec) -> Dict[str, Any]:
    return {"kind": "hnsw" if isinstance(index, HNSW) else "flat", **asdict(index)}


def index_from_dict(data: Dict[str, Any]) -> IndexSpec:
    data = dict(data)
    kind = data.pop("kind")
    return HNSW(**data) if kind == "hnsw" else Flat()


def check_collection_name(name: Any) -> str:
    """Collection names are 1-128 letters, digits, ``-`` or ``_`` (they name
    files, so no separators, dots or ``..``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            f"invalid collection name {name!r}: use 1-128 letters, digits, '-' or '_'"
        )
    return name


@dataclass
class CollectionConfig:
    """A collection's settings and counters, stored (msgpack) in LMDB and
    rewritten by every write transaction."""

    name: str
    key: str  # random hex naming the collection's LMDB databases and snapshot
    dim: int
    metric: str
    index: Dict[str, Any]
    payload_indexes: Dict[str, str] = field(default_factory=dict)
    next_label: int = 0
    sequence: int = 0  # number of committed write batches
    log_start: int = 1  # oldest sequence still in the change log

    @classmethod
    def new(cls, name: str, key: str, dim: Any, metric: Any, index: Any) -> "CollectionConfig":
        if not isinstance(index, (HNSW, Flat)):
            raise InvalidArgumentError(f"index must be vecdb.HNSW(...) or vecdb.Flat(), got {index!r}")
        dim = positive_int(dim, "dim")
        if dim > 32768:
            raise InvalidArgumentError(f"dim must be at most 32768, got {dim}")
        return cls(name=name, key=key, dim=dim, metric=parse_metric(metric), index=index_to_dict(index))

    @property
    def index_spec(self) -> IndexSpec:
        return index_from_dict(self.index)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
