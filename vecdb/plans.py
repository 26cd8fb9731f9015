"""Search plans: what a collection search runs, stage by stage.

The planner (:mod:`vecdb.query.planner`) picks one for each search; pass one as
``search(..., plan=...)`` to force it. Every plan honours the search's
filter.

- :class:`Scan`: exact distances to every vector the filter allows (in a PQ
  collection: the codes, best ``rerank`` re-ranked with full vectors).
- :class:`Graph`: the HNSW graph over full vectors (or PQ codes, re-ranked).
- :class:`Funnel`: Matryoshka funnel: the index over a ``dims`` prefix
  shortlists ``candidates`` points, re-ranked exactly at full dimension.
- :class:`Prefix`: the prefix index alone (approximate scores, no re-rank).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Union

from vecdb.checks import positive_int
from vecdb.errors import InvalidArgumentError


def _optional_ef(ef: Optional[int]) -> Optional[int]:
    return None if ef is None else positive_int(ef, "ef")


@dataclass(frozen=True)
class Scan:
    """Exact scan of the allowed vectors."""

    kind = "scan"

    def describe(self, k: int) -> str:
        return f"Scan(full) -> top {k}"


@dataclass(frozen=True)
class Graph:
    """HNSW search over the full dimension with beam width ``ef`` (None:
    the search's ``ef`` or the collection's ``ef_search``)."""

    ef: Optional[int] = None
    kind = "graph"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ef", _optional_ef(self.ef))

    def describe(self, k: int) -> str:
        return f"HNSW(full, ef={self.ef or 'default'}) -> top {k}"


@dataclass(frozen=True)
class Funnel:
    """Shortlist ``candidates`` points with the index over the first
    ``dims`` dimensions (graph beam width ``ef``, at least ``candidates``),
    then re-rank them exactly at full dimension."""

    dims: int
    candidates: int = 200
    ef: Optional[int] = None
    kind = "funnel"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", positive_int(self.dims, "dims"))
        object.__setattr__(self, "candidates", positive_int(self.candidates, "candidates"))
        object.__setattr__(self, "ef", _optional_ef(self.ef))

    def describe(self, k: int) -> str:
        ef = max(self.ef or 0, self.candidates)
        return f"Funnel(dims={self.dims}, candidates={self.candidates}, ef={ef}) -> Exact(full) -> top {k}"


@dataclass(frozen=True)
class Prefix:
    """The index over the first ``dims`` dimensions alone: scores are the
    prefix's, nothing is re-ranked (fastest, least accurate)."""

    dims: int
    ef: Optional[int] = None
    kind = "prefix"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", positive_int(self.dims, "dims"))
        object.__setattr__(self, "ef", _optional_ef(self.ef))

    def describe(self, k: int) -> str:
        return f"Prefix(dims={self.dims}, ef={self.ef or 'default'}) -> top {k}"


Plan = Union[Scan, Graph, Funnel, Prefix]
_KINDS = {cls.kind: cls for cls in (Scan, Graph, Funnel, Prefix)}


def plan_to_dict(plan: Plan) -> Dict[str, Any]:
    return {"kind": plan.kind, **asdict(plan)}


def plan_from_dict(data: Any) -> Plan:
    """A plan from its dict form (``{"kind": "funnel", "dims": 64, ...}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or data["kind"] not in _KINDS:
        raise InvalidArgumentError(f"a plan dict needs 'kind' in {sorted(_KINDS)}, got {data!r}")
    fields = {key: value for key, value in data.items() if key != "kind"}
    try:
        return _KINDS[data["kind"]](**fields)
    except TypeError as exc:
        raise InvalidArgumentError(f"invalid {data['kind']} plan {data!r}: {exc}") from None


def check_plan(plan: Any) -> Plan:
    """A plan object, or one given as a dict."""
    if isinstance(plan, (Scan, Graph, Funnel, Prefix)):
        return plan
    if isinstance(plan, dict):
        return plan_from_dict(plan)
    raise InvalidArgumentError("plan must be vecdb.plans.Scan(), Graph(ef=...), Funnel(dims=..., candidates=...), "
                               f"Prefix(dims=...) or their dict form, got {plan!r}")
