"""Calibrate the query planner's cost model on this machine.

For a filtered query the planner chooses between an exact scan of the
vectors the filter allows and a filtered HNSW graph search; for any query it
may instead run a *funnel*: an HNSW graph over the first ``d'`` dimensions
returning ``C`` candidates, re-ranked exactly at full dimension. This script
times each, one query per call on one thread (median over the queries), and
fits the constants the planner needs (all times in microseconds):

- exact scan: ``t = a + c*n_total + b0*n_allowed + b1*n_allowed*dim`` (``c``:
  the scan tests every slot against the filter; also fitted without ``b0``);
- graph node: ``t_node = c0 + c1*dim``, from full traversals (a search whose
  filter allows nothing visits every node reachable on layer 0 once);
- filtered graph search at selectivity ``s``:
  ``t = a_g + t_node * min(n_total, (alpha*ef + beta) / s**gamma)``.
  The native search does not count the nodes it visits: ``visited`` is
  inferred from latency in units of full-traversal node costs.

It also reports recall@k against the exact neighbours among the allowed
vectors, the smallest ef reaching a target recall at each selectivity, the
selectivity below which the exact scan is faster than the graph at that
recall, and the funnel's recall and latency (prefix of the raw dimensions or
of a PCA rotation) against a full-dimension graph.

Every query gets its own random filter (as different users' filters would),
so an allowed set is not left in the CPU cache by the previous query; the
exact scan is also timed with one filter repeated for every query (warm
cache). Times are the calling thread's CPU time, which other processes on a
shared machine do not inflate by preempting it (wall-clock medians are in
the JSON and the raw tables).

    python -m bench.calibrate_planner                       # everything (see below for the time)
    python -m bench.calibrate_planner --datasets npm-minilm-384 --queries 50 --report /tmp/quick.md

Graphs are built with ``--build-threads`` threads (a multi-threaded build is
not deterministic; data, filters and queries are) and cached under
``--cache-dir``, keyed by a digest of the vectors and the build parameters,
so a re-run searches the same graphs. On a shared 2-core AVX2 machine with
about one core taken by other work, the defaults ran in 17 minutes with the
graphs cached; building the twelve graphs adds about 8 minutes the first time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

import vecdb
from bench.cpu_load import OtherCpuLoad
from bench.datasets import DatasetSpec, load_dataset
from bench.machine import machine_info
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR
from bench.vectors import normalize_rows
from vecdb.errors import CorruptIndexError

METRIC = "cosine"
# Untimed calls before each timed configuration: they load the code paths
# and the graph's upper layers into cache, as in a warm server.
WARMUP_CALLS = 5
# Searches slower than this share of a full traversal are treated as capped
# by n (they visit most of the graph) and left out of the visit-model fit.
CAPPED_SHARE = 0.5
GAMMA_GRID = np.round(np.arange(0.30, 1.501, 0.01), 2)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Corpus:
    """Unit-length base and query vectors searched with cosine distance."""

    name: str
    base: np.ndarray
    queries: np.ndarray

    @property
    def n(self) -> int:
        """Number of base vectors."""
        return int(self.base.shape[0])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.base.shape[1])


def load_corpus(spec: str, seed: int, queries: int) -> Corpus:
    """A named or ``synthetic:N:DIM:cosine`` dataset with its first ``queries`` queries, normalized
    (npm's base is stored as float16)."""
    dataset = load_dataset(DatasetSpec(spec, seed=seed))
    if dataset.metric != METRIC:
        raise ValueError(f"dataset {spec} uses {dataset.metric}; the calibration is for {METRIC}")
    return Corpus(dataset.name, normalize_rows(dataset.base), normalize_rows(dataset.queries[:queries]))


def graph_for(corpus: Corpus, args: argparse.Namespace, builds: dict[str, float]) -> vecdb.HNSWIndex:
    """The HNSW graph over ``corpus.base`` (ids = row numbers), from the cache or built and cached.

    A fresh build's seconds are recorded in ``builds``.
    """
    digest = hashlib.blake2b(corpus.base.tobytes(), digest_size=8).hexdigest()
    path = args.cache_dir / f"{corpus.name}-{digest}-M{args.M}-efc{args.ef_construction}.hnsw"
    if path.is_file():
        try:
            return vecdb.HNSWIndex.load(path)
        except CorruptIndexError as error:
            log(f"rebuilding {path.name}: {error}")
    log(f"building the graph for {corpus.name} ({corpus.n} x {corpus.dim})")
    start = time.perf_counter()
    graph = vecdb.HNSWIndex(corpus.dim, METRIC, M=args.M, ef_construction=args.ef_construction)
    graph.add(corpus.base, ids=np.arange(corpus.n), threads=args.build_threads)
    builds[corpus.name] = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    graph.save(path)
    return graph


def random_masks(n: int, n_allowed: int, count: int, seed: int, corpus_name: str) -> list[np.ndarray]:
    """``count`` boolean masks (one per query), each allowing ``n_allowed`` of ``n`` ids drawn
    uniformly; the same for the same arguments."""
    rng = np.random.default_rng([seed, zlib.crc32(corpus_name.encode()), n_allowed])
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


# ------------------------------------------------------------------------ timing


@dataclass(frozen=True)
class Timing:
    """Per-call times of one configuration, in microseconds."""

    median_us: float  # thread CPU time: what the fits use
    p90_us: float  # thread CPU time
    wall_us: float  # wall-clock median


def time_calls(call: Callable[..., Any], items: Sequence[tuple]) -> tuple[Timing, list[Any]]:
    """Time ``call(*item)`` once per item (one query per call) and keep what each call returned.

    The last items warm up untimed first.
    """
    for item in items[-WARMUP_CALLS:]:
        call(*item)
    cpu, wall, results = np.empty(len(items)), np.empty(len(items)), []
    for i, item in enumerate(items):
        wall_start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        results.append(call(*item))
        cpu[i], wall[i] = time.thread_time_ns() - cpu_start, time.perf_counter_ns() - wall_start
    return Timing(float(np.median(cpu)) / 1e3, float(np.percentile(cpu, 90)) / 1e3,
                  float(np.median(wall)) / 1e3), results


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true neighbours (rows of ``truth``, ``-1`` padding ignored) that ``found`` holds."""
    hits = sum(np.intersect1d(f[f >= 0], t[t >= 0]).size for f, t in zip(found, truth))
    return hits / max(1, int((truth >= 0).sum()))


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class ScanRow:
    """Exact scan of the allowed vectors (``HNSWIndex.exact_search``), a fresh filter per query."""

    dataset: str
    n_total: int
    dim: int
    n_allowed: int
    timing: Timing
    same_mask: Timing  # one filter repeated for every query: its allowed vectors stay in cache
    recall: Optional[float]  # against vecdb.knn: a check that the scan is exact


@dataclass(frozen=True)
class GraphRow:
    """Graph search with fresh random filters of selectivity ``selectivity`` (``None``: no filter)."""

    dataset: str
    n_total: int
    dim: int
    selectivity: Optional[float]
    n_allowed: int
    ef: int
    timing: Timing
    recall: float


@dataclass(frozen=True)
class TraversalRow:
    """A search whose filter allows nothing: it visits every node reachable on layer 0."""

    graph: str
    n_total: int
    dim: int
    timing: Timing

    @property
    def node_us(self) -> float:
        """CPU microseconds per visited node."""
        return self.timing.median_us / self.n_total


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


def measure_scans(graph: vecdb.HNSWIndex, corpus: Corpus, masks: list[np.ndarray], k: int,
                  truth: Optional[np.ndarray]) -> ScanRow:
    """Time ``exact_search`` with a fresh filter per query and with the first one repeated;
    check the answers against ``truth`` when given."""
    def scan(query: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return graph.exact_search(query, k, allowed=mask, threads=1)[0]

    timing, found = time_calls(scan, list(zip(corpus.queries, masks)))
    # Filters that allow everything are all the same filter already.
    same_mask = timing if masks[0].all() else time_calls(scan, [(query, masks[0]) for query in corpus.queries])[0]
    return ScanRow(corpus.name, corpus.n, corpus.dim, int(masks[0].sum()), timing, same_mask,
                   None if truth is None else recall(np.array(found), truth))


def measure_traversal(graph: vecdb.HNSWIndex, name: str, dim: int, queries: np.ndarray) -> TraversalRow:
    """Time searches that must visit the whole graph (an all-false filter)."""
    nothing = np.zeros(len(graph), dtype=bool)
    timing, _ = time_calls(lambda q: graph.search(q, 10, ef=10, allowed=nothing, threads=1), [(q,) for q in queries])
    return TraversalRow(name, len(graph), dim, timing)


def filter_sweep(corpus: Corpus, graph: vecdb.HNSWIndex,
                 args: argparse.Namespace) -> tuple[list[ScanRow], list[GraphRow]]:
    """Exact scan and graph search at every selectivity and ef, with recall; plus unfiltered graph search."""
    scans: list[ScanRow] = []
    rows: list[GraphRow] = []
    for n_allowed in scan_counts(corpus.n, args):
        masks = random_masks(corpus.n, n_allowed, len(corpus.queries), args.seed, corpus.name)
        truth = np.array([vecdb.knn(corpus.base, query, args.k, metric=METRIC, allowed=mask)[0]
                          for query, mask in zip(corpus.queries, masks)])
        scans.append(measure_scans(graph, corpus, masks, args.k, truth))
        for s in (s for s in args.selectivities if allowed_count(corpus.n, s, args.k) == n_allowed):
            for ef in args.ef:
                timing, found = time_calls(lambda q, m: graph.search(q, args.k, ef=ef, allowed=m, threads=1)[0],
                                           list(zip(corpus.queries, masks)))
                rows.append(GraphRow(corpus.name, corpus.n, corpus.dim, s, n_allowed, ef, timing,
                                     recall(np.array(found), truth)))
        log(f"  {corpus.name}: {n_allowed:,} allowed done")
    truth = vecdb.knn(corpus.base, corpus.queries, args.k, metric=METRIC)[0]
    for ef in args.ef:
        timing, found = time_calls(lambda q: graph.search(q, args.k, ef=ef, threads=1)[0],
                                   [(q,) for q in corpus.queries])
        rows.append(GraphRow(corpus.name, corpus.n, corpus.dim, None, corpus.n, ef, timing,
                             recall(np.array(found), truth)))
    return scans, rows


def pca_rotation(base: np.ndarray, sample: int, seed: int) -> np.ndarray:
    """Eigenvectors of X^T X on a row sample, as columns by decreasing eigenvalue."""
    rng = np.random.default_rng(seed)
    rows = base[rng.choice(base.shape[0], size=min(sample, base.shape[0]), replace=False)].astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(rows.T @ rows)
    return np.ascontiguousarray(eigenvectors[:, np.argsort(eigenvalues)[::-1]], dtype=np.float32)


@dataclass(frozen=True)
class FunnelResults:
    """Everything the funnel experiment measured."""

    full_graph: list[GraphRow]
    funnel: list[FunnelRow]
    prefix_scans: list[ScanRow]
    traversals: list[TraversalRow]
    energy: dict[str, dict[int, float]]  # variant -> d' -> share of sum ||x||^2 in the first d' coordinates


def funnel_experiment(corpus: Corpus, args: argparse.Namespace, builds: dict[str, float]) -> FunnelResults:
    """Funnels over raw and PCA-rotated prefixes against the full-dimension graph, all on ``corpus``."""
    k = args.k
    truth = vecdb.knn(corpus.base, corpus.queries, k, metric=METRIC)[0]
    full = graph_for(corpus, args, builds)
    full_rows = []
    for ef in args.funnel_efs:
        timing, found = time_calls(lambda q: full.search(q, k, ef=ef, threads=1)[0], [(q,) for q in corpus.queries])
        full_rows.append(GraphRow(corpus.name, corpus.n, corpus.dim, None, corpus.n, ef, timing,
                                  recall(np.array(found), truth)))
    rotation = pca_rotation(corpus.base, args.pca_sample, args.seed)
    rotations = {"truncate": None, "pca": rotation}
    total_energy = float(np.square(corpus.base, dtype=np.float64).sum())
    energy: dict[str, dict[int, float]] = {variant: {} for variant in rotations}
    rows: list[FunnelRow] = []
    scans: list[ScanRow] = []
    traversals: list[TraversalRow] = []
    for variant, rotate in rotations.items():
        rotated_base = corpus.base if rotate is None else corpus.base @ rotate
        rotated_queries = corpus.queries if rotate is None else corpus.queries @ rotate
        for dims in args.prefix_dims:
            energy[variant][dims] = float(np.square(rotated_base[:, :dims], dtype=np.float64).sum()) / total_energy
            prefix = Corpus(f"{corpus.name}-{variant}{dims}", normalize_rows(rotated_base[:, :dims]),
                            normalize_rows(rotated_queries[:, :dims]))
            graph = graph_for(prefix, args, builds)
            traversals.append(measure_traversal(graph, prefix.name, dims, prefix.queries[:args.traversal_queries]))
            if rotate is None:
                # Scan cost depends on the dimension only: one variant is enough.
                scan_queries = Corpus(prefix.name, prefix.base, prefix.queries[:args.queries])
                for n_allowed in scan_counts(prefix.n, args):
                    masks = random_masks(prefix.n, n_allowed, args.queries, args.seed, prefix.name)
                    scans.append(measure_scans(graph, scan_queries, masks, k, None))
            exact_candidates = vecdb.knn(prefix.base, prefix.queries, max(args.candidates), metric=METRIC)[0]
            # The cosine graph normalizes the projected query itself.
            project = ((lambda q, r=np.ascontiguousarray(rotate[:, :dims]): q @ r) if rotate is not None
                       else (lambda q, d=dims: q[:d]))
            for candidates in args.candidates:
                bound = vecdb.rerank(corpus.queries, exact_candidates[:, :candidates], corpus.base, k,
                                     metric=METRIC)[0]
                rows.append(time_funnel(variant, dims, candidates, max(candidates, args.funnel_min_ef), corpus,
                                        graph, project, k, truth, recall(bound, truth)))
            log(f"  funnel {variant} d'={dims} done")
    return FunnelResults(full_rows, rows, scans, traversals, energy)


def time_funnel(variant: str, dims: int, candidates: int, ef: int, corpus: Corpus, graph: vecdb.HNSWIndex,
                project: Callable[[np.ndarray], np.ndarray], k: int, truth: np.ndarray,
                bound: float) -> FunnelRow:
    """Time the three stages of a funnel per query: project, prefix graph search, exact rerank."""
    def run(query: np.ndarray) -> tuple[np.ndarray, int, int, int]:
        start = time.thread_time_ns()
        short = project(query)
        projected = time.thread_time_ns()
        ids = graph.search(short, candidates, ef=ef, threads=1)[0]
        searched = time.thread_time_ns()
        best = vecdb.rerank(query, ids, corpus.base, k, metric=METRIC, threads=1)[0]
        return best, projected - start, searched - projected, time.thread_time_ns() - searched

    timing, results = time_calls(run, [(q,) for q in corpus.queries])
    stages = np.array([r[1:] for r in results], dtype=np.float64) / 1e3
    return FunnelRow(variant, dims, candidates, ef, recall(np.array([r[0] for r in results]), truth), bound,
                     *(float(v) for v in np.median(stages, axis=0)), float(np.median(stages.sum(axis=1))),
                     timing.wall_us)


# --------------------------------------------------------------------------- fits


def relative_lstsq(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares minimizing relative errors; returns coefficients and each point's relative error."""
    weights = 1.0 / target
    coefficients = np.linalg.lstsq(features * weights[:, None], target * weights, rcond=None)[0]
    return coefficients, features @ coefficients / target - 1.0


@dataclass(frozen=True)
class ScanModel:
    """``t_us = fixed + per_slot*n_total + per_vector*n_allowed + per_vector_dim*n_allowed*dim``."""

    fixed_us: float
    per_slot_us: float
    per_vector_us: float
    per_vector_dim_us: float
    median_abs_error: float
    max_abs_error: float

    def predict(self, n_total: float, n_allowed: float, dim: float) -> float:
        """Predicted microseconds of one exact scan."""
        return (self.fixed_us + self.per_slot_us * n_total + self.per_vector_us * n_allowed
                + self.per_vector_dim_us * n_allowed * dim)


def fit_scan(rows: list[ScanRow], per_vector: bool) -> ScanModel:
    """Fit the exact-scan model (with or without the per-vector term) to every fresh-filter scan row."""
    columns = [np.ones(len(rows)), [r.n_total for r in rows], [r.n_allowed * r.dim for r in rows]]
    if per_vector:
        columns.insert(2, [r.n_allowed for r in rows])
    coefficients, errors = relative_lstsq(np.column_stack(columns).astype(float),
                                          np.array([r.timing.median_us for r in rows]))
    if not per_vector:
        coefficients = np.insert(coefficients, 2, 0.0)
    return ScanModel(*(float(c) for c in coefficients), float(np.median(np.abs(errors))),
                     float(np.max(np.abs(errors))))


@dataclass(frozen=True)
class NodeModel:
    """``t_node_us = fixed + per_dim*dim``: one visited node of a graph search."""

    fixed_us: float
    per_dim_us: float
    median_abs_error: float


def fit_node(rows: list[TraversalRow]) -> NodeModel:
    """Fit the per-node cost of full traversals against dimension."""
    coefficients, errors = relative_lstsq(np.column_stack([np.ones(len(rows)), [r.dim for r in rows]]),
                                          np.array([r.node_us for r in rows]))
    return NodeModel(float(coefficients[0]), float(coefficients[1]), float(np.median(np.abs(errors))))


@dataclass(frozen=True)
class VisitModel:
    """``t_us = fixed + per_slot*n_total + node_us * min(n_total, (alpha*ef + beta) / s**gamma)``,
    visited in full-traversal node units."""

    scope: str
    alpha: float
    beta: float
    gamma: float
    fixed_us: float
    per_slot_us: float
    fitted_points: int
    median_abs_error: float  # over every filtered point, capped ones included
    max_abs_error: float

    def predict(self, node_us: float, n_total: int, ef: int, selectivity: float) -> float:
        """Predicted microseconds of one filtered graph search."""
        visited = min(n_total, (self.alpha * ef + self.beta) / selectivity**self.gamma)
        return self.fixed_us + self.per_slot_us * n_total + node_us * visited


def fit_visits(scope: str, rows: list[GraphRow], node_us: dict[str, float]) -> VisitModel:
    """Fit alpha, beta, gamma and the fixed cost to filtered searches not capped by n.

    For each gamma on a grid, ``t / node_us`` is linear in ``1 / node_us``,
    ``ef / s**gamma`` and ``1 / s**gamma`` (and ``n_total / node_us`` when the
    rows span several sizes: packing the filter is O(n_total)); the gamma with
    the smallest relative error wins.
    """
    uncapped = [r for r in rows if r.timing.median_us < CAPPED_SHARE * node_us[r.dataset] * r.n_total]
    visits = np.array([r.timing.median_us / node_us[r.dataset] for r in uncapped])
    ef = np.array([r.ef for r in uncapped], dtype=float)
    s = np.array([r.selectivity for r in uncapped])
    inverse_node = np.array([1.0 / node_us[r.dataset] for r in uncapped])
    sizes = np.array([r.n_total for r in uncapped], dtype=float)
    per_slot = len(set(sizes)) > 1
    best = None
    for gamma in GAMMA_GRID:
        columns = [inverse_node] + ([sizes * inverse_node] if per_slot else []) + [ef / s**gamma, 1.0 / s**gamma]
        coefficients, errors = relative_lstsq(np.column_stack(columns), visits)
        score = float(np.sum(errors**2))
        if best is None or score < best[0]:
            best = (score, float(gamma), coefficients)
    _, gamma, coefficients = best
    fixed, slot = (coefficients[0], coefficients[1]) if per_slot else (coefficients[0], 0.0)
    alpha, beta = coefficients[-2:]
    model = VisitModel(scope, float(alpha), float(beta), gamma, float(fixed), float(slot), len(uncapped), 0.0, 0.0)
    errors = np.array([model.predict(node_us[r.dataset], r.n_total, r.ef, r.selectivity) / r.timing.median_us - 1
                       for r in rows])
    return VisitModel(scope, model.alpha, model.beta, gamma, model.fixed_us, model.per_slot_us, len(uncapped),
                      float(np.median(np.abs(errors))), float(np.max(np.abs(errors))))


@dataclass(frozen=True)
class Crossover:
    """Per selectivity: exact scan against the cheapest graph search reaching the target recall."""

    dataset: str
    n_total: int
    dim: int
    points: list[dict[str, Any]]
    selectivity: Optional[float]  # exact is faster below it (log-interpolated); None: no crossing seen
    summary: str


def crossover(dataset: str, scans: list[ScanRow], rows: list[GraphRow], selectivities: list[float],
              target: float) -> Crossover:
    """Where the exact scan stops beating the graph at ``target`` recall, from the measured grid."""
    n_total, dim = rows[0].n_total, rows[0].dim
    points = []
    for s in selectivities:
        at_s = sorted((r for r in rows if r.selectivity == s), key=lambda r: r.ef)
        good = next((r for r in at_s if r.recall >= target), None)
        scan = next(r for r in scans if r.n_allowed == at_s[0].n_allowed)
        points.append({"selectivity": s, "n_allowed": scan.n_allowed, "exact_us": scan.timing.median_us,
                       "ef": None if good is None else good.ef,
                       "graph_us": None if good is None else good.timing.median_us,
                       "graph_recall": None if good is None else good.recall})
    # A graph slower than the scan, or never at the target, means the scan wins.
    exact_wins = [p["graph_us"] is None or p["exact_us"] <= p["graph_us"] for p in points]
    if all(exact_wins):
        return Crossover(dataset, n_total, dim, points, None, f"exact faster at every s up to {selectivities[-1]:g}")
    first_graph = exact_wins.index(False)
    if first_graph == 0:
        return Crossover(dataset, n_total, dim, points, None, f"graph faster already at s={selectivities[0]:g}")
    below, above = points[first_graph - 1], points[first_graph]
    if below["graph_us"] is None:
        at = above["selectivity"]
        summary = f"between s={below['selectivity']:g} (graph misses the target) and s={at:g}"
    else:
        # Interpolate log(exact/graph) linearly in log s between the two grid points.
        ratio_below = np.log(below["exact_us"] / below["graph_us"])
        ratio_above = np.log(above["exact_us"] / above["graph_us"])
        share = -ratio_below / (ratio_above - ratio_below)
        at = float(np.exp(np.log(below["selectivity"])
                          + share * (np.log(above["selectivity"]) - np.log(below["selectivity"]))))
        summary = f"s* = {at:.3g} (n_allowed = {at * n_total:,.0f})"
    if any(exact_wins[first_graph:]):
        summary += "; exact wins again at a higher s"
    return Crossover(dataset, n_total, dim, points, at, summary)


# ------------------------------------------------------------------------- report


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def us(value: Optional[float]) -> str:
    """Microseconds for a table: 3 significant digits, ``-`` for none."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def render_report(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The markdown report: fitted models first, then the raw tables."""
    scan_model: ScanModel = results["scan_model"]
    scan_simple: ScanModel = results["scan_model_simple"]
    node: NodeModel = results["node_model"]
    visit_models: list[VisitModel] = results["visit_models"]
    machine = results["machine"]
    lines = [
        "# Planner calibration",
        "",
        f"Measured {machine['date']} on {machine['cpu_model']} ({machine['logical_cores']} logical cores), "
        f"vecdb {machine['libraries'].get('vecdb-engine')} with SIMD level `{results['simd_level']}`. "
        f"Every search: one 1-D query per call, `threads=1`, k={args.k}, a fresh random filter per query, "
        f"median over {args.queries} queries ({args.funnel_queries} for the funnel) after {WARMUP_CALLS} "
        f"warm-up calls. Times are the calling thread's CPU time in microseconds (wall-clock medians in the raw "
        f"tables). Graphs: M={args.M}, ef_construction={args.ef_construction}, cosine. "
        f"Run time {results['seconds'] / 60:.1f} min; command: `{results['command']}`.",
        "",
        "Other load while measuring (cores other processes kept busy; the machine is shared): "
        + ", ".join(f"{name} {load:.2f}" for name, load in results["other_load"].items()) + ".",
        "",
        "## Fitted cost model (microseconds)",
        "",
        "**Exact scan of the allowed vectors** (`exact_search`), every dataset and prefix dimension:",
        "",
        f"- `t = {scan_model.fixed_us:.3g} + {scan_model.per_slot_us:.3g}*n_total + "
        f"{scan_model.per_vector_us:.3g}*n_allowed + {scan_model.per_vector_dim_us:.3g}*n_allowed*dim` "
        f"(median |error| {scan_model.median_abs_error:.1%}, max {scan_model.max_abs_error:.1%})",
        f"- without the per-vector term: `t = {scan_simple.fixed_us:.3g} + {scan_simple.per_slot_us:.3g}*n_total + "
        f"{scan_simple.per_vector_dim_us:.3g}*n_allowed*dim` (median |error| {scan_simple.median_abs_error:.1%}, "
        f"max {scan_simple.max_abs_error:.1%})",
        f"- `c` = {scan_model.per_slot_us * 1e3:.3g} ns per slot: the scan tests every slot against the filter, "
        "and packing the boolean mask into a bitset (in Python) is O(n_total) too.",
        "",
        "**Graph search, per visited node** (full traversals, filter allowing nothing):",
        "",
        f"- `t_node = {node.fixed_us:.3g} + {node.per_dim_us:.3g}*dim` "
        f"({node.fixed_us * 1e3:.3g} ns per node plus {node.per_dim_us * 1e3:.3g} ns per node per dimension; "
        f"median |error| {node.median_abs_error:.1%}); each graph's own value is in the traversal table.",
        "",
        "**Filtered graph search**: `t = a_g + t_node * min(n_total, (alpha*ef + beta) / s^gamma)`, with "
        "`t_node` the measured traversal cost per node of that graph and, pooled over datasets, "
        "`a_g = a0 + p*n_total`. `visited` is in units of full-traversal node costs (the native search does not "
        f"count visits), fitted on points faster than {CAPPED_SHARE:.0%} of a full traversal; errors are over "
        "every filtered point:",
        "",
    ]
    lines += table(["fit", "alpha", "beta", "gamma", "a_g or a0 (us)", "p (ns per slot)", "points fitted",
                    "median abs err", "max abs err"],
                   [[m.scope, f"{m.alpha:.3g}", f"{m.beta:.3g}", f"{m.gamma:.2f}", us(m.fixed_us),
                     f"{m.per_slot_us * 1e3:.3g}", m.fitted_points, f"{m.median_abs_error:.1%}",
                     f"{m.max_abs_error:.1%}"] for m in visit_models])
    lines += ["", f"## Crossover: exact scan vs graph at recall@{args.k} >= {args.target_recall}", ""]
    lines += table(["dataset", "n_total", "dim", "crossover (exact faster below)"],
                   [[c.dataset, f"{c.n_total:,}", c.dim, c.summary] for c in results["crossovers"]])
    for c in results["crossovers"]:
        lines += ["", f"**{c.dataset}**: smallest ef reaching the target at each selectivity", ""]
        lines += table(["s", "n_allowed", "exact us", "ef", "graph us", "recall", "exact / graph"],
                       [[f"{p['selectivity']:g}", f"{p['n_allowed']:,}", us(p["exact_us"]),
                         p["ef"] if p["ef"] is not None else f"> {max(args.ef)}", us(p["graph_us"]),
                         "-" if p["graph_recall"] is None else f"{p['graph_recall']:.3f}",
                         "-" if p["graph_us"] is None else f"{p['exact_us'] / p['graph_us']:.2f}"]
                        for p in c.points])
    lines += funnel_section(results, args)
    lines += raw_tables(results, args)
    return "\n".join(lines) + "\n"


def funnel_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Funnel tables: full graph sweep, each funnel, PCA vs truncation, configurations at the target."""
    funnel: Optional[FunnelResults] = results["funnel"]
    if funnel is None:
        return []
    target = args.target_recall
    full_at_target = next((r for r in funnel.full_graph if r.recall >= target), None)
    lines = ["", f"## Funnel on {args.funnel_dataset} (recall@{args.k} against the exact full-dimension neighbours)",
             "", f"Candidates come from a graph over the first d' dimensions (re-normalized), searched with "
             f"ef = max(C, {args.funnel_min_ef}), then `vecdb.rerank` at full dimension. `pca` first rotates by the "
             f"eigenvectors of X^T X ({args.pca_sample:,} sampled rows) by decreasing eigenvalue. 'exact-prefix "
             "recall' replaces the graph by an exact prefix scan: the best that prefix and C allow.", "",
             "Full-dimension graph on the same queries:", ""]
    lines += table(["ef", "recall", "median us", "p90 us", "wall us"],
                   [[r.ef, f"{r.recall:.3f}", us(r.timing.median_us), us(r.timing.p90_us), us(r.timing.wall_us)]
                    for r in funnel.full_graph])
    if full_at_target is None:
        lines += ["", f"The full graph does not reach recall {target} at ef <= {max(args.funnel_efs)}."]
    else:
        lines += ["", f"Full graph at recall >= {target}: ef={full_at_target.ef}, recall {full_at_target.recall:.3f}, "
                  f"{us(full_at_target.timing.median_us)} us."]
    lines += ["", "Share of sum(||x||^2) in the first d' coordinates:", ""]
    lines += table(["variant"] + [f"d'={d}" for d in args.prefix_dims],
                   [[variant] + [f"{shares[d]:.3f}" for d in args.prefix_dims]
                    for variant, shares in funnel.energy.items()])
    reaching = sorted((r for r in funnel.funnel if r.recall >= target), key=lambda r: r.total_us)
    lines += ["", f"Funnels reaching recall {target} (total = project + graph + rerank, median of the per-query sum):",
              ""]
    lines += table(["variant", "d'", "C", "ef", "recall", "total us", "vs full graph at target"],
                   [[r.variant, r.prefix_dims, r.candidates, r.ef, f"{r.recall:.3f}", us(r.total_us),
                     "-" if full_at_target is None else f"{r.total_us / full_at_target.timing.median_us:.2f}x"]
                    for r in reaching] or [["none"] + ["-"] * 6])
    lines += ["", f"Recall@{args.k}, truncation vs PCA (graph funnel; exact-prefix bound in brackets):", ""]
    by_key = {(r.variant, r.prefix_dims, r.candidates): r for r in funnel.funnel}
    grid = []
    for dims in args.prefix_dims:
        for candidates in args.candidates:
            raw, pca = by_key[("truncate", dims, candidates)], by_key[("pca", dims, candidates)]
            grid.append([dims, candidates, f"{raw.recall:.3f} [{raw.exact_prefix_recall:.3f}]",
                         f"{pca.recall:.3f} [{pca.exact_prefix_recall:.3f}]", f"{pca.recall - raw.recall:+.3f}"])
    lines += table(["d'", "C", "truncate", "pca", "pca - truncate"], grid)
    lines += ["", "All funnels (median us per stage; total is the median of the per-query sum):", ""]
    lines += table(["variant", "d'", "C", "ef", "recall", "exact-prefix recall", "project", "graph", "rerank",
                    "total", "wall"],
                   [[r.variant, r.prefix_dims, r.candidates, r.ef, f"{r.recall:.3f}", f"{r.exact_prefix_recall:.3f}",
                     us(r.project_us), us(r.graph_us), us(r.rerank_us), us(r.total_us), us(r.wall_us)]
                    for r in funnel.funnel])
    return lines


def raw_tables(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Every exact scan, traversal and graph search measured, with the models' predictions."""
    scan_model: ScanModel = results["scan_model"]
    pooled: VisitModel = results["visit_models"][-1]
    lines = ["", "## Raw tables", "", "### Exact scan (fresh filter per query unless 'same filter')", ""]
    lines += table(["dataset", "n_total", "dim", "n_allowed", "median us", "p90 us", "wall us", "same filter us",
                    "recall vs knn", "model us"],
                   [[r.dataset, f"{r.n_total:,}", r.dim, f"{r.n_allowed:,}", us(r.timing.median_us),
                     us(r.timing.p90_us), us(r.timing.wall_us), us(r.same_mask.median_us),
                     "-" if r.recall is None else f"{r.recall:.3f}",
                     us(scan_model.predict(r.n_total, r.n_allowed, r.dim))] for r in results["scans"]])
    lines += ["", "### Full traversals (per-node cost)", ""]
    lines += table(["graph", "n_total", "dim", "median us", "wall us", "us per node", "ns per node per dim"],
                   [[r.graph, f"{r.n_total:,}", r.dim, us(r.timing.median_us), us(r.timing.wall_us),
                     f"{r.node_us:.3g}", f"{r.node_us / r.dim * 1e3:.3g}"] for r in results["traversals"]])
    node_us = {r.graph: r.node_us for r in results["traversals"]}
    for dataset in dict.fromkeys(r.dataset for r in results["graph_rows"]):
        rows = [r for r in results["graph_rows"] if r.dataset == dataset]
        lines += ["", f"### Graph search on {dataset}: median us (recall@{args.k}) [pooled model us] "
                  "{wall us}", ""]
        grid = []
        for s in dict.fromkeys(r.selectivity for r in rows):
            at_s = [r for r in rows if r.selectivity == s]
            cells = [f"{us(r.timing.median_us)} ({r.recall:.3f})"
                     + ("" if s is None else f" [{us(pooled.predict(node_us[dataset], r.n_total, r.ef, s))}]")
                     + f" {{{us(r.timing.wall_us)}}}" for r in at_s]
            grid.append(["none" if s is None else f"{s:g}", f"{at_s[0].n_allowed:,}"] + cells)
        lines += table(["s", "n_allowed"] + [f"ef={ef}" for ef in args.ef], grid)
    lines += ["", "Graph builds this run (seconds; cached graphs are not rebuilt): "
              + (", ".join(f"{name} {seconds:.0f}" for name, seconds in results["builds"].items()) or "none") + "."]
    return lines


def to_json(value: Any) -> Any:
    """Dataclasses (and lists of them) as plain JSON values."""
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_json(v) for k, v in asdict(value).items()}
    return value


# --------------------------------------------------------------------------- main


def int_list(text: str) -> list[int]:
    """Comma-separated integers."""
    return [int(v) for v in text.split(",") if v]


def float_list(text: str) -> list[float]:
    """Comma-separated floats."""
    return [float(v) for v in text.split(",") if v]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options (defaults: the full calibration)."""
    parser = argparse.ArgumentParser(prog="python -m bench.calibrate_planner", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--datasets", default="npm-minilm-384,synthetic:50000:384:cosine,"
                        "synthetic:200000:384:cosine,synthetic:100000:768:cosine",
                        help="comma-separated cosine datasets for the scan and filter sweeps")
    parser.add_argument("--queries", type=int, default=200, help="queries timed per configuration")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--selectivities", type=float_list, default=float_list("0.001,0.003,0.01,0.03,0.1,0.3,0.5,1"),
                        help="shares of the vectors a random filter allows (ascending)")
    parser.add_argument("--ef", type=int_list, default=int_list("16,32,64,128,256"),
                        help="graph beam widths for the filter sweep (ascending)")
    parser.add_argument("--exact-counts", type=int_list, default=int_list("1,100"),
                        help="allowed counts timed for the exact scan besides the selectivities'")
    parser.add_argument("--traversal-queries", type=int, default=30,
                        help="queries per full traversal (each visits the whole graph)")
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--funnel-dataset", default="npm-minilm-384", help="dataset for the funnel; 'none' skips it")
    parser.add_argument("--funnel-queries", type=int, default=500)
    parser.add_argument("--prefix-dims", type=int_list, default=int_list("32,64,128,192"))
    parser.add_argument("--candidates", type=int_list, default=int_list("20,50,100,200,400,800"),
                        help="candidates C the prefix graph returns for the rerank")
    parser.add_argument("--funnel-min-ef", type=int, default=64, help="prefix graph ef = max(C, this)")
    parser.add_argument("--funnel-efs", type=int_list, default=int_list("16,24,32,48,64,96,128,192,256"),
                        help="ef sweep of the full-dimension graph the funnel is compared with (ascending)")
    parser.add_argument("--pca-sample", type=int, default=20000, help="rows sampled to compute the PCA rotation")
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seeds synthetic data, filters and the PCA sample")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR / "planner_calibration")
    parser.add_argument("--report", type=Path, default=DEFAULT_RESULTS_DIR / "planner_calibration.md",
                        help="markdown report; the raw results go beside it as .json")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run every measurement, fit the models, write the report and the JSON."""
    args = parse_args(argv)
    started = time.perf_counter()
    builds: dict[str, float] = {}
    other_load: dict[str, float] = {}
    scans: list[ScanRow] = []
    graph_rows: list[GraphRow] = []
    traversals: list[TraversalRow] = []
    for spec in (s for s in args.datasets.split(",") if s):
        corpus = load_corpus(spec, args.seed, args.queries)
        graph = graph_for(corpus, args, builds)
        log(f"measuring {corpus.name}")
        load = OtherCpuLoad()
        traversals.append(measure_traversal(graph, corpus.name, corpus.dim, corpus.queries[:args.traversal_queries]))
        dataset_scans, dataset_rows = filter_sweep(corpus, graph, args)
        other_load[corpus.name] = load.cores()
        scans += dataset_scans
        graph_rows += dataset_rows
    funnel = None
    if args.funnel_dataset != "none":
        corpus = load_corpus(args.funnel_dataset, args.seed, args.funnel_queries)
        log(f"funnel on {corpus.name}")
        load = OtherCpuLoad()
        funnel = funnel_experiment(corpus, args, builds)
        other_load["funnel"] = load.cores()
        scans += funnel.prefix_scans
        traversals += funnel.traversals
    node_us = {r.graph: r.node_us for r in traversals}
    filtered = [r for r in graph_rows if r.selectivity is not None]
    datasets = list(dict.fromkeys(r.dataset for r in filtered))
    results = {
        "machine": machine_info(),
        "simd_level": vecdb.simd_level(),
        "command": " ".join(["python -m bench.calibrate_planner"] + list(sys.argv[1:] if argv is None else argv)),
        "scan_model": fit_scan(scans, per_vector=True),
        "scan_model_simple": fit_scan(scans, per_vector=False),
        "node_model": fit_node(traversals),
        "visit_models": [fit_visits(d, [r for r in filtered if r.dataset == d], node_us) for d in datasets]
        + [fit_visits("pooled", filtered, node_us)],
        "crossovers": [crossover(d, [s for s in scans if s.dataset == d], [r for r in filtered if r.dataset == d],
                                 args.selectivities, args.target_recall) for d in datasets],
        "scans": scans,
        "traversals": traversals,
        "node_us": node_us,
        "graph_rows": graph_rows,
        "funnel": funnel,
        "builds": builds,
        "other_load": other_load,
        "seconds": time.perf_counter() - started,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(render_report(results, args))
    json_path = args.report.with_suffix(".json")
    arguments = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    json_path.write_text(json.dumps({"arguments": arguments, **{k: to_json(v) for k, v in results.items()}},
                                    indent=1))
    log(f"wrote {args.report} and {json_path} in {results['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
