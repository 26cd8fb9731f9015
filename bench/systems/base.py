"""The interface every benchmarked system implements.

A system is built once over the base vectors with a thread count, then searched with one
sweep parameter at a time (``None`` for exact systems, ``ef_search`` for graphs). Each
adapter imports its library lazily so the harness runs with only the libraries it uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench.optional import Requirement, installed_version

DEFAULT_EF_SEARCH = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
# Candidates re-ranked exactly by the PQ scan systems (10 = k: no re-ranking).
DEFAULT_RERANK = (10, 20, 50, 100, 200, 500)
DEFAULT_NPROBE = (1, 2, 4, 8, 16, 32, 64, 128)
# Shortlist re-ranked by the graph and IVF PQ systems.
PQ_SHORTLIST = 100


@dataclass(frozen=True)
class GraphSettings:
    """HNSW build and search settings shared by the graph adapters."""

    m: int = 16
    ef_construction: int = 200
    ef_search: tuple[int, ...] = DEFAULT_EF_SEARCH
    # Product quantization: bytes per code (None: dim / 8), sweeps of the PQ systems.
    pq_m: int | None = None
    rerank: tuple[int, ...] = DEFAULT_RERANK
    nprobe: tuple[int, ...] = DEFAULT_NPROBE

    def pq_bytes(self, dim: int) -> int:
        """Bytes per PQ code for vectors of ``dim``: pq_m, or dim / 8."""
        m = self.pq_m or max(1, dim // 8)
        if dim % m:
            raise ValueError(f"--pq-m {m} does not divide the dimension {dim}")
        return m


class System(ABC):
    """One searchable system under test.

    ``search`` takes a 1-D query (returns ids of shape (k,)) or a 2-D batch (returns (m, k));
    ids are int64 and -1 marks a missing result.
    """

    name: ClassVar[str]
    requirement: ClassVar[Requirement]
    exact: ClassVar[bool]
    param_name: ClassVar[str | None] = None

    def sweep(self) -> Sequence[int | None]:
        """Values of the search parameter to measure; exact systems have the single value None."""
        return [None]

    @abstractmethod
    def build(self, base: np.ndarray, metric: str, threads: int) -> None:
        """Index ``base`` (n, d) float32 for ``metric``, using and then searching with ``threads``."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, param: int | None) -> np.ndarray:
        """Ids of the k nearest base vectors for each query."""

    @abstractmethod
    def index_bytes(self) -> int:
        """Bytes the index holds (vectors plus any graph), as the library reports it."""

    def library_version(self) -> str:
        """Installed version of the library this system wraps."""
        return installed_version(self.requirement) or "not installed"


class GraphSystem(System):
    """A system with an HNSW graph, swept over ``ef_search``."""

    exact = False
    param_name = "ef_search"

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings

    def sweep(self) -> Sequence[int | None]:
        """The configured ef_search values."""
        return list(self.settings.ef_search)
