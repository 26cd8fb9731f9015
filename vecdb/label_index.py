"""The in-memory search structure of one collection, keyed by internal labels.

Two kinds behind one small interface: :class:`GraphLabelIndex` (an HNSW graph
from the native core) and :class:`ExactLabelIndex` (a growable matrix searched
exactly by :func:`vecdb.knn`). Both are caches of what LMDB holds: they can
always be rebuilt from it.
"""

from __future__ import annotations

import threading
from typing import BinaryIO, Optional, Tuple, Union

import numpy as np

from vecdb.config import HNSW, Flat, IndexSpec
from vecdb.flat import knn
from vecdb.hnsw import HNSWIndex

# Past this share of deleted vectors the graph is compacted after a delete.
AUTO_COMPACT_DELETED_FRACTION = 0.25


class GraphLabelIndex:
    """An HNSW graph whose ids are the collection's labels."""

    def __init__(self, graph: HNSWIndex, ef_search: int) -> None:
        self.graph = graph
        self.ef_search = ef_search

    @classmethod
    def empty(cls, dim: int, metric: str, spec: HNSW) -> "GraphLabelIndex":
        graph = HNSWIndex(dim, metric, M=spec.M, ef_construction=spec.ef_construction, dtype=spec.dtype)
        return cls(graph, spec.ef_search)

    def __len__(self) -> int:
        return len(self.graph)

    def __contains__(self, label: int) -> bool:
        return label in self.graph

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self.graph.add(vectors, ids=labels)

    def delete(self, labels: np.ndarray) -> None:
        self.graph.delete(labels)
        deleted = self.graph.deleted_count
        if deleted > AUTO_COMPACT_DELETED_FRACTION * max(1, len(self.graph) + deleted):
            self.graph.compact()

    def compact(self) -> int:
        return self.graph.compact()

    def search(self, queries: np.ndarray, k: int, ef: Optional[int],
               allowed: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        return self.graph.search(queries, k, ef=ef or max(self.ef_search, k), allowed=allowed)

    def exact_search(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Exact search among the labels ``allowed`` (a boolean mask) lets
        through, scanning their vectors in place (for narrow filters)."""
        return self.graph.exact_search(queries, k, allowed=allowed)

    def labels(self) -> np.ndarray:
        return self.graph.ids()

    def memory_bytes(self) -> int:
        return self.graph.nbytes

    def write_to(self, handle: BinaryIO) -> None:
        self.graph.write_to(handle)

    @classmethod
    def read_from(cls, handle: BinaryIO, spec: HNSW) -> "GraphLabelIndex":
        return cls(HNSWIndex.read_from(handle), spec.ef_search)


class ExactLabelIndex:
    """Vectors in a matrix indexed by label; every search scans them all."""

    def __init__(self, dim: int, metric: str) -> None:
        self.metric = metric
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._present = np.zeros(0, dtype=bool)
        self._count = 0
        # Writers replace the arrays when they grow; a search works on the
        # arrays it read, so it never sees a half-copied matrix.
        self._grow_lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, label: int) -> bool:
        return 0 <= label < len(self._present) and bool(self._present[label])

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        bound = int(labels.max()) + 1 if len(labels) else 0
        with self._grow_lock:
            if bound > len(self._present):
                capacity = max(bound, 2 * len(self._present), 64)
                matrix = np.zeros((capacity, self._matrix.shape[1]), dtype=np.float32)
                matrix[: len(self._matrix)] = self._matrix
                present = np.zeros(capacity, dtype=bool)
                present[: len(self._present)] = self._present
                self._matrix, self._present = matrix, present
            self._matrix[labels] = vectors
            self._present[labels] = True
            self._count = int(self._present.sum())

    def delete(self, labels: np.ndarray) -> None:
        labels = labels[labels < len(self._present)]
        self._present[labels] = False
        self._count = int(self._present.sum())

    def compact(self) -> int:
        return 0  # nothing to repair: deleted rows are skipped by the mask

    def search(self, queries: np.ndarray, k: int, ef: Optional[int],
               allowed: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        matrix, present = self._matrix, self._present
        mask = present.copy()
        if allowed is not None:
            mask[len(allowed):] = False
            mask[: len(allowed)] &= allowed[: len(mask)]
        return knn(matrix, queries, k, metric=self.metric, allowed=mask)

    def exact_search(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return self.search(queries, k, None, allowed)

    def labels(self) -> np.ndarray:
        return np.flatnonzero(self._present)

    def memory_bytes(self) -> int:
        return self._matrix.nbytes + self._present.nbytes


LabelIndex = Union[GraphLabelIndex, ExactLabelIndex]


def empty_label_index(dim: int, metric: str, spec: IndexSpec) -> LabelIndex:
    if isinstance(spec, Flat):
        return ExactLabelIndex(dim, metric)
    return GraphLabelIndex.empty(dim, metric, spec)
