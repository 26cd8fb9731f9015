"""What the durable benchmark needs of each embedded database, in one record per database.

The jobs (``bench.durable.jobs``) only ever call these: ``ingest`` fills a folder until
everything is on disk and indexed, and returns when its milestones came (:data:`Milestones`), ``open`` opens that folder again in a later process with one search
setting, and ``sweep`` lists the settings tried, cheapest first, until recall@10 reaches the
target. Each database's own module says what its ingest includes and what its knob is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple

import numpy as np

from bench.optional import Requirement
from bench.server.recall import DEFAULT_EF_CANDIDATES

Setting = Dict[str, Any]
# When an ingest reached each point (time.perf_counter()): "durable", the last write call
# returned (every point stored and searchable); "indexed", every point in the index. An
# ingest leaves out the milestones it does not have (the in-memory index stores nothing).
Milestones = Dict[str, float]
# ef values for graph searches: the same candidates the server benchmark picks its ef from.
EF_SWEEP: Tuple[Setting, ...] = tuple({"ef": ef} for ef in DEFAULT_EF_CANDIDATES)


@dataclass(frozen=True)
class OpenCollection:
    """A stored collection opened for search: ``search(query, k)`` returns the ids of the k
    nearest points, best first; ``index_source()`` says where its index came from (asked after
    a search, since some databases load their index at the first one)."""

    search: Callable[[np.ndarray, int], List[int]]
    index_source: Callable[[], str]


@dataclass(frozen=True)
class DurableDatabase:
    """One database as the benchmark drives it. ``ingest_includes`` says, for the report, what
    the timed ingest covers; ``open`` is None for what stores nothing to reopen (the native
    index alone); ``sweep`` is empty for what is not searched here."""

    name: str
    requirement: Requirement
    ingest: Callable[[np.ndarray, str, Dict[str, Any], Path], Milestones]
    ingest_includes: str
    open: Optional[Callable[[Path, str, Setting], ContextManager[OpenCollection]]] = None
    knob: str = ""
    sweep: Tuple[Setting, ...] = ()
