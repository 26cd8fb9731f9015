"""Approximate nearest-neighbour search with an HNSW graph.

Results follow the same contract as :mod:`vecdb.flat`: ``(ids, distances)``,
closest first, ``k`` clipped to the index size, slots a filter leaves empty
padded with id ``-1`` and distance ``inf``, never an exception for "not
enough results". Cosine vectors are stored normalized.

Inner product (``"ip"``) on vectors of very different norms is not a metric,
and graph search on it loses recall (as in hnswlib and FAISS); embeddings
are usually unit length, where ``"ip"`` and ``"cosine"`` rank alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from vecdb import _core
from vecdb._arrays import allowed_bitset, as_matrix, check_k, check_threads, positive_int
from vecdb._native_index import NativeIndex
from vecdb.flat import SearchResult, unwrap_single
from vecdb._files import write_atomically
from vecdb.errors import CorruptIndexError, InvalidArgumentError, InvalidDTypeError
from vecdb.metrics import parse_metric

DEFAULT_EF_SEARCH = 64


class HNSWIndex(NativeIndex):
    """A hierarchical navigable small-world graph over float32 vectors.

    Args:
        dim: vector dimension (1 to 32768).
        metric: ``"l2"``, ``"ip"`` or ``"cosine"`` (see :mod:`vecdb.metrics`).
        M: links per node on the upper layers (``2*M`` on layer 0); more links
            give higher recall for more memory and slower inserts.
        ef_construction: beam width while inserting; higher builds a better
            graph, more slowly.
        seed: seeds node levels; a single-threaded build is deterministic.

    Capacity grows automatically. Searches may run while other threads add
    or delete. Deleted vectors are never returned but keep guiding searches.

    Example:
        >>> index = HNSWIndex(384, metric="cosine", M=16, ef_construction=200)
        >>> index.add(vectors)
        >>> ids, distances = index.search(queries, k=10, ef=64)
    """

    def __init__(
        self, dim: int, metric: str = "cosine", *, M: int = 16, ef_construction: int = 200, seed: int = 0
    ) -> None:
        self._native = _core.HnswIndex(
            dim, parse_metric(metric), positive_int(M, "M"), positive_int(ef_construction, "ef_construction"),
            positive_int(seed, "seed", minimum=0),
        )

    def __len__(self) -> int:
        """Vectors that can be returned (added and not deleted)."""
        return self._native.size - self._native.deleted_count

    @property
    def id_bound(self) -> int:
        """Ids assigned so far, deleted ones included: every id is below this,
        and a boolean ``allowed`` mask has this length."""
        return self._native.size

    def delete(self, ids: Any) -> int:
        """Mark vectors deleted: never returned again, still used to navigate.

        Deleting an id twice is a no-op; an id never assigned raises
        InvalidArgumentError and deletes nothing. Returns how many ids were
        newly deleted. Their memory is not reclaimed yet.
        """
        id_array = np.atleast_1d(np.asarray(ids))
        if id_array.ndim != 1 or (id_array.size and id_array.dtype.kind not in "iu"):
            raise InvalidDTypeError(f"ids must be a 1-D array of integers, got {id_array.dtype} {id_array.shape}")
        return self._native.remove(np.ascontiguousarray(id_array, dtype=np.int64))

    def to_bytes(self) -> bytes:
        """The whole index (vectors, graph, deletions) in vecdb's versioned,
        checksummed HNSW format."""
        return self._native.serialize()

    @classmethod
    def from_bytes(cls, data: bytes) -> "HNSWIndex":
        """Rebuild an index from :meth:`to_bytes` output.

        Raises CorruptIndexError for truncated or corrupted data or an
        unknown format version; never returns a damaged index.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidDTypeError(f"data must be bytes, got {type(data).__name__}")
        try:
            native = _core.HnswIndex.deserialize(bytes(data))
        except InvalidArgumentError as exc:
            raise CorruptIndexError(str(exc)) from None
        index = cls.__new__(cls)
        index._native = native
        return index

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the index to ``path`` atomically: a crash leaves either the
        old file or the new one, never a half-written file."""
        write_atomically(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "HNSWIndex":
        """Read an index written by :meth:`save` (see :meth:`from_bytes`)."""
        return cls.from_bytes(Path(path).read_bytes())

    def __repr__(self) -> str:
        return (f"HNSWIndex(dim={self.dim}, metric={self.metric!r}, M={self._native.M}, "
                f"ef_construction={self._native.ef_construction}, size={len(self)})")

    def add(self, vectors: Any, *, threads: Optional[int] = None) -> np.ndarray:
        """Insert vectors (``(n, dim)`` or one ``(dim,)``); returns their int64 ids.

        Ids are consecutive from the current size. Batches of 64 or more are
        inserted on ``threads`` threads (default: every core). Nothing is
        added when any row is invalid.
        """
        return self._add(vectors, "float32", threads)

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
            allowed: optional filter: boolean mask of length ``id_bound`` or
                ids. The search walks through filtered-out nodes but never
                returns them.
            threads: worker threads for a batch; ``None`` uses every core.
        """
        k = check_k(k)
        ef = DEFAULT_EF_SEARCH if ef is None else positive_int(ef, "ef")
        matrix, single = as_matrix(queries, "float32", self.dim, "queries")
        visible = self.id_bound
        words = allowed_bitset(allowed, visible)
        result = self._native.search(matrix, k, ef, words, check_threads(threads), visible)
        return unwrap_single(result, single)
