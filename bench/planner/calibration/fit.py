"""The cost models fitted to the measurements (least squares on relative errors), and the
selectivity below which the exact scan beats the graph at a target recall."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from bench.planner.calibration.measure import GraphRow, ScanRow, TraversalRow

# Searches slower than this share of a full traversal are treated as capped by n (they
# visit most of the graph) and left out of the visit-model fit.
CAPPED_SHARE = 0.5
GAMMA_GRID = np.round(np.arange(0.30, 1.501, 0.01), 2)


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


def crossover_points(scans: list[ScanRow], rows: list[GraphRow], selectivities: list[float],
                     target: float) -> list[dict[str, Any]]:
    """Per selectivity: the exact scan's time and the smallest ef whose graph search reaches
    ``target`` recall, with its time and recall (``None`` when no ef does)."""
    points = []
    for s in selectivities:
        at_s = sorted((r for r in rows if r.selectivity == s), key=lambda r: r.ef)
        good = next((r for r in at_s if r.recall >= target), None)
        scan = next(r for r in scans if r.n_allowed == at_s[0].n_allowed)
        points.append({"selectivity": s, "n_allowed": scan.n_allowed, "exact_us": scan.timing.median_us,
                       "ef": None if good is None else good.ef,
                       "graph_us": None if good is None else good.timing.median_us,
                       "graph_recall": None if good is None else good.recall})
    return points


def crossover(dataset: str, n_total: int, dim: int, points: list[dict[str, Any]]) -> Crossover:
    """Where the exact scan stops beating the graph along ``points`` (by ascending selectivity,
    as ``crossover_points`` gives them)."""
    # A graph slower than the scan, or never at the target, means the scan wins.
    exact_wins = [p["graph_us"] is None or p["exact_us"] <= p["graph_us"] for p in points]
    if all(exact_wins):
        return Crossover(dataset, n_total, dim, points, None,
                         f"exact faster at every s up to {points[-1]['selectivity']:g}")
    first_graph = exact_wins.index(False)
    if first_graph == 0:
        return Crossover(dataset, n_total, dim, points, None, f"graph faster already at s={points[0]['selectivity']:g}")
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
