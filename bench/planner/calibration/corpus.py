"""What the calibration searches: unit-length datasets, their HNSW graphs (cached on disk,
so a re-run searches the same graphs) and the random filters of each selectivity."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import zlib

import numpy as np

import vecdb
from bench.datasets import Dataset, DatasetSpec, load_dataset
from bench.vectors import normalize_rows
from vecdb.errors import CorruptIndexError

METRIC = "cosine"


def load_unit_dataset(spec: str, seed: int, queries: int) -> Dataset:
    """A named or ``synthetic:N:DIM:cosine`` dataset with its first ``queries`` queries, normalized
    (npm's base is stored as float16)."""
    dataset = load_dataset(DatasetSpec(spec, seed=seed))
    if dataset.metric != METRIC:
        raise ValueError(f"dataset {spec} uses {dataset.metric}; the calibration is for {METRIC}")
    return unit_dataset(dataset.name, dataset.base, dataset.queries[:queries])


def unit_dataset(name: str, base: np.ndarray, queries: np.ndarray) -> Dataset:
    """The cosine dataset of ``base`` and ``queries`` scaled to unit length."""
    return Dataset(name, normalize_rows(base), normalize_rows(queries), METRIC)


def graph_for(dataset: Dataset, args: argparse.Namespace, builds: dict[str, float]) -> vecdb.HNSWIndex:
    """The HNSW graph over ``dataset.base`` (ids = row numbers), from the cache or built and cached.

    The cache is keyed by a digest of the vectors and the build parameters; a fresh build's
    seconds are recorded in ``builds``.
    """
    digest = hashlib.blake2b(dataset.base.tobytes(), digest_size=8).hexdigest()
    path = args.cache_dir / f"{dataset.name}-{digest}-M{args.M}-efc{args.ef_construction}.hnsw"
    if path.is_file():
        try:
            return vecdb.HNSWIndex.load(path)
        except CorruptIndexError as error:
            log(f"rebuilding {path.name}: {error}")
    log(f"building the graph for {dataset.name} ({dataset.n_base} x {dataset.dim})")
    start = time.perf_counter()
    graph = vecdb.HNSWIndex(dataset.dim, METRIC, M=args.M, ef_construction=args.ef_construction)
    graph.add(dataset.base, ids=np.arange(dataset.n_base), threads=args.build_threads)
    builds[dataset.name] = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    graph.save(path)
    return graph


def random_masks(n: int, n_allowed: int, count: int, seed: int, dataset_name: str) -> list[np.ndarray]:
    """``count`` boolean masks (one per query: different users' filters leave no allowed set in
    the cache for the next query), each allowing ``n_allowed`` of ``n`` ids drawn uniformly;
    the same for the same arguments."""
    rng = np.random.default_rng([seed, zlib.crc32(dataset_name.encode()), n_allowed])
    masks = []
    for _ in range(count):
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=n_allowed, replace=False)] = True
        masks.append(mask)
    return masks


def allowed_count(n: int, selectivity: float, k: int) -> int:
    """Ids a filter of this selectivity allows: never fewer than ``k``."""
    return min(n, max(k, round(selectivity * n)))


def scan_counts(n: int, args: argparse.Namespace) -> list[int]:
    """Allowed counts the exact scan is timed at: every selectivity's and ``--exact-counts``."""
    return sorted({allowed_count(n, s, args.k) for s in args.selectivities} | set(args.exact_counts))


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
