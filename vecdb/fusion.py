"""How a hybrid search combines its branches (two or more of a vector
search, a text search and a sparse-vector search, each fetching its own
candidates): pass one as ``Collection.search(query=..., text=...,
fusion=...)``.

- :class:`RRF`: reciprocal rank fusion (Cormack et al., 2009; Qdrant's,
  Elasticsearch's and OpenSearch's default): a point scores
  ``sum of w / (k + rank)`` over the branches that found it (rank 1 is a
  branch's best). Needs no comparable scores; the usual choice.
- :class:`DBSF`: distribution-based score fusion (Qdrant's): each branch's
  scores are mapped to [0, 1] by their mean +- 3 standard deviations, then
  summed with weights: when scores carry more than their order.

``alpha`` (0..1) weighs the vector branch by ``alpha`` and the other
branches (text, sparse) by ``1 - alpha`` between them (Weaviate's
convention: 1 is vector only); None weighs every branch 1.
``candidates`` is how many points each branch fetches before fusion
(default: ``max(20, 2 * k)``: a point past a branch's 20th place adds
little to a fused top 10, and the vector branch's cost grows with it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Union

from vecdb.errors import InvalidArgumentError


@dataclass(frozen=True)
class RRF:
    """Reciprocal rank fusion; ``k`` damps the weight of the top ranks."""

    k: int = 60
    alpha: Optional[float] = None
    candidates: Optional[int] = None

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise InvalidArgumentError(f"RRF k must be an integer >= 0, got {self.k!r}")
        _check_common(self)


@dataclass(frozen=True)
class DBSF:
    """Distribution-based score fusion."""

    alpha: Optional[float] = None
    candidates: Optional[int] = None

    def __post_init__(self) -> None:
        _check_common(self)


Fusion = Union[RRF, DBSF]


def default_candidates(k: int) -> int:
    """How many points each branch fetches when ``candidates`` is None."""
    return max(20, 2 * k)


def _check_common(fusion: Any) -> None:
    alpha = fusion.alpha
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                              or not math.isfinite(alpha) or not 0 <= alpha <= 1):
        raise InvalidArgumentError(f"alpha must be a number between 0 and 1 (or None), got {alpha!r}")
    candidates = fusion.candidates
    if candidates is not None and (isinstance(candidates, bool) or not isinstance(candidates, int)
                                   or not 1 <= candidates <= 100_000):
        raise InvalidArgumentError(f"candidates must be an integer between 1 and 100000 (or None), got {candidates!r}")


def fusion_to_dict(fusion: Fusion) -> Dict[str, Any]:
    """The wire form: ``{"kind": "rrf" | "dbsf", ...fields}``."""
    return {"kind": "rrf" if isinstance(fusion, RRF) else "dbsf", **asdict(fusion)}


def fusion_from_dict(data: Any) -> Fusion:
    """The inverse of :func:`fusion_to_dict` (InvalidArgumentError if it is not one)."""
    if isinstance(data, (RRF, DBSF)):
        return data
    if not isinstance(data, dict) or data.get("kind") not in ("rrf", "dbsf"):
        raise InvalidArgumentError(f"fusion must be vecdb.RRF(...), vecdb.DBSF(...) or "
                                   f"{{'kind': 'rrf' | 'dbsf', ...}}, got {data!r}")
    fields = {name: value for name, value in data.items() if name != "kind"}
    try:
        return RRF(**fields) if data["kind"] == "rrf" else DBSF(**fields)
    except TypeError as exc:
        raise InvalidArgumentError(f"fusion {data['kind']!r}: {exc}") from None
