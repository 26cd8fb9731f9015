"""Approximate nearest-neighbour search with an HNSW graph.

Results follow the same contract as :mod:`vecdb.native.flat`: ``(ids, distances)``,
closest first, ``k`` clipped to the number of vectors, slots a filter leaves
empty padded with id ``-1`` and distance ``inf``, never an exception for "not
enough results". Ids are the caller's (non-negative int64) or given out in
order from 0. Cosine vectors are stored normalized.

Inner product (``"ip"``) on vectors of very different norms is not a metric,
and graph search on it loses recall (as in hnswlib and FAISS); embeddings
are usually unit length, where ``"ip"`` and ``"cosine"`` rank alike.

Concurrency: searches may run on any number of threads while one other
thread adds, replaces, deletes or compacts; each search sees every vector
either before or after a change, never half of it, and returns an id at
most once. Writers run one at a time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Iterable, Optional, Tuple, Union

import numpy as np

from vecdb import _core
from vecdb.checks import check_k, positive_int
from vecdb.native.arrays import (HARDWARE_THREADS, as_ids, as_matrix, candidate_ids, check_threads, id_filter_bitset,
                                 parse_dtype)
from vecdb._files import write_atomically
from vecdb.native.base import NativeIndex
from vecdb.errors import CorruptIndexError, InvalidArgumentError, InvalidDTypeError, NotFoundError
from vecdb.native.results import SearchResult, unwrap_single
from vecdb.metrics import parse_metric
from vecdb.native.pq import ProductQuantizer

DEFAULT_EF_SEARCH = 64

# Where HNSWIndex.read_from finds live vectors the file left out: (ids, rows) chunks.
VectorSource = Callable[[], Iterable[Tuple[np.ndarray, np.ndarray]]]


class HNSWIndex(NativeIndex):
    """A hierarchical navigable small-world graph over float32 or float16
    vectors, or over product-quantization codes.

    Args:
        dim: vector dimension (1 to 32768).
        metric: ``"l2"``, ``"ip"`` or ``"cosine"`` (see :mod:`vecdb.metrics`).
        M: links per node on the upper layers (``2*M`` on layer 0); more links
            give higher recall for more memory and slower inserts.
        ef_construction: beam width while inserting; higher builds a better
            graph, more slowly.
        dtype: ``"float32"``, or ``"float16"`` to halve the vectors' memory
            (queries stay float32; distances carry half precision).
        seed: seeds node levels; a single-threaded build is deterministic.
        quantizer: a trained :class:`vecdb.ProductQuantizer` (same dimension
            and metric): the index then keeps its ``m``-byte codes instead of
            the vectors (``dtype`` is ``"pq8"``). Nodes are linked by their
            exact vectors' distances while inserting; searches rank by ADC
            distance, so re-rank the shortlist with :func:`vecdb.rerank`.

    Capacity grows automatically. Deleted vectors are never returned but keep
    guiding searches until :meth:`compact` (or an :meth:`add` that would
    otherwise grow the index while a quarter of its slots are deleted)
    repairs the graph around them and gives their memory back.

    Example:
        >>> index = HNSWIndex(384, metric="cosine", M=16, ef_construction=200)
        >>> ids = index.add(vectors)                      # ids 0..n-1
        >>> index.add(more, ids=[7, 1001])                # replaces 7, adds 1001
        >>> ids, distances = index.search(queries, k=10, ef=64)
    """

    def __init__(
        self,
        dim: int,
        metric: str = "cosine",
        *,
        M: int = 16,
        ef_construction: int = 200,
        dtype: Any = "float32",
        seed: int = 0,
        quantizer: Optional[ProductQuantizer] = None,
    ) -> None:
        if quantizer is not None and not isinstance(quantizer, ProductQuantizer):
            raise InvalidArgumentError(f"quantizer must be a vecdb.ProductQuantizer, got {type(quantizer).__name__}")
        self._native = _core.HnswIndex(
            dim, parse_metric(metric), parse_dtype(dtype), positive_int(M, "M"),
            positive_int(ef_construction, "ef_construction"), positive_int(seed, "seed", minimum=0),
            None if quantizer is None else quantizer._native,
        )

    def __len__(self) -> int:
        """Vectors that can be returned (added and not deleted)."""
        return self._native.size

    def __contains__(self, id: Any) -> bool:
        ids = as_ids(id)
        return ids.size == 1 and self._native.contains(int(ids[0]))

    def __repr__(self) -> str:
        return (f"HNSWIndex(dim={self.dim}, metric={self.metric!r}, M={self._native.M}, "
                f"ef_construction={self._native.ef_construction}, dtype={self.dtype!r}, size={len(self)})")

    @property
    def dtype(self) -> str:
        """Storage of the vectors: ``"float32"``, ``"float16"`` or ``"pq8"`` (codes)."""
        return self._native.dtype

    @property
    def quantizer(self) -> Optional[ProductQuantizer]:
        """A copy of the codebooks of a ``"pq8"`` index (``None`` otherwise)."""
        native = self._native.quantizer
        return None if native is None else ProductQuantizer._wrap(lambda: native)

    @property
    def deleted_count(self) -> int:
        """Deleted (or replaced) vectors still held until :meth:`compact`."""
        return self._native.deleted_count

    @property
    def id_bound(self) -> int:
        """One more than the largest id ever used: every id is below it, and a
        boolean ``allowed`` mask of this length covers them all."""
        return self._native.id_bound

    def add(self, vectors: Any, ids: Any = None, *, threads: Optional[int] = None) -> np.ndarray:
        """Insert vectors, or replace them where an id already exists; returns the ids.

        Args:
            vectors: ``(n, dim)`` array or one ``(dim,)`` vector.
            ids: non-negative integer ids, distinct within the call. ``None``
                gives out ``id_bound, id_bound + 1, ...``. A vector whose id
                is present replaces the old one (its neighbourhood is linked
                anew; the old vector is retired like a delete).
            threads: batches of 64 or more are inserted on this many threads
                (``None``: every core).

        Nothing changes when any row or id is invalid.
        """
        matrix, _ = as_matrix(vectors, "float32", self.dim, "vectors")
        if self.dtype == "float16" and self.metric != "cosine":
            as_matrix(matrix, "float16", self.dim, "vectors")  # range check only: cosine rescales
        id_array = None if ids is None else as_ids(ids)
        first = self._native.add(matrix, id_array, check_threads(threads))
        return id_array if id_array is not None else np.arange(first, first + matrix.shape[0], dtype=np.int64)

    def delete(self, ids: Any) -> int:
        """Delete vectors by id; returns how many were present.

        Ids that are not present are skipped; a negative or non-integer id
        raises and deletes nothing. Deleted vectors are never returned and
        still guide searches until the index is compacted.
        """
        return self._native.remove(as_ids(ids))

    def compact(self, *, threads: Optional[int] = None) -> int:
        """Repair the graph around deleted vectors and give their memory back.

        Every node that linked to a deleted one gets new links chosen among
        its other neighbours and the deleted node's neighbours; then the
        vectors are renumbered densely (ids do not change). Searches go on
        during the repair and wait only for the final renumbering. Returns
        the number of deleted vectors whose room was reclaimed.
        """
        return self._native.compact(check_threads(threads))

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        ef: Optional[int] = None,
        allowed: Any = None,
        threads: Optional[int] = None,
    ) -> SearchResult:
        """Approximate k nearest neighbours of each query.

        Args:
            queries: ``(m, dim)`` array or one ``(dim,)`` vector.
            k: neighbours per query (clipped to ``len(self)``).
            ef: beam width on layer 0 (default 64, never below ``k``):
                higher is more accurate and slower.
            allowed: optional filter: a boolean mask indexed by id (ids past
                its end are not allowed) or an array of ids. The search walks
                through filtered-out vectors but never returns them.
            threads: worker threads for a batch; ``None`` uses every core.
        """
        k = check_k(k)
        ef = DEFAULT_EF_SEARCH if ef is None else positive_int(ef, "ef")
        matrix, single = as_matrix(queries, "float32", self.dim, "queries")
        words = id_filter_bitset(allowed, self.id_bound, covering=False)
        result = self._native.search(matrix, k, ef, words, check_threads(threads))
        return unwrap_single(result, single)

    def search_checked(self, queries: np.ndarray, k: int, ef: int) -> SearchResult:
        """:meth:`search` of a checked ``(m, dim)`` C-contiguous float32
        matrix, k >= 1 and ef >= 1, unfiltered, on every core: for callers
        that validated already (a collection's search path)."""
        return self._native.search(queries, k, ef, None, HARDWARE_THREADS)

    def exact_search(self, queries: Any, k: int = 10, *, allowed: Any, threads: Optional[int] = None) -> SearchResult:
        """Exact k nearest neighbours among the vectors ``allowed`` lets
        through (required; same forms as in :meth:`search`), by scanning them
        in place. Cheaper than a graph search when the filter keeps few
        vectors (see :meth:`count`), and exact."""
        k = check_k(k)
        matrix, single = as_matrix(queries, "float32", self.dim, "queries")
        words = id_filter_bitset(allowed, self.id_bound, covering=False)
        if words is None:
            raise InvalidArgumentError("exact_search needs allowed= (a boolean mask or ids)")
        result = self._native.exact_search(matrix, k, words, check_threads(threads))
        return unwrap_single(result, single)

    def rerank(self, queries: Any, candidates: Any, k: int = 10, *, threads: Optional[int] = None) -> SearchResult:
        """Exact k nearest of each query among its candidate ids, by the
        vectors stored here: the second stage of a search whose shortlist
        came from elsewhere (e.g. an index over a prefix of the dimensions).

        Args:
            queries: ``(m, dim)`` array or one ``(dim,)`` vector.
            candidates: ``(m, r)`` ids per query, distinct per query; ``-1``
                entries and ids not in the index are skipped.
        """
        k = check_k(k)
        matrix, single = as_matrix(queries, "float32", self.dim, "queries")
        ids = candidate_ids(candidates, matrix.shape[0])
        return unwrap_single(self._native.rerank(matrix, ids, k, check_threads(threads)), single)

    def count(self, allowed: Any = None) -> int:
        """Number of vectors a search with this ``allowed`` filter could
        return: what to weigh a filtered graph search against an exact scan of
        the allowed vectors with."""
        if allowed is None:
            return len(self)
        return self._native.count(id_filter_bitset(allowed, self.id_bound, covering=False))

    def get_vectors(self, ids: Any) -> np.ndarray:
        """Stored vectors by id as a float32 ``(n, dim)`` array (normalized for
        cosine, rounded for float16, decoded centroids for pq8). Raises
        NotFoundError for a missing id."""
        id_array = as_ids(ids)
        vectors, found = self._native.get_vectors(id_array)
        if not found.all():
            missing = id_array[~found]
            raise NotFoundError(f"{missing.size} id(s) not in the index, e.g. {int(missing[0])}")
        return vectors

    def ids(self) -> np.ndarray:
        """The ids of the vectors in the index (int64; not sorted)."""
        return self._native.ids()

    def stats(self) -> Dict[str, Any]:
        """What the index holds: counts (``live``, ``deleted``, ``capacity``),
        memory in bytes (``vector_bytes``, ``graph_bytes``, ``id_map_bytes``:
        ids and the table of stored rows that finds identical vectors,
        ``memory_bytes``), the graph's shape (``nodes_per_level``: live nodes
        per top level; ``mean_out_degree`` per level; ``entry_level``;
        ``copies``: live vectors identical to one in the graph, which hold
        no links and are found with it) and its parameters."""
        stats = self._native.stats()
        stats.update(dim=self.dim, metric=self.metric, dtype=self.dtype, M=self._native.M,
                     ef_construction=self._native.ef_construction)
        return stats

    def to_bytes(self) -> bytes:
        """The whole index (vectors, graph, ids, deletions) in vecdb's
        versioned, checksummed HNSW format."""
        return self._native.serialize()

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview]) -> "HNSWIndex":
        """Rebuild an index from :meth:`to_bytes` output.

        Raises CorruptIndexError for truncated or corrupted data or an
        unknown format version; never returns a damaged index.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidDTypeError(f"data must be bytes, got {type(data).__name__}")
        return cls._wrap_loaded(_core.HnswIndex.deserialize, data)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the index to ``path`` atomically: a crash leaves either the
        old file or the new one, never a half-written file."""
        write_atomically(Path(path), self.write_to)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "HNSWIndex":
        """Read an index written by :meth:`save`, streaming it from disk into
        place (see :meth:`from_bytes` for the errors)."""
        with open(path, "rb") as handle:
            return cls.read_from(handle)

    def write_to(self, handle: BinaryIO, live_vectors: bool = True) -> None:
        """Write the index into an open binary file at its current position
        (for containers that put a header of their own first). Without
        ``live_vectors``, only the vectors of deleted and replaced ids (which
        still route searches) are written: for a caller that stores the
        live ones itself and gives them back to :meth:`read_from`."""
        handle.flush()
        self._native.save(handle.fileno(), live_vectors)

    @classmethod
    def read_from(cls, handle: BinaryIO, vectors: Optional[VectorSource] = None) -> "HNSWIndex":
        """Read an index from an open binary file, from its current position
        to its end (the counterpart of :meth:`write_to`). An index written
        without its live vectors takes them from ``vectors()``: ``(ids,
        float32 rows)`` chunks, as given to :meth:`add` (ids it does not
        hold are skipped). Ids left without a vector keep a copy's (an
        identical vector's) or zeros: callers leave out only ids they are
        about to replace or delete."""
        os.lseek(handle.fileno(), handle.tell(), os.SEEK_SET)

        def refilled(fd: int) -> Any:
            refill = _core.HnswRefill(fd)
            if refill.awaiting:
                if vectors is None:
                    raise CorruptIndexError("this index was saved without its live vectors; read it with them")
                for ids, rows in vectors():
                    refill.fill(rows, ids, HARDWARE_THREADS)
            return refill.finish()

        return cls._wrap_loaded(refilled, handle.fileno())

    @classmethod
    def _wrap_loaded(cls, load: Any, source: Any) -> "HNSWIndex":
        try:
            native = load(source)
        except InvalidArgumentError as exc:
            raise CorruptIndexError(str(exc)) from None
        index = cls.__new__(cls)
        index._native = native
        return index
