"""Product quantization: vectors compressed to ``m`` one-byte codes, searched
by asymmetric distance (ADC); the shortlist is re-ranked exactly by
:func:`vecdb.native.rerank.rerank`.

Two ways to search compressed vectors, as in FAISS:

- scan every code (:meth:`ProductQuantizer.search`), then re-rank the best
  ``r`` candidates exactly with :func:`rerank` (FAISS ``IndexPQ`` +
  ``IndexRefineFlat``);
- navigate an HNSW graph that stores codes instead of vectors
  (``HNSWIndex(..., quantizer=pq)``, FAISS ``IndexHNSWPQ``), then re-rank.

Example:
    >>> pq = ProductQuantizer(384, m=48, metric="cosine").train(sample)
    >>> codes = pq.encode(vectors)                        # (n, 48) uint8
    >>> rows, _ = pq.search(queries, codes, k=100)        # ADC shortlist
    >>> ids, distances = rerank(queries, rows, vectors, k=10, metric="cosine")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from vecdb import _core
from vecdb.checks import check_k, positive_int
from vecdb.native.arrays import as_matrix, check_threads, id_filter_bitset
from vecdb._files import write_atomically
from vecdb.errors import CorruptIndexError, DimensionMismatchError, InvalidArgumentError, InvalidDTypeError
from vecdb.native.results import SearchResult, unwrap_single
from vecdb.config import PQ
from vecdb.metrics import parse_metric

CENTROIDS = 256  # per sub-vector: 8-bit codes
DEFAULT_MAX_SAMPLES = 65_536
DEFAULT_ITERATIONS = 20
# OPQ alternates a short PQ training with a Procrustes rotation update this
# many times, on at most OPQ_SAMPLES vectors, before the final training.
OPQ_ROUNDS = 8
OPQ_KMEANS_ITERATIONS = 4
OPQ_SAMPLES = 32_768


class ProductQuantizer:
    """Codebooks that compress ``dim``-dimensional vectors to ``m`` bytes.

    Each vector is cut into ``m`` sub-vectors of ``dim / m`` dimensions
    (``m`` must divide ``dim``), and each sub-vector is replaced by the index
    of its nearest of 256 centroids learned for that slice by k-means.
    384-d float32 vectors (1,536 bytes) become 48 bytes at ``m=48``.

    Args:
        dim: vector dimension.
        m: sub-vectors (bytes per code); more is more accurate and larger.
        metric: ``"l2"``, ``"ip"`` or ``"cosine"`` (cosine vectors are
            normalized before training and encoding).
        opq: learn a rotation of the vectors before they are cut into
            sub-vectors (optimized PQ, Ge et al. 2013), so that each
            sub-vector carries a fair share of the variance: better codes
            for the same bytes (on sentence embeddings, recall@10 of the raw
            codes 0.69 -> 0.74 at 48 bytes), for a longer training and one
            ``dim x dim`` product per query and vector encoded.
    """

    def __init__(self, dim: int, m: int, metric: str = "cosine", *, opq: bool = False) -> None:
        self._native = _core.ProductQuantizer(positive_int(dim, "dim"), positive_int(m, "m"), parse_metric(metric))
        self._opq = bool(opq)

    def __repr__(self) -> str:
        return (f"ProductQuantizer(dim={self.dim}, m={self.m}, metric={self.metric!r}, opq={self.opq}, "
                f"trained={self.trained})")

    @property
    def opq(self) -> bool:
        """Whether vectors are rotated (OPQ) before they are coded."""
        return self._opq

    @property
    def rotation(self) -> Optional[np.ndarray]:
        """The learned OPQ rotation ``R`` (``dim x dim``; vectors are coded as
        ``x @ R``), or None."""
        return self._native.rotation

    @property
    def dim(self) -> int:
        return self._native.dim

    @property
    def m(self) -> int:
        """Sub-vectors, which is also the bytes per code."""
        return self._native.m

    @property
    def metric(self) -> str:
        return self._native.metric

    @property
    def trained(self) -> bool:
        return self._native.trained

    @property
    def centroids(self) -> np.ndarray:
        """The codebooks, ``(m, 256, dim / m)`` float32 (a copy)."""
        return self._native.centroids

    def train(self, vectors: Any, *, iterations: int = DEFAULT_ITERATIONS, max_samples: int = DEFAULT_MAX_SAMPLES,
              seed: int = 0, threads: Optional[int] = None) -> "ProductQuantizer":
        """Learn the codebooks from ``vectors`` (at least 256; tens of
        thousands train well) and return ``self``.

        k-means++ seeding and ``iterations`` Lloyd steps per sub-vector, on a
        random sample of at most ``max_samples`` rows, sub-vectors trained in
        parallel. The same data and seed give the same codebooks on any
        number of threads. Training again replaces the codebooks (codes made
        with the old ones no longer match). With ``opq``, the rotation is
        learned first: rounds of a short training on at most 32,768 of the
        vectors, each followed by the rotation that best maps the vectors
        onto their codes (orthogonal Procrustes).
        """
        matrix, _ = as_matrix(vectors, "float32", self.dim, "vectors")
        if matrix.shape[0] < CENTROIDS:
            raise InvalidArgumentError(
                f"PQ training needs at least {CENTROIDS} vectors (256 centroids per sub-vector), "
                f"got {matrix.shape[0]}; tens of thousands train well")
        iterations = positive_int(iterations, "iterations")
        if iterations > 1000:
            raise InvalidArgumentError(f"iterations must be at most 1000, got {iterations}")
        max_samples = positive_int(max_samples, "max_samples", minimum=CENTROIDS)
        seed, threads = positive_int(seed, "seed", minimum=0), check_threads(threads)
        if seed >= 2**64:
            raise InvalidArgumentError(f"seed must be below 2**64, got {seed}")
        # Train a fresh native quantizer and swap it in only when it is done:
        # searches running meanwhile keep the old codebooks, and a failure
        # (bad input, an interrupt) leaves the quantizer as it was.
        fresh = _core.ProductQuantizer(self.dim, self.m, self.metric)
        if self._opq:
            fresh.set_rotation(_learn_rotation(fresh, matrix, max_samples, seed, threads))
        fresh.train(matrix, iterations, max_samples, seed, threads)
        self._native = fresh
        return self

    def encode(self, vectors: Any, *, threads: Optional[int] = None) -> np.ndarray:
        """Codes of ``vectors``: an ``(n, m)`` uint8 array."""
        matrix, _ = as_matrix(vectors, "float32", self.dim, "vectors")
        return self._native.encode(matrix, check_threads(threads))

    def decode(self, codes: Any) -> np.ndarray:
        """The vectors codes stand for (the centroids), ``(n, dim)`` float32."""
        return self._native.decode(self._codes(codes))

    def lookup_tables(self, queries: Any) -> np.ndarray:
        """ADC tables, ``(n_queries, m, 256)``: the distance of a query to a
        code is ``bias + sum(table[j, code[j]])``, with bias 0 for l2 and 1
        for ip and cosine (whose entries are negated sub-dot products)."""
        matrix, _ = as_matrix(queries, "float32", self.dim, "queries")
        return self._native.lookup_tables(matrix)

    def search(self, queries: Any, codes: Any, k: int = 10, *, allowed: Any = None,
               threads: Optional[int] = None) -> SearchResult:
        """The ``k`` code rows nearest each query by ADC distance, scanning all
        of ``codes``: ``(rows, distances)``, closest first, padded with -1 /
        inf. ``allowed`` (a boolean mask or row numbers) restricts the rows."""
        k = check_k(k)
        matrix, single = as_matrix(queries, "float32", self.dim, "queries")
        code_matrix = self._codes(codes)
        words = id_filter_bitset(allowed, code_matrix.shape[0])
        result = self._native.search(matrix, code_matrix, k, words, check_threads(threads))
        return unwrap_single(result, single)

    def to_bytes(self) -> bytes:
        """The codebooks in vecdb's versioned, checksummed PQ format."""
        return self._native.serialize()

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview]) -> "ProductQuantizer":
        """Codebooks from :meth:`to_bytes` output; CorruptIndexError for
        truncated, corrupted or unknown-version data."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidDTypeError(f"data must be bytes, got {type(data).__name__}")
        return cls._wrap(lambda: _core.ProductQuantizer.deserialize(data))

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the codebooks to ``path`` atomically."""
        data = self.to_bytes()
        write_atomically(Path(path), lambda handle: handle.write(data))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "ProductQuantizer":
        with open(path, "rb") as handle:
            return cls.from_bytes(handle.read())

    @classmethod
    def _wrap(cls, load: Callable[[], Any]) -> "ProductQuantizer":
        try:
            native = load()
        except InvalidArgumentError as exc:
            raise CorruptIndexError(str(exc)) from None
        quantizer = cls.__new__(cls)
        quantizer._native = native
        quantizer._opq = native.rotation is not None
        return quantizer

    def _codes(self, codes: Any) -> np.ndarray:
        array = np.asarray(codes)
        if array.dtype != np.uint8:
            raise InvalidDTypeError(f"codes must be uint8, got {array.dtype}")
        if array.ndim != 2 or array.shape[1] != self.m:
            raise DimensionMismatchError(f"codes must have shape (n, {self.m}), got {array.shape}")
        return np.ascontiguousarray(array)


def _learn_rotation(native: Any, matrix: np.ndarray, max_samples: int, seed: int, threads: int) -> np.ndarray:
    """The OPQ rotation for ``native`` (a scratch _core.ProductQuantizer it
    trains along the way): rounds of a short training, each followed by the
    orthogonal R minimizing |sample R - codes| (Procrustes: U V^T from the
    SVD of sample^T codes)."""
    count = min(len(matrix), max_samples, OPQ_SAMPLES)
    rng = np.random.default_rng(seed)
    sample = matrix if count == len(matrix) else matrix[np.sort(rng.choice(len(matrix), count, replace=False))]
    if native.metric == "cosine":
        norms = np.linalg.norm(sample, axis=1, keepdims=True)
        sample = np.divide(sample, norms, out=np.zeros_like(sample), where=norms > 0)
    rotation = np.eye(native.dim, dtype=np.float32)
    for _ in range(OPQ_ROUNDS):
        native.set_rotation(rotation)
        native.train(sample, OPQ_KMEANS_ITERATIONS, count, seed, threads)
        coded = native.decode_rotated(native.encode(sample, threads))
        u, _, vt = np.linalg.svd(sample.T.astype(np.float64) @ coded.astype(np.float64))
        rotation = (u @ vt).astype(np.float32)
    return rotation


def train_codebooks(sample: np.ndarray, dim: int, metric: str, settings: PQ, *, seed: int) -> ProductQuantizer:
    """A quantizer for a collection's PQ ``settings`` (``m`` chosen for
    ``dim``), trained on ``sample``."""
    assert settings.m is not None, "stored PQ settings have m chosen for the dimension (PQ.for_dim)"
    return ProductQuantizer(dim, settings.m, metric, opq=settings.opq).train(
        sample, iterations=settings.iterations, max_samples=settings.max_samples, seed=seed)
