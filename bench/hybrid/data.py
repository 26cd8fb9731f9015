"""The points, texts and queries of the hybrid benchmark, and the exact dense top k.

A dataset spec is ``npm-minilm-384`` (``../shared/data/npm-minilm-384``), a folder holding
the same files (``base.npy``, ``queries.npy``, ``base_texts.txt``, ``query_texts.txt``,
optionally ``neighbors.npy``; line i of a text file is row i), or
``synthetic:POINTS[:QUERIES]``: ``bench.text``'s seeded English-like texts with seeded
Gaussian vectors of SYNTHETIC_DIM dimensions, for tests and quick runs.

``points`` and ``queries`` keep the first rows only. The exact dense neighbours are the
dataset's ``neighbors.npy`` when every point is kept, a brute-force cosine top k otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.paths import SHARED_DATA_DIR
from bench.text.corpus import BASE_TEXTS, QUERY_TEXTS, _read_lines, synthetic_corpus

BASE_VECTORS = "base.npy"
QUERY_VECTORS = "queries.npy"
NEIGHBORS = "neighbors.npy"
SYNTHETIC_DIM = 16


@dataclass(frozen=True)
class HybridData:
    """Row i of ``vectors`` is point i (id i), its text ``texts[i]``; query q is
    ``queries[q]`` with text ``query_texts[q]``."""

    name: str
    vectors: np.ndarray
    texts: list[str]
    queries: np.ndarray
    query_texts: list[str]
    truth_source: str
    truth: np.ndarray  # (queries, k) exact dense neighbours, best first

    def summary(self) -> dict[str, int | str]:
        return {"name": self.name, "points": len(self.texts), "dim": int(self.vectors.shape[1]),
                "queries": len(self.query_texts), "truth": self.truth_source}


def exact_cosine_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` most cosine-similar vectors to each query, best first (float32)."""
    base = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)
    asked = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    k = min(k, len(base))
    similarity = asked @ base.T
    top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _folder(spec: str) -> Path:
    return Path(spec) if ("/" in spec or Path(spec).is_dir()) else SHARED_DATA_DIR / spec


def load(spec: str, k: int, points: int | None = None, queries: int | None = None, seed: int = 0) -> HybridData:
    """The dataset ``spec`` names (see the module's docstring), cut to its first ``points``
    points and ``queries`` queries."""
    if spec.startswith("synthetic:"):
        match = re.fullmatch(r"synthetic:(\d+)(?::(\d+))?", spec)
        if match is None:
            raise ValueError(f"expected synthetic:POINTS[:QUERIES], got {spec!r}")
        corpus = synthetic_corpus(spec, seed)
        rng = np.random.default_rng(seed)
        vectors = rng.standard_normal((len(corpus.texts), SYNTHETIC_DIM), dtype=np.float32)
        query_vectors = rng.standard_normal((len(corpus.queries), SYNTHETIC_DIM), dtype=np.float32)
        name, texts, query_texts, shipped = corpus.name, corpus.texts, corpus.queries, None
    else:
        folder = _folder(spec)
        needed = (BASE_VECTORS, QUERY_VECTORS, BASE_TEXTS, QUERY_TEXTS)
        if not all((folder / name).is_file() for name in needed):
            raise FileNotFoundError(f"dataset {spec!r} expects {', '.join(needed)} in {folder}")
        vectors = np.ascontiguousarray(np.load(folder / BASE_VECTORS), dtype=np.float32)
        query_vectors = np.ascontiguousarray(np.load(folder / QUERY_VECTORS), dtype=np.float32)
        texts, query_texts = _read_lines(folder / BASE_TEXTS), _read_lines(folder / QUERY_TEXTS)
        if len(texts) != len(vectors) or len(query_texts) != len(query_vectors):
            raise ValueError(f"{folder}: {len(vectors)} vectors and {len(texts)} texts, {len(query_vectors)} "
                             f"queries and {len(query_texts)} query texts: line i must be row i")
        name = folder.name
        shipped = np.load(folder / NEIGHBORS) if (folder / NEIGHBORS).is_file() else None
    everything = points is None or points >= len(texts)
    if not everything:
        vectors, texts = vectors[:points], texts[:points]
        name = f"{name}-first{points}"
    if queries is not None:
        query_vectors, query_texts = query_vectors[:queries], query_texts[:queries]
    if everything and shipped is not None and shipped.shape[1] >= k:
        truth, source = shipped[:len(query_texts), :k].astype(np.int64), f"{NEIGHBORS} (shipped)"
    else:
        truth, source = exact_cosine_top_k(vectors, query_vectors, k).astype(np.int64), "brute force (float32)"
    return HybridData(name=name, vectors=np.ascontiguousarray(vectors), texts=texts,
                      queries=np.ascontiguousarray(query_vectors), query_texts=query_texts, truth_source=source,
                      truth=truth)
