"""Indexes over a prefix of the dimensions (Matryoshka / MRL search), and
the set of indexes a collection keeps.

Embedding models trained with Matryoshka representation learning put a
usable embedding in the first ``d'`` dimensions of every vector. An index
over those few dimensions costs ``d'/dim`` of the full one in RAM and per
distance, and its shortlist, re-ranked at full dimension, is nearly as good
as a full-dimension search. For other models a PCA rotation (see
:mod:`vecdb.index.rotation`) moves the most variance to the front first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, Optional, Union

import numpy as np

from vecdb.config import Flat, IndexSpec
from vecdb.index.backlog import Backlog
from vecdb.index.label_index import ExactLabelIndex, GraphLabelIndex, LabelIndex, Result, WrappedIndex

# Prefix graphs of this many dimensions or more store float16 vectors.
HALF_PREFIX_DIMS = 32


class PrefixLabelIndex(WrappedIndex):
    """An index of the first ``dims`` coordinates of each vector (rotated
    first when ``rotation`` is given), searched by queries cut the same way.
    Cosine prefixes are re-normalized by the inner index, as any vector is."""

    def __init__(self, dims: int, inner: Union[GraphLabelIndex, ExactLabelIndex],
                 rotation: Optional[np.ndarray]) -> None:
        self.dims = dims
        self.inner = inner
        # Only the first dims columns are ever used: x @ R[:, :dims] is the
        # prefix of the rotated vector.
        self._projection = None if rotation is None else np.ascontiguousarray(rotation[:, :dims])

    @classmethod
    def empty(cls, dims: int, metric: str, spec: IndexSpec, rotation: Optional[np.ndarray]) -> "PrefixLabelIndex":
        """A prefix graph of at least :data:`HALF_PREFIX_DIMS` dimensions
        keeps its vectors in float16 whatever the main index's dtype: it
        only shortlists (the re-rank is exact at full dimension), where half
        the bytes per visited point search faster (64- and 128-d prefixes
        of a 768-d MRL set: 10-30% more QPS at the same shortlist recall) in
        half the memory. A smaller prefix's float32 row fits a cache line
        or two already: it stays as it is."""
        inner: Union[GraphLabelIndex, ExactLabelIndex]
        if isinstance(spec, Flat):
            inner = ExactLabelIndex(dims, metric)
        else:
            inner = GraphLabelIndex.empty(dims, metric, replace(spec, dtype="float16") if dims >= HALF_PREFIX_DIMS
                                          else spec)
        return cls(dims, inner, rotation)

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """The prefixes of ``vectors`` (``(n, dim)`` float32) this index holds."""
        if self._projection is None:
            return np.ascontiguousarray(vectors[:, : self.dims])
        return np.ascontiguousarray(vectors @ self._projection, dtype=np.float32)

    def add(self, labels: np.ndarray, vectors: np.ndarray, threads: Optional[int] = None) -> None:
        self.inner.add(labels, self.project(vectors), threads)

    def search(self, queries: np.ndarray, k: int, ef: Optional[int], allowed: Optional[np.ndarray]) -> Result:
        return self.inner.search(self.project(queries), k, ef, allowed)

    def exact_search(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> Result:
        return self.inner.exact_search(self.project(queries), k, allowed)

    def memory_bytes(self) -> int:
        return self.inner.memory_bytes() + (0 if self._projection is None else self._projection.nbytes)


class IndexSet:
    """A collection's in-memory indexes: the main one (full dimension, as
    configured) and one per MRL prefix size. Every write goes to all of
    them; searches pick one or chain two (see :mod:`vecdb.query.planner`).
    A writer's set of graphs also has a ``backlog``: committed points the
    indexer has not moved into them yet, which every search scans too."""

    def __init__(self, main: LabelIndex, prefixes: Dict[int, PrefixLabelIndex], rotation_version: int,
                 backlog: Optional[Backlog] = None) -> None:
        self.main = main
        self.prefixes = prefixes
        self.rotation_version = rotation_version
        self.backlog = backlog

    @property
    def quantizer_version(self) -> int:
        return self.main.quantizer_version

    @property
    def parts(self) -> list:
        return [self.main, *self.prefixes.values()]

    @property
    def snapshots(self) -> bool:
        return any(part.snapshots for part in self.parts)

    def __len__(self) -> int:
        """Points searchable: indexed, or waiting in the backlog (while the
        indexer moves a chunk, its points may count twice, never not at all:
        the backlog is read first, and a point leaves it only once indexed)."""
        waiting = len(self.backlog) if self.backlog is not None else 0
        return waiting + len(self.main)

    def count(self, allowed: np.ndarray) -> int:
        """How many searchable points (indexed, or in the backlog) ``allowed``
        (a boolean mask over labels) lets through."""
        view = self.backlog.view() if self.backlog is not None else None  # first: a point it lacks is indexed
        return self.main.count(allowed) + (view.count(allowed) if view is not None else 0)

    def add(self, labels: np.ndarray, vectors: np.ndarray, threads: Optional[int] = None) -> None:
        for part in self.parts:
            part.add(labels, vectors, threads)

    def delete(self, labels: np.ndarray) -> None:
        for part in self.parts:
            part.delete(labels)

    def compact(self) -> int:
        return max(part.compact() for part in self.parts)

    def memory_bytes(self) -> int:
        return sum(part.memory_bytes() for part in self.parts)
