"""The cost model vecdb ships (``vecdb/query/planner.py``) held against this run's measurements:
its constants beside the ones re-fitted here, its prediction error on every measured
search, and the scan/graph choice it makes at each measured selectivity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from bench.planner.calibration.fit import Crossover, NodeModel, ScanModel, VisitModel, crossover
from bench.planner.calibration.measure import GraphRow, ScanRow
from vecdb.query import planner
from vecdb.plans import Graph, Scan


@dataclass(frozen=True)
class ConstantCheck:
    """One constant of ``vecdb/query/planner.py`` and the term of this run's fits it corresponds to."""

    name: str
    shipped: float
    refit: float
    term: str


def constant_checks(scan: ScanModel, node: NodeModel, pooled: VisitModel) -> list[ConstantCheck]:
    """Every constant of the planner's scan and graph models beside this run's fitted value."""
    terms = [
        ("SCAN_CALL_US", scan.fixed_us, "exact scan a"),
        ("SCAN_SLOT_US", scan.per_slot_us, "exact scan c"),
        ("SCAN_VECTOR_US", scan.per_vector_us, "exact scan b0"),
        ("SCAN_ELEMENT_US", scan.per_vector_dim_us, "exact scan b1"),
        ("GRAPH_NODE_US", node.fixed_us, "graph node c0"),
        ("GRAPH_ELEMENT_US", node.per_dim_us, "graph node c1"),
        ("GRAPH_CALL_US", pooled.fixed_us, "filtered graph, pooled a0"),
        ("GRAPH_VISITS_PER_EF", pooled.alpha, "filtered graph, pooled alpha"),
        ("GRAPH_VISITS_BASE", pooled.beta, "filtered graph, pooled beta"),
        ("GRAPH_FILTER_EXPONENT", pooled.gamma, "filtered graph, pooled gamma"),
        ("GRAPH_FILTER_SLOT_US", pooled.per_slot_us, "filtered graph, pooled p"),
    ]
    return [ConstantCheck(name, float(getattr(planner, name)), refit, term) for name, refit, term in terms]


def _shape(n_total: int, dim: int) -> planner.SearchShape:
    return planner.SearchShape(count=n_total, dim=dim, main_kind="graph", ef_search=1)


def shipped_scan_us(n_total: int, n_allowed: int, dim: int, k: int) -> float:
    """The planner's estimate for an exact scan of ``n_allowed`` of ``n_total`` vectors."""
    return planner.estimate(Scan(), _shape(n_total, dim), k, n_allowed / n_total, None)


def shipped_graph_us(n_total: int, dim: int, ef: int, selectivity: Optional[float], k: int) -> float:
    """The planner's estimate for a graph search at ``ef`` under a filter of ``selectivity``
    (``None``: no filter)."""
    return planner.estimate(Graph(ef=ef), _shape(n_total, dim), k, 1.0 if selectivity is None else selectivity, ef)


@dataclass(frozen=True)
class PredictionErrors:
    """Relative errors of the shipped model, and of this run's re-fit where there is one, over
    one kind of search."""

    searches: str
    points: int
    shipped_median: float
    shipped_max: float
    refit_median: Optional[float]
    refit_max: Optional[float]


def _errors(predicted: list[float], measured: list[float]) -> tuple[float, float]:
    errors = np.abs(np.array(predicted) / np.array(measured) - 1.0)
    return float(np.median(errors)), float(np.max(errors))


def prediction_errors(scans: list[ScanRow], graph_rows: list[GraphRow], scan: ScanModel, pooled: VisitModel,
                      node_us: dict[str, float], k: int) -> list[PredictionErrors]:
    """The shipped and re-fitted models' errors on every exact scan, unfiltered and filtered graph search."""
    scan_times = [r.timing.median_us for r in scans]
    shipped_scans = _errors([shipped_scan_us(r.n_total, r.n_allowed, r.dim, k) for r in scans], scan_times)
    refit_scans = _errors([scan.predict(r.n_total, r.n_allowed, r.dim) for r in scans], scan_times)
    unfiltered = [r for r in graph_rows if r.selectivity is None]
    shipped_unfiltered = _errors([shipped_graph_us(r.n_total, r.dim, r.ef, None, k) for r in unfiltered],
                                 [r.timing.median_us for r in unfiltered])
    filtered = [r for r in graph_rows if r.selectivity is not None]
    filtered_times = [r.timing.median_us for r in filtered]
    shipped_filtered = _errors([shipped_graph_us(r.n_total, r.dim, r.ef, r.selectivity, k) for r in filtered],
                               filtered_times)
    refit_filtered = _errors([pooled.predict(node_us[r.dataset], r.n_total, r.ef, r.selectivity) for r in filtered],
                             filtered_times)
    return [PredictionErrors("exact scan", len(scans), *shipped_scans, *refit_scans),
            PredictionErrors("graph, unfiltered", len(unfiltered), *shipped_unfiltered, None, None),
            PredictionErrors("graph, filtered", len(filtered), *shipped_filtered, *refit_filtered)]


def shipped_crossover(measured: Crossover, k: int) -> Crossover:
    """The crossover the shipped model predicts at the measured crossover's points: the same
    selectivities, each graph search at the smallest ef that reached the target recall."""
    points = [dict(p, exact_us=shipped_scan_us(measured.n_total, p["n_allowed"], measured.dim, k),
                   graph_us=None if p["ef"] is None
                   else shipped_graph_us(measured.n_total, measured.dim, p["ef"], p["selectivity"], k))
              for p in measured.points]
    return crossover(measured.dataset, measured.n_total, measured.dim, points)
