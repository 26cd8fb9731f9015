"""The searches the hybrid benchmark times, each one ``Collection.search`` call per query.

A mode is data: which of the query's vector and text it passes, k, the fusion (None for a
single search) and whether hits carry payloads. ``dense`` is the baseline every other
mode's latency is divided by. The "part" modes are the branches of a hybrid search run as
searches of their own (dense or text alone with k = the hybrid's candidates), to show
what the branches cost against what fusion and the hybrid path add.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import vecdb
from vecdb.fusion import default_candidates

BASELINE = "dense"
# The two candidate counts measured beside the default (max(20, 2k)): k itself (the least a
# branch can fetch for a top k) and 50.
EXTRA_CANDIDATES = 50


@dataclass(frozen=True)
class Mode:
    name: str
    vector: bool
    text: bool
    k: int
    fusion: str | None = None  # "rrf" or "dbsf"
    candidates: int | None = None  # the fusion's candidates (None: its default)
    with_payload: bool = False
    role: str = "search"  # "search", "hybrid" or "part" (a hybrid's branch alone)

    def fusion_object(self) -> Any:
        if self.fusion is None:
            return None
        return vecdb.RRF(candidates=self.candidates) if self.fusion == "rrf" else vecdb.DBSF(candidates=self.candidates)

    def branch_width(self) -> int:
        """How many points each branch of this hybrid search fetches."""
        return self.candidates or default_candidates(self.k)

    def call_text(self) -> str:
        """The call, as the report shows it."""
        arguments = (["q"] if self.vector else []) + (["text=t"] if self.text else []) + [f"k={self.k}"]
        if self.fusion is not None:
            inner = "" if self.candidates is None else f"candidates={self.candidates}"
            arguments.append(f"fusion=vecdb.{self.fusion.upper()}({inner})")
        arguments.append(f"with_payload={self.with_payload}")
        return f"search({', '.join(arguments)})"

    def bind(self, collection: Any, vectors: list[Any], texts: list[str]) -> Callable[[int], Any]:
        """A function of the query's position making this mode's call (everything but the
        query resolved beforehand, so every mode's timed call is the search alone)."""
        search, k, with_payload, fusion = collection.search, self.k, self.with_payload, self.fusion_object()
        if self.vector and self.text:
            return lambda i: search(vectors[i], text=texts[i], k=k, fusion=fusion, with_payload=with_payload)
        if self.vector:
            return lambda i: search(vectors[i], k=k, with_payload=with_payload)
        return lambda i: search(text=texts[i], k=k, with_payload=with_payload)


def modes_for(k: int, with_payload: bool = True) -> list[Mode]:
    """Every mode for top ``k``: the searches, the hybrids, the hybrids' branches alone,
    and (``with_payload``) the dense, text and default hybrids again returning payloads."""
    default = default_candidates(k)
    modes = [Mode("dense", True, False, k), Mode("text", False, True, k),
             Mode("hybrid-rrf", True, True, k, "rrf", role="hybrid"),
             Mode("hybrid-dbsf", True, True, k, "dbsf", role="hybrid")]
    for candidates in dict.fromkeys((k, EXTRA_CANDIDATES)):
        if candidates != default:
            modes.append(Mode(f"hybrid-rrf-c{candidates}", True, True, k, "rrf", candidates, role="hybrid"))
    for width in dict.fromkeys((default, EXTRA_CANDIDATES)):
        if width != k:
            modes += [Mode(f"dense-k{width}", True, False, width, role="part"),
                      Mode(f"text-k{width}", False, True, width, role="part")]
    if with_payload:
        modes += [Mode(f"{mode.name}+payload", mode.vector, mode.text, k, mode.fusion, with_payload=True,
                       role=mode.role) for mode in modes[:4]]
    return modes


def parts_of(mode: Mode, by_name: dict[str, Mode]) -> tuple[str, str] | None:
    """The names of the modes that run ``mode``'s two branches alone (ids only), if measured."""
    if mode.fusion is None:
        return None
    width = mode.branch_width()
    names = (BASELINE, "text") if width == mode.k else (f"dense-k{width}", f"text-k{width}")
    return names if all(name in by_name for name in names) else None
