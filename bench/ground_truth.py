"""Exact nearest neighbours from vecdb's flat search, computed once and cached on disk.

The cache key is a digest of the vectors themselves plus metric and k, so a changed file
or generator can never be paired with stale neighbours. Datasets that ship their own
ground truth are checked against vecdb's the first time it is computed; the agreement is
stored with the cache and printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets import Dataset
from bench.optional import VECDB, require
from bench.progress import progress

# Queries per vecdb.knn call: small enough for a moving progress bar, large enough that
# each call still runs the batched kernels.
_QUERY_CHUNK = 256
# Bump when the cache file layout or the way neighbours are computed changes.
_CACHE_VERSION = 1


@dataclass(frozen=True)
class GroundTruth:
    """The exact top-k ids and distances (vecdb's convention) for every query."""

    ids: np.ndarray
    distances: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Neighbours per query."""
        return int(self.ids.shape[1])


def dataset_digest(dataset: Dataset) -> str:
    """A hex digest of the base and query vectors and the metric."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{dataset.metric}|{dataset.base.shape}|{dataset.queries.shape}|".encode())
    digest.update(memoryview(dataset.base).cast("B"))
    digest.update(memoryview(dataset.queries).cast("B"))
    return digest.hexdigest()


def cache_path(dataset: Dataset, k: int, cache_dir: Path) -> Path:
    """Where the ground truth for ``dataset`` at ``k`` is (or will be) cached."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset.name)
    file_name = f"{readable}-{dataset.metric}-k{k}-{dataset_digest(dataset)}.v{_CACHE_VERSION}.npz"
    return cache_dir / "ground_truth" / file_name


def compute_ground_truth(dataset: Dataset, k: int) -> GroundTruth:
    """Exact top-k with ``vecdb.knn`` over all cores."""
    vecdb = require(VECDB, "computing ground truth")
    k = min(k, dataset.n_base)
    ids = np.empty((dataset.n_queries, k), dtype=np.int64)
    distances = np.empty((dataset.n_queries, k), dtype=np.float32)
    starts = range(0, dataset.n_queries, _QUERY_CHUNK)
    for start in progress(starts, f"ground truth {dataset.name}", total=len(starts)):
        stop = start + _QUERY_CHUNK
        ids[start:stop], distances[start:stop] = vecdb.knn(
            dataset.base, dataset.queries[start:stop], k, metric=dataset.metric
        )
    return GroundTruth(ids=ids, distances=distances)


def compare_with_shipped(dataset: Dataset, truth: GroundTruth) -> dict[str, float] | None:
    """How well the dataset's shipped neighbours agree with ``truth``, or None if none shipped.

    ``id_agreement`` is the mean fraction of the top-k ids the two share per query;
    ``max_distance_difference`` compares distances where the dataset ships them.
    """
    if dataset.neighbors is None or dataset.neighbors.shape[1] < truth.k:
        return None
    shipped = dataset.neighbors[:, : truth.k].astype(np.int64)
    shared = [np.intersect1d(ours, theirs).size for ours, theirs in zip(truth.ids, shipped)]
    comparison = {"id_agreement": float(np.mean(shared)) / truth.k}
    if dataset.distances is not None:
        difference = np.abs(dataset.distances[:, : truth.k] - truth.distances)
        comparison["max_distance_difference"] = float(difference.max())
    return comparison


def _write_atomically(path: Path, truth: GroundTruth) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez(
            file,
            ids=truth.ids,
            distances=truth.distances,
            metadata=np.array(json.dumps(truth.metadata)),
        )
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def read_ground_truth(path: Path) -> GroundTruth:
    """Load a cached ground truth file."""
    with np.load(path, allow_pickle=False) as stored:
        return GroundTruth(
            ids=stored["ids"],
            distances=stored["distances"],
            metadata=json.loads(str(stored["metadata"])),
        )


def load_or_compute_ground_truth(dataset: Dataset, k: int, cache_dir: Path) -> tuple[GroundTruth, Path]:
    """The cached ground truth for ``dataset`` at ``k``, computing and caching it on a miss.

    Returns the ground truth and its cache file, which workers load directly.
    """
    path = cache_path(dataset, k, cache_dir)
    if path.is_file():
        return read_ground_truth(path), path
    computed = compute_ground_truth(dataset, k)
    metadata = {
        "cache_version": _CACHE_VERSION,
        "dataset": dataset.name,
        "metric": dataset.metric,
        "k": computed.k,
        "n_base": dataset.n_base,
        "n_queries": dataset.n_queries,
        "computed_with": "vecdb.knn",
        "shipped_ground_truth_check": compare_with_shipped(dataset, computed),
    }
    truth = GroundTruth(ids=computed.ids, distances=computed.distances, metadata=metadata)
    _write_atomically(path, truth)
    return truth, path
