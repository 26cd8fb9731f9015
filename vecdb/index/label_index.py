"""The in-memory search structure of one collection, keyed by internal labels.

Kinds behind one small interface: :class:`GraphLabelIndex` (an HNSW graph
from the native core, over vectors or PQ codes), :class:`ExactLabelIndex` (a
growable matrix searched exactly by :func:`vecdb.knn`),
:class:`CodeScanLabelIndex` (PQ codes scanned in full) and
:class:`RerankingLabelIndex` (either compressed kind, its shortlist re-ranked
with full vectors read from LMDB). All are caches of what LMDB holds: they
can always be rebuilt from it.

The interface is two Protocols: :class:`LabelIndexBase`, what every kind
offers (and so what a :class:`WrappedIndex` may hold), and
:class:`LabelIndex`, what a collection's main index offers on top.
Protocols rather than a base class: the kinds share no code (graph, matrix,
wrapper), only the shape, and mypy checks each against it where it is used
as one. Snapshots are not part of the interface: only a graph or a code scan
is saved (:data:`SavedIndex`); the loader takes it out of its wrapper to save
it and wraps it again on load.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import BinaryIO, Callable, Optional, Protocol, Tuple, Union

import numpy as np

from vecdb.config import HNSW, Flat, IndexSpec
from vecdb.errors import CorruptIndexError
from vecdb.gate import SharedExclusiveGate
from vecdb.index.framing import Frame
from vecdb.native.arrays import unique_sorted
from vecdb.native.flat import knn
from vecdb.native.hnsw import HNSWIndex, VectorSource
from vecdb.native.pq import ProductQuantizer
from vecdb.native.rerank import rerank

# Past this share of deleted vectors the graph is compacted after a delete.
AUTO_COMPACT_DELETED_FRACTION = 0.25

Result = Tuple[np.ndarray, np.ndarray]


class LabelIndexBase(Protocol):
    """What every kind of index below offers, inner ones included."""

    @property
    def snapshots(self) -> bool:
        """Whether the index is saved to a snapshot file (else it is rebuilt
        from LMDB on open)."""

    def __len__(self) -> int: ...

    def __contains__(self, label: int) -> bool: ...

    def add(self, labels: np.ndarray, vectors: np.ndarray, threads: Optional[int] = None) -> None:
        """Add (or replace) the full-dimension ``vectors`` under ``labels``
        (a graph inserts on ``threads`` threads; None: every core)."""

    def delete(self, labels: np.ndarray) -> None: ...

    def compact(self) -> int:
        """Reclaim the room of deleted labels; how many were reclaimed."""

    def search(self, queries: np.ndarray, k: int, ef: Optional[int], allowed: Optional[np.ndarray]) -> Result:
        """The k nearest labels and distances of each query among those
        ``allowed`` (a boolean mask over labels; None: all) lets through;
        ``ef`` is a graph's beam width (None: its default)."""

    def exact_search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray]) -> Result:
        """As :meth:`search`, exactly."""

    def count(self, allowed: np.ndarray) -> int:
        """How many labels the index holds that ``allowed`` lets through."""

    def labels(self) -> np.ndarray: ...

    def memory_bytes(self) -> int: ...


class LabelIndex(LabelIndexBase, Protocol):
    """What a collection's main index (full dimension, as configured)
    offers: every kind but a bare code scan, which is always re-ranked."""

    @property
    def kind(self) -> str:
        """What the planner calls it: "graph", "exact", "pq-graph" or "pq-scan"."""

    @property
    def quantizer_version(self) -> int:
        """The codebooks its codes were made with (0: it holds vectors)."""

    def rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> Result:
        """The k nearest of each query's candidate labels (``(m, r)``, -1
        padded) by their full vectors; labels no longer present are skipped."""


class GraphLabelIndex:
    """An HNSW graph whose ids are the collection's labels."""

    kind = "graph"
    snapshots = True  # worth saving: rebuilding a graph takes a while
    quantizer_version = 0

    def __init__(self, graph: HNSWIndex, ef_search: int) -> None:
        self.graph = graph
        self.ef_search = ef_search

    @classmethod
    def empty(cls, dim: int, metric: str, spec: HNSW, quantizer: Optional[ProductQuantizer] = None,
              ) -> "GraphLabelIndex":
        graph = HNSWIndex(dim, metric, M=spec.M, ef_construction=spec.ef_construction, dtype=spec.dtype,
                          quantizer=quantizer)
        return cls(graph, spec.ef_search)

    def __len__(self) -> int:
        return len(self.graph)

    def __contains__(self, label: int) -> bool:
        return label in self.graph

    def add(self, labels: np.ndarray, vectors: np.ndarray, threads: Optional[int] = None) -> None:
        self.graph.add(vectors, ids=labels, threads=threads)

    def delete(self, labels: np.ndarray) -> None:
        self.graph.delete(labels)
        deleted = self.graph.deleted_count
        if deleted > AUTO_COMPACT_DELETED_FRACTION * max(1, len(self.graph) + deleted):
            self.graph.compact()

    def compact(self) -> int:
        return self.graph.compact()

    def search(self, queries: np.ndarray, k: int, ef: Optional[int], allowed: Optional[np.ndarray]) -> Result:
        if allowed is None:
            # Straight to the native search: queries come checked (C-contiguous float32 of the right width), and
            # the public method's checks were a tenth of a collection search's time above the graph.
            return self.graph.search_checked(queries, k, ef or max(self.ef_search, k))
        return self.graph.search(queries, k, ef=ef or max(self.ef_search, k), allowed=allowed)

    def exact_search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray]) -> Result:
        """Exact search among the labels ``allowed`` (a boolean mask; None:
        all) lets through, scanning their vectors in place."""
        if allowed is None:
            allowed = np.ones(self.graph.id_bound, dtype=bool)
        return self.graph.exact_search(queries, k, allowed=allowed)

    def rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> Result:
        """The k nearest of each query's candidate labels by the vectors in
        the graph (labels no longer present are skipped)."""
        return self.graph.rerank(queries, candidates, k)

    def count(self, allowed: np.ndarray) -> int:
        """How many labels the index holds that ``allowed`` (a boolean mask)
        lets through."""
        return self.graph.count(allowed)

    def labels(self) -> np.ndarray:
        return self.graph.ids()

    @property
    def quantizer(self) -> Optional[ProductQuantizer]:
        return self.graph.quantizer

    def memory_bytes(self) -> int:
        return self.graph.nbytes

    def write_to(self, handle: BinaryIO, live_vectors: bool = True) -> None:
        self.graph.write_to(handle, live_vectors)

    @classmethod
    def read_from(cls, handle: BinaryIO, spec: HNSW, vectors: Optional[VectorSource] = None) -> "GraphLabelIndex":
        return cls(HNSWIndex.read_from(handle, vectors), spec.ef_search)


class _RowsByLabel(ABC):
    """Rows (vectors or codes) in a matrix indexed by label, with a mask of
    the labels present; every search scans them all (how: ``_scan``)."""

    snapshots = False  # rebuilt from LMDB on open: reading the vectors is the work
    quantizer_version = 0

    def __init__(self, width: int, dtype: str) -> None:
        # (rows, present) as one attribute: writers replace both when they
        # grow, and a search reads the pair once, so it never pairs the old
        # matrix with the new mask (or sees a half-copied one).
        self._arrays: Tuple[np.ndarray, np.ndarray] = (np.zeros((0, width), dtype=dtype), np.zeros(0, dtype=bool))
        self._count = 0
        self._grow_lock = threading.Lock()
        # Scans (native, the GIL released) hold it shared; a write into the
        # matrix they read holds it alone: a point upserted again keeps its
        # label, so its row is overwritten in place and a scan reading it
        # meanwhile would score a vector half old, half new.
        self._rows_gate = SharedExclusiveGate()

    def _encode(self, vectors: np.ndarray) -> np.ndarray:
        return vectors

    def __len__(self) -> int:
        return self._count

    def __contains__(self, label: int) -> bool:
        present = self._arrays[1]
        return 0 <= label < len(present) and bool(present[label])

    def add(self, labels: np.ndarray, vectors: np.ndarray, threads: Optional[int] = None) -> None:
        encoded = self._encode(vectors)
        bound = int(labels.max()) + 1 if len(labels) else 0
        with self._grow_lock:
            rows, present = self._arrays
            if bound > len(present):  # into copies no search sees until they are swapped in
                capacity = max(bound, 2 * len(present), 64)
                grown_rows = np.zeros((capacity, rows.shape[1]), dtype=rows.dtype)
                grown_rows[: len(rows)] = rows
                grown_present = np.zeros(capacity, dtype=bool)
                grown_present[: len(present)] = present
                grown_rows[labels] = encoded
                grown_present[labels] = True
                self._arrays = (grown_rows, grown_present)
            else:
                with self._rows_gate.exclusive():
                    rows[labels] = encoded
                    present[labels] = True
            self._count = int(self._arrays[1].sum())

    def delete(self, labels: np.ndarray) -> None:
        with self._grow_lock:
            present = self._arrays[1]
            present[labels[labels < len(present)]] = False
            self._count = int(present.sum())

    def compact(self) -> int:
        return 0  # nothing to repair: deleted rows are skipped by the mask

    def count(self, allowed: np.ndarray) -> int:
        """How many labels the index holds that ``allowed`` lets through."""
        present = self._arrays[1]
        width = min(len(present), len(allowed))
        return int(np.count_nonzero(present[:width] & allowed[:width]))

    def exact_search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray]) -> Result:
        return self.search(queries, k, None, allowed)

    def search(self, queries: np.ndarray, k: int, ef: Optional[int], allowed: Optional[np.ndarray]) -> Result:
        with self._rows_gate.shared():
            rows, present = self._arrays
            mask = present.copy()
            if allowed is not None:
                mask[len(allowed):] = False
                mask[: len(allowed)] &= allowed[: len(mask)]
            return self._scan(rows, queries, k, mask)

    @abstractmethod
    def _scan(self, rows: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray) -> Result:
        """The k nearest rows allowed by ``mask`` to each query."""

    def labels(self) -> np.ndarray:
        return np.flatnonzero(self._arrays[1])

    def memory_bytes(self) -> int:
        rows, present = self._arrays
        return rows.nbytes + present.nbytes


class ExactLabelIndex(_RowsByLabel):
    """Float32 vectors indexed by label, searched exactly."""

    kind = "exact"

    def __init__(self, dim: int, metric: str) -> None:
        super().__init__(dim, "float32")
        self.metric = metric

    def rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> Result:
        """The k nearest of each query's candidate labels (labels no longer
        present are skipped)."""
        if candidates.shape[1] == 0:
            return candidates, np.zeros(candidates.shape, dtype=np.float32)
        with self._rows_gate.shared():
            rows, present = self._arrays
            inside = (candidates >= 0) & (candidates < len(present))
            kept = np.where(inside, candidates, 0)
            kept = np.where(inside & present[kept], candidates, -1)
            return rerank(queries, kept, rows, min(k, kept.shape[1]), metric=self.metric)

    def _scan(self, rows: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray) -> Result:
        return knn(rows, queries, k, metric=self.metric, allowed=mask)


class CodeScanLabelIndex(_RowsByLabel):
    """PQ codes indexed by label; a search scans every code by ADC distance.

    Snapshots save the codes (rebuilding them means reading and encoding
    every vector), in a sealed :class:`~vecdb.index.framing.Frame`: magic,
    version, sizes, the codebooks, the codes, the presence mask, then a
    checksum of all of it."""

    kind = "scan"
    snapshots = True
    # After magic and version: reserved (0), codebook bytes, rows, m.
    _FRAME = Frame("code snapshot", b"VDBCODES", 1, "IQQQ")

    def __init__(self, quantizer: ProductQuantizer) -> None:
        super().__init__(quantizer.m, "uint8")
        self.quantizer = quantizer

    def _encode(self, vectors: np.ndarray) -> np.ndarray:
        return self.quantizer.encode(vectors)

    def _scan(self, rows: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray) -> Result:
        return self.quantizer.search(queries, rows, k, allowed=mask)

    def write_to(self, handle: BinaryIO) -> None:
        rows, present = self._arrays
        codebooks = self.quantizer.to_bytes()
        payload = b"".join((codebooks, rows[: len(present)].tobytes(), present.tobytes()))
        handle.write(self._FRAME.seal((0, len(codebooks), len(present), rows.shape[1]), payload))

    @classmethod
    def read_from(cls, handle: BinaryIO) -> "CodeScanLabelIndex":
        (_, codebook_bytes, rows, m), payload = cls._FRAME.unseal(
            handle.read(), lambda fields: fields[1] + fields[2] * fields[3] + fields[2])
        index = cls(ProductQuantizer.from_bytes(payload[:codebook_bytes]))
        if index.quantizer.m != m:
            raise CorruptIndexError("code snapshot is corrupt: its codes do not match its codebooks")
        present = np.frombuffer(payload, dtype=np.bool_, count=rows, offset=codebook_bytes + rows * m).copy()
        index._arrays = (np.frombuffer(payload, dtype=np.uint8, count=rows * m, offset=codebook_bytes)
                         .reshape(rows, m).copy(), present)
        index._count = int(present.sum())
        return index


# What a snapshot file holds: the compressed kinds and graphs of vectors
# (wrappers are made anew around them on load).
SavedIndex = Union[GraphLabelIndex, CodeScanLabelIndex]

# Reads full vectors by label: ``(n, dim)`` rows and which labels were found.
VectorReader = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


class WrappedIndex:
    """An index that holds another (``inner``) and hands it everything but
    what it changes: what is added, and how it is searched."""

    inner: LabelIndexBase

    @property
    def snapshots(self) -> bool:
        return self.inner.snapshots

    def __len__(self) -> int:
        return len(self.inner)

    def __contains__(self, label: int) -> bool:
        return label in self.inner

    def delete(self, labels: np.ndarray) -> None:
        self.inner.delete(labels)

    def compact(self) -> int:
        return self.inner.compact()

    def count(self, allowed: np.ndarray) -> int:
        return self.inner.count(allowed)

    def labels(self) -> np.ndarray:
        return self.inner.labels()


class RerankingLabelIndex(WrappedIndex):
    """A compressed index (PQ graph or code scan) whose best ``rerank``
    candidates per query are re-ranked exactly with the full vectors
    ``fetch`` reads (from LMDB): RAM holds codes and links, not vectors."""

    inner: SavedIndex

    def __init__(self, inner: SavedIndex, metric: str, rerank_count: int,
                 fetch: VectorReader, quantizer_version: int) -> None:
        self.inner = inner
        self.metric = metric
        self.rerank_count = rerank_count
        self.fetch = fetch
        self.quantizer_version = quantizer_version

    @property
    def kind(self) -> str:
        """"pq-graph" or "pq-scan"."""
        return "pq-" + self.inner.kind

    def add(self, labels: np.ndarray, vectors: np.ndarray, threads: Optional[int] = None) -> None:
        self.inner.add(labels, vectors, threads)

    def search(self, queries: np.ndarray, k: int, ef: Optional[int], allowed: Optional[np.ndarray]) -> Result:
        width = max(self.rerank_count, k)
        shortlist, _ = self.inner.search(queries, width, None if ef is None else max(ef, width), allowed)
        return self.rerank(queries, shortlist, k)

    def exact_search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray]) -> Result:
        shortlist, _ = self.inner.exact_search(queries, max(self.rerank_count, k), allowed)
        return self.rerank(queries, shortlist, k)

    def rerank(self, queries: np.ndarray, shortlist: np.ndarray, k: int) -> Result:
        """The k nearest of each query's candidate labels by the full
        vectors ``fetch`` reads (labels no longer stored are skipped)."""
        width = min(k, shortlist.shape[1])
        # Each candidate read once, in key order (LMDB pages visited in turn);
        # then candidates are ranked as rows of what was read.
        wanted = unique_sorted(shortlist[shortlist >= 0])
        if not len(wanted):
            return np.full((len(shortlist), width), -1, dtype=np.int64), np.full((len(shortlist), width), np.inf,
                                                                               dtype=np.float32)
        vectors, found = self.fetch(wanted)
        rows = np.minimum(np.searchsorted(wanted, shortlist), len(wanted) - 1)
        # A candidate deleted since the index answered is no candidate.
        present = (shortlist >= 0) & found[rows]
        best, distances = rerank(queries, np.where(present, rows, -1), vectors, width, metric=self.metric)
        return np.where(best >= 0, wanted[np.maximum(best, 0)], -1), distances

    @property
    def quantizer(self) -> Optional[ProductQuantizer]:
        return self.inner.quantizer

    def memory_bytes(self) -> int:
        return self.inner.memory_bytes()


def empty_label_index(dim: int, metric: str, spec: IndexSpec) -> LabelIndex:
    """An index of vectors (before any quantization)."""
    if isinstance(spec, Flat):
        return ExactLabelIndex(dim, metric)
    return GraphLabelIndex.empty(dim, metric, spec)


def empty_quantized_index(dim: int, metric: str, spec: IndexSpec, quantizer: ProductQuantizer, rerank_count: int,
                          fetch: VectorReader, quantizer_version: int) -> RerankingLabelIndex:
    """An index of PQ codes whose searches re-rank with ``fetch``ed vectors."""
    inner: SavedIndex
    if isinstance(spec, Flat):
        inner = CodeScanLabelIndex(quantizer)
    else:
        inner = GraphLabelIndex.empty(dim, metric, spec, quantizer)
    return RerankingLabelIndex(inner, metric, rerank_count, fetch, quantizer_version)
