"""The planner calibration (bench/planner/calibration/): its fits recover known constants,
the crossover interpolation, the PCA rotation is the product's, vecdb's own model is read
from vecdb/query/planner.py, and a tiny end-to-end run writes a report that --refit reproduces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.planner.calibration.__main__ import main as calibration_main
from bench.planner.calibration.fit import crossover, fit_node, fit_scan, fit_visits
from bench.planner.calibration.funnel import product_rotation
from bench.planner.calibration.measure import GraphRow, ScanRow, Timing, TraversalRow
from bench.planner.calibration.shipped import constant_checks, shipped_crossover, shipped_graph_us, shipped_scan_us
from bench.report.table import markdown_table
from vecdb.query import planner
from vecdb.index.rotation import learn_pca_rotation


def _timing(us: float) -> Timing:
    return Timing(us, us, us)


def _scan_row(n_total: int, n_allowed: int, dim: int, us: float) -> ScanRow:
    return ScanRow("toy", n_total, dim, n_allowed, _timing(us), _timing(us), None)


# ---- fits ----

def test_scan_fit_recovers_the_constants_of_noiseless_times():
    a, c, b0, b1 = 40.0, 0.002, 0.01, 0.0006
    rows = [_scan_row(n, m, d, a + c * n + b0 * m + b1 * m * d)
            for n in (10_000, 50_000, 200_000) for m in (1, 100, 5_000, 10_000) for d in (64, 384, 768)]
    model = fit_scan(rows, per_vector=True)
    np.testing.assert_allclose([model.fixed_us, model.per_slot_us, model.per_vector_us, model.per_vector_dim_us],
                               [a, c, b0, b1], rtol=1e-6)
    assert model.max_abs_error < 1e-9
    assert model.predict(50_000, 500, 384) == pytest.approx(a + c * 50_000 + b0 * 500 + b1 * 500 * 384)
    simple = fit_scan(rows, per_vector=False)
    assert simple.per_vector_us == 0.0 and simple.median_abs_error > 0


def test_node_fit_recovers_fixed_and_per_dimension_cost():
    rows = [TraversalRow(f"g{d}", 10_000, d, _timing(10_000 * (0.45 + 0.0005 * d))) for d in (32, 64, 384, 768)]
    model = fit_node(rows)
    assert model.fixed_us == pytest.approx(0.45) and model.per_dim_us == pytest.approx(0.0005)
    assert rows[0].node_us == pytest.approx(0.45 + 0.0005 * 32)


def test_visit_fit_recovers_alpha_beta_gamma_and_the_per_slot_cost():
    alpha, beta, gamma, fixed, per_slot = 3.0, 15.0, 0.9, 100.0, 0.0004
    node_us = {"small": 0.7, "large": 0.8}
    sizes = {"small": 50_000, "large": 200_000}
    rows = []
    for dataset, n in sizes.items():
        for s in (0.03, 0.1, 0.3, 0.5):
            for ef in (16, 32, 64, 128):
                us = fixed + per_slot * n + node_us[dataset] * min(n, (alpha * ef + beta) / s**gamma)
                rows.append(GraphRow(dataset, n, 384, s, round(s * n), ef, _timing(us), 1.0))
    model = fit_visits("pooled", rows, node_us)
    assert model.gamma == pytest.approx(gamma)
    np.testing.assert_allclose([model.alpha, model.beta, model.fixed_us, model.per_slot_us],
                               [alpha, beta, fixed, per_slot], rtol=1e-6)
    assert model.fitted_points == len(rows) and model.max_abs_error < 1e-9


def _point(s: float, exact_us: float, graph_us):
    return {"selectivity": s, "n_allowed": round(s * 1000), "exact_us": exact_us,
            "ef": None if graph_us is None else 16, "graph_us": graph_us, "graph_recall": None}


def test_crossover_interpolates_the_ratio_in_log_selectivity():
    # exact/graph: 0.5 at s=0.01, 2 at s=0.1: equal halfway in log s.
    found = crossover("toy", 1000, 8, [_point(0.01, 100, 200), _point(0.1, 400, 200), _point(1, 4000, 200)])
    assert found.selectivity == pytest.approx(10**-1.5)
    assert found.summary == "s* = 0.0316 (n_allowed = 32)"
    assert crossover("toy", 1000, 8, [_point(0.1, 1, 2), _point(1, 1, 2)]).summary == "exact faster at every s up to 1"
    assert crossover("toy", 1000, 8, [_point(0.1, 3, 2)]).summary == "graph faster already at s=0.1"
    missed = crossover("toy", 1000, 8, [_point(0.01, 100, None), _point(0.1, 400, 200), _point(0.5, 100, 200)])
    assert missed.selectivity == 0.1
    assert missed.summary == "between s=0.01 (graph misses the target) and s=0.1; exact wins again at a higher s"


# ---- the product's rotation and model ----

def test_funnel_rotation_is_the_one_collections_learn():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((600, 24)).astype(np.float32) + 0.5
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rotation = product_rotation(base, sample=10_000, seed=3)
    # The whole base, sampled in another order: the same matrix up to rounding.
    np.testing.assert_allclose(rotation, learn_pca_rotation(base, "cosine"), atol=1e-5)
    sampled = product_rotation(base, sample=300, seed=3)
    np.testing.assert_allclose(sampled.T @ sampled, np.eye(24), atol=1e-5)
    # learn_pca_rotation fixes each axis's sign: its largest entry is positive.
    assert np.all(sampled[np.argmax(np.abs(sampled), axis=0), np.arange(24)] > 0)
    assert np.array_equal(sampled, product_rotation(base, sample=300, seed=3))


def test_shipped_model_is_read_from_the_planner():
    n, allowed, dim, ef = 50_000, 2_000, 384, 32
    # Under 1 in SPARSE_FILTER_SLOTS allowed, an HNSW index's scan looks the ids up: nothing per slot.
    assert allowed * planner.SPARSE_FILTER_SLOTS < n
    assert shipped_scan_us(n, allowed, dim, 10) == pytest.approx(
        planner.SCAN_CALL_US + (planner.SCAN_VECTOR_US + planner.SCAN_ELEMENT_US * dim) * allowed)
    broad = n // planner.SPARSE_FILTER_SLOTS
    assert shipped_scan_us(n, broad, dim, 10) == pytest.approx(
        planner.SCAN_CALL_US + planner.SCAN_SLOT_US * n + (planner.SCAN_VECTOR_US + planner.SCAN_ELEMENT_US * dim)
        * broad)
    node = planner.GRAPH_NODE_US + planner.GRAPH_ELEMENT_US * dim
    visits = planner.GRAPH_VISITS_PER_EF * ef + planner.GRAPH_VISITS_BASE
    assert shipped_graph_us(n, dim, ef, None, 10) == pytest.approx(planner.GRAPH_CALL_US + node * visits)
    # 10% allowed: inside the two-hop walk's range (4.7-25% at M=16); 1%: below it.
    assert shipped_graph_us(n, dim, ef, 0.1, 10) == pytest.approx(
        planner.GRAPH_CALL_US + planner.GRAPH_FILTER_SLOT_US * n + node * visits * planner.GRAPH_TWO_HOP_FACTOR)
    assert shipped_graph_us(n, dim, ef, 0.01, 10) == pytest.approx(
        planner.GRAPH_CALL_US + planner.GRAPH_FILTER_SLOT_US * n
        + node * visits / 0.01**planner.GRAPH_FILTER_EXPONENT)

    rows = [_scan_row(n, m, d, 30 + 0.001 * n + 0.0005 * m * d)
            for n in (10_000, 50_000) for m in (10, 1000) for d in (64, 128)]
    traversals = [TraversalRow("g", 1000, d, _timing(1000 * (0.4 + 0.0005 * d))) for d in (64, 128)]
    graph_rows = [GraphRow("toy", 10_000, 64, s, round(s * 10_000), ef, _timing(100 + 0.7 * (3 * ef + 9) / s), 1.0)
                  for s in (0.1, 0.5) for ef in (16, 64)]
    pooled = fit_visits("pooled", graph_rows, {"toy": 0.7})
    checks = constant_checks(fit_scan(rows, per_vector=True), fit_node(traversals), pooled)
    by_name = {check.name: check for check in checks}
    assert by_name["SCAN_CALL_US"].shipped == planner.SCAN_CALL_US
    assert by_name["SCAN_CALL_US"].refit == pytest.approx(30)
    assert by_name["GRAPH_ELEMENT_US"].refit == pytest.approx(0.0005)
    assert by_name["GRAPH_VISITS_PER_EF"].refit == pytest.approx(3)
    assert by_name["GRAPH_FILTER_EXPONENT"].shipped == planner.GRAPH_FILTER_EXPONENT

    measured = crossover("toy", n, dim, [dict(_point(0.001, 1, 2), n_allowed=50),
                                         dict(_point(0.5, 2, 1), n_allowed=25_000)])
    predicted = shipped_crossover(measured, 10)
    assert predicted.points[0]["exact_us"] == pytest.approx(shipped_scan_us(n, 50, dim, 10))
    assert predicted.points[1]["graph_us"] == pytest.approx(shipped_graph_us(n, dim, 16, 0.5, 10))
    assert 0.001 < predicted.selectivity < 0.5


def test_markdown_table_lines():
    assert markdown_table(["a", "b"], [[1, "x"]]) == ["| a | b |", "|---|---|", "| 1 | x |"]


# ---- end to end ----

def test_calibration_end_to_end_and_refit(tmp_path):
    report = tmp_path / "out" / "calibration.md"
    calibration_main(["--datasets", "synthetic:3000:32:cosine", "--queries", "20", "--selectivities", "0.01,0.1,1",
                      "--ef", "16,64", "--exact-counts", "1", "--traversal-queries", "5",
                      "--funnel-dataset", "synthetic:3000:32:cosine", "--funnel-queries", "20",
                      "--prefix-dims", "8,16", "--candidates", "20,50", "--funnel-efs", "16,64",
                      "--cache-dir", str(tmp_path / "cache"), "--report", str(report)])
    document = json.loads(report.with_suffix(".json").read_text())
    scans = document["scans"]
    assert sorted(r["n_allowed"] for r in scans if r["dim"] == 32) == [1, 30, 300, 3000]
    assert all(r["recall"] == 1.0 for r in scans if r["recall"] is not None)  # exact, even with one allowed id
    assert {r["dim"] for r in document["traversals"]} == {32, 8, 16}
    assert [(r["selectivity"], r["ef"]) for r in document["graph_rows"]] == [
        (s, ef) for s in (0.01, 0.1, 1.0, None) for ef in (16, 64)]
    assert {r["variant"] for r in document["funnel"]["funnel"]} == {"truncate", "pca"}
    assert document["funnel"]["energy"]["pca"]["8"] > document["funnel"]["energy"]["truncate"]["8"]
    assert [c["name"] for c in document["shipped_constants"]][0] == "SCAN_CALL_US"
    assert document["command"].startswith("python -m bench.planner.calibration --datasets synthetic:3000:32:cosine")
    text = report.read_text()
    for heading in ("## vecdb's cost model (`vecdb/query/planner.py`) against this run", "## Fitted cost model",
                    "## Crossover", "## Funnel on synthetic:3000:32:cosine", "## Raw tables"):
        assert heading in text
    assert f"| SCAN_CALL_US | {planner.SCAN_CALL_US:.3g} |" in text

    measured_json = report.with_suffix(".json").read_text()
    report.unlink()
    calibration_main(["--refit", "--report", str(report)])
    assert report.read_text() == text
    assert report.with_suffix(".json").read_text() == measured_json
