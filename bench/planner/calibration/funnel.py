"""The funnel experiment: a graph over the first ``d'`` dimensions (of the raw vectors, or
after the PCA rotation collections with ``rotate="pca"`` learn) returns ``C`` candidates,
re-ranked exactly at full dimension; recall and per-stage CPU time against the
full-dimension graph on the same queries."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import vecdb
from bench.datasets import Dataset
from bench.planner.calibration.corpus import METRIC, graph_for, log, random_masks, scan_counts, unit_dataset
from bench.planner.calibration.measure import (
    GraphRow,
    ScanRow,
    TraversalRow,
    graph_sweep,
    measure_scans,
    measure_traversal,
    recall,
    time_calls,
)
from vecdb.index.rotation import learn_pca_rotation


@dataclass(frozen=True)
class FunnelRow:
    """Prefix graph returning ``candidates`` ids, re-ranked exactly at full dimension (CPU medians)."""

    variant: str
    prefix_dims: int
    candidates: int
    ef: int
    recall: float
    exact_prefix_recall: float  # the same funnel with the graph replaced by an exact prefix scan
    project_us: float
    graph_us: float
    rerank_us: float
    total_us: float  # median of the per-query sum
    wall_us: float  # wall-clock median of the whole funnel


@dataclass(frozen=True)
class FunnelResults:
    """Everything the funnel experiment measured."""

    full_graph: list[GraphRow]
    funnel: list[FunnelRow]
    prefix_scans: list[ScanRow]
    traversals: list[TraversalRow]
    energy: dict[str, dict[int, float]]  # variant -> d' -> share of sum ||x||^2 in the first d' coordinates


def product_rotation(base: np.ndarray, sample: int, seed: int) -> np.ndarray:
    """The rotation a ``rotate="pca"`` collection holding ``base`` learns: ``learn_pca_rotation``
    on a seeded sample of at most ``sample`` rows."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(base.shape[0], size=min(sample, base.shape[0]), replace=False)
    return learn_pca_rotation(base[rows], METRIC)


def funnel_experiment(dataset: Dataset, args: argparse.Namespace, builds: dict[str, float]) -> FunnelResults:
    """Funnels over raw and PCA-rotated prefixes against the full-dimension graph, all on ``dataset``."""
    k = args.k
    truth = vecdb.knn(dataset.base, dataset.queries, k, metric=METRIC)[0]
    full_rows = graph_sweep(graph_for(dataset, args, builds), dataset, args.funnel_efs, k, truth)
    rotations = {"truncate": None, "pca": product_rotation(dataset.base, args.pca_sample, args.seed)}
    total_energy = float(np.square(dataset.base, dtype=np.float64).sum())
    energy: dict[str, dict[int, float]] = {variant: {} for variant in rotations}
    rows: list[FunnelRow] = []
    scans: list[ScanRow] = []
    traversals: list[TraversalRow] = []
    for variant, rotation in rotations.items():
        rotated_base = dataset.base if rotation is None else dataset.base @ rotation
        rotated_queries = dataset.queries if rotation is None else dataset.queries @ rotation
        for dims in args.prefix_dims:
            energy[variant][dims] = float(np.square(rotated_base[:, :dims], dtype=np.float64).sum()) / total_energy
            prefix = unit_dataset(f"{dataset.name}-{variant}{dims}", rotated_base[:, :dims], rotated_queries[:, :dims])
            graph = graph_for(prefix, args, builds)
            traversals.append(measure_traversal(graph, prefix.name, dims, prefix.queries[:args.traversal_queries]))
            if rotation is None:
                # Scan cost depends on the dimension only: one variant is enough.
                scan_queries = prefix.first_queries(args.queries)
                for n_allowed in scan_counts(prefix.n_base, args):
                    masks = random_masks(prefix.n_base, n_allowed, args.queries, args.seed, prefix.name)
                    scans.append(measure_scans(graph, scan_queries, masks, k, None))
            exact_candidates = vecdb.knn(prefix.base, prefix.queries, max(args.candidates), metric=METRIC)[0]
            # The cosine graph normalizes the projected query itself.
            project = ((lambda q, r=np.ascontiguousarray(rotation[:, :dims]): q @ r) if rotation is not None
                       else (lambda q, d=dims: q[:d]))
            for candidates in args.candidates:
                bound = vecdb.rerank(dataset.queries, exact_candidates[:, :candidates], dataset.base, k,
                                     metric=METRIC)[0]
                rows.append(time_funnel(variant, dims, candidates, max(candidates, args.funnel_min_ef), dataset,
                                        graph, project, k, truth, recall(bound, truth, dataset)))
            log(f"  funnel {variant} d'={dims} done")
    return FunnelResults(full_rows, rows, scans, traversals, energy)


def time_funnel(variant: str, dims: int, candidates: int, ef: int, dataset: Dataset, graph: vecdb.HNSWIndex,
                project: Callable[[np.ndarray], np.ndarray], k: int, truth: np.ndarray,
                bound: float) -> FunnelRow:
    """Time the three stages of a funnel per query: project, prefix graph search, exact rerank."""
    def run(query: np.ndarray) -> tuple[np.ndarray, int, int, int]:
        start = time.thread_time_ns()
        short = project(query)
        projected = time.thread_time_ns()
        ids = graph.search(short, candidates, ef=ef, threads=1)[0]
        searched = time.thread_time_ns()
        best = vecdb.rerank(query, ids, dataset.base, k, metric=METRIC, threads=1)[0]
        return best, projected - start, searched - projected, time.thread_time_ns() - searched

    timing, results = time_calls(run, [(q,) for q in dataset.queries])
    stages = np.array([r[1:] for r in results], dtype=np.float64) / 1e3
    return FunnelRow(variant, dims, candidates, ef, recall([r[0] for r in results], truth, dataset), bound,
                     *(float(v) for v in np.median(stages, axis=0)), float(np.median(stages.sum(axis=1))),
                     timing.wall_us)
