"""python -m bench.planner.calibration: measure the query planner's cost model on this machine,
re-fit its constants and hold vecdb's own (``vecdb/query/planner.py``) against them.

    python -m bench.planner.calibration                    # everything (25-50 min, see bench/README.md)
    python -m bench.planner.calibration --datasets npm-minilm-384 --queries 50 --funnel-dataset none \\
        --report /tmp/quick.md                              # a few minutes

Graphs are built with ``--build-threads`` threads (a multi-threaded build is not
deterministic; data, filters and queries are) and cached under ``--cache-dir``, keyed by a
digest of the vectors and the build parameters, so a re-run searches the same graphs.
The Markdown report goes to ``--report``, the raw results beside it as ``.json``;
``--refit`` re-fits and re-renders both from that JSON's measurements without measuring.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import vecdb
from bench.cpu_load import OtherCpuLoad
from bench.machine import machine_info
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR
from bench.planner.calibration.corpus import graph_for, load_unit_dataset, log
from bench.planner.calibration.fit import crossover, crossover_points, fit_node, fit_scan, fit_visits
from bench.planner.calibration.funnel import funnel_experiment
from bench.planner.calibration.measure import GraphRow, ScanRow, TraversalRow, filter_sweep, measure_traversal
from bench.planner.calibration.report import render_report
from bench.planner.calibration.results_file import read_results, write_results
from bench.planner.calibration.shipped import constant_checks, prediction_errors, shipped_crossover
from vecdb.index.rotation import MAX_SAMPLES


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _float_list(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options (defaults: the full calibration)."""
    parser = argparse.ArgumentParser(prog="python -m bench.planner.calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="npm-minilm-384,synthetic:50000:384:cosine,"
                        "synthetic:200000:384:cosine,synthetic:100000:768:cosine",
                        help="comma-separated cosine datasets for the scan and filter sweeps (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=200,
                        help="queries timed per configuration (default: %(default)s)")
    parser.add_argument("--k", type=int, default=10, help="(default: %(default)s)")
    parser.add_argument("--selectivities", type=_float_list, default=_float_list("0.001,0.003,0.01,0.03,0.1,0.3,0.5,1"),
                        help="shares of the vectors a random filter allows, ascending "
                             "(default: 0.001,0.003,0.01,0.03,0.1,0.3,0.5,1)")
    parser.add_argument("--ef", type=_int_list, default=_int_list("16,32,64,128,256"),
                        help="graph beam widths for the filter sweep, ascending (default: 16,32,64,128,256)")
    parser.add_argument("--exact-counts", type=_int_list, default=_int_list("1,100"),
                        help="allowed counts timed for the exact scan besides the selectivities' (default: 1,100)")
    parser.add_argument("--traversal-queries", type=int, default=30,
                        help="queries per full traversal, each visiting the whole graph (default: %(default)s)")
    parser.add_argument("--target-recall", type=float, default=0.95, help="(default: %(default)s)")
    parser.add_argument("--funnel-dataset", default="npm-minilm-384",
                        help="dataset for the funnel; 'none' skips it (default: %(default)s)")
    parser.add_argument("--funnel-queries", type=int, default=500, help="(default: %(default)s)")
    parser.add_argument("--prefix-dims", type=_int_list, default=_int_list("32,64,128,192"),
                        help="(default: 32,64,128,192)")
    parser.add_argument("--candidates", type=_int_list, default=_int_list("20,50,100,200,400,800"),
                        help="candidates C the prefix graph returns for the rerank (default: 20,50,100,200,400,800)")
    parser.add_argument("--funnel-min-ef", type=int, default=64, help="prefix graph ef = max(C, this) "
                        "(default: %(default)s)")
    parser.add_argument("--funnel-efs", type=_int_list, default=_int_list("16,24,32,48,64,96,128,192,256"),
                        help="ef sweep of the full-dimension graph the funnel is compared with, ascending "
                             "(default: 16,24,32,48,64,96,128,192,256)")
    parser.add_argument("--pca-sample", type=int, default=MAX_SAMPLES,
                        help="rows the PCA rotation is learned from, as many as a collection samples "
                             "(default: %(default)s)")
    parser.add_argument("--M", type=int, default=16, help="(default: %(default)s)")
    parser.add_argument("--ef-construction", type=int, default=200, help="(default: %(default)s)")
    parser.add_argument("--build-threads", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds synthetic data, filters and the PCA sample (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR / "planner_calibration",
                        help="(default: %(default)s)")
    parser.add_argument("--report", type=Path, default=DEFAULT_RESULTS_DIR / "planner" / "calibration.md",
                        help="Markdown report; the raw results go beside it as .json (default: %(default)s)")
    parser.add_argument("--refit", action="store_true",
                        help="measure nothing: re-fit and re-render from the measurements in the JSON beside --report "
                             "(e.g. after vecdb/query/planner.py's constants change)")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Every measurement (``MEASUREMENT_KEYS``): filter sweeps and traversals per dataset, then the funnel."""
    started = time.perf_counter()
    builds: dict[str, float] = {}
    other_load: dict[str, float] = {}
    scans: list[ScanRow] = []
    graph_rows: list[GraphRow] = []
    traversals: list[TraversalRow] = []
    for spec in (s for s in args.datasets.split(",") if s):
        dataset = load_unit_dataset(spec, args.seed, args.queries)
        graph = graph_for(dataset, args, builds)
        log(f"measuring {dataset.name}")
        load = OtherCpuLoad()
        traversals.append(measure_traversal(graph, dataset.name, dataset.dim, dataset.queries[:args.traversal_queries]))
        dataset_scans, dataset_rows = filter_sweep(dataset, graph, args)
        other_load[dataset.name] = load.cores()
        scans += dataset_scans
        graph_rows += dataset_rows
    funnel = None
    if args.funnel_dataset != "none":
        dataset = load_unit_dataset(args.funnel_dataset, args.seed, args.funnel_queries)
        log(f"funnel on {dataset.name}")
        load = OtherCpuLoad()
        funnel = funnel_experiment(dataset, args, builds)
        other_load["funnel"] = load.cores()
        scans += funnel.prefix_scans
        traversals += funnel.traversals
    return {"machine": machine_info(), "simd_level": vecdb.simd_level(),
            "command": shlex.join(["python", "-m", "bench.planner.calibration", *argv]),
            "seconds": time.perf_counter() - started, "scans": scans, "traversals": traversals,
            "graph_rows": graph_rows, "funnel": funnel, "builds": builds, "other_load": other_load}


def fit(measured: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The models fitted to ``measured`` and vecdb's own model held against it."""
    node_us = {r.graph: r.node_us for r in measured["traversals"]}
    filtered = [r for r in measured["graph_rows"] if r.selectivity is not None]
    datasets = list(dict.fromkeys(r.dataset for r in filtered))
    scan_model = fit_scan(measured["scans"], per_vector=True)
    node_model = fit_node(measured["traversals"])
    visit_models = ([fit_visits(d, [r for r in filtered if r.dataset == d], node_us) for d in datasets]
                    + [fit_visits("pooled", filtered, node_us)])
    crossovers = []
    for dataset in datasets:
        rows = [r for r in filtered if r.dataset == dataset]
        points = crossover_points([s for s in measured["scans"] if s.dataset == dataset], rows, args.selectivities,
                                  args.target_recall)
        crossovers.append(crossover(dataset, rows[0].n_total, rows[0].dim, points))
    return {
        "node_us": node_us,
        "scan_model": scan_model,
        "scan_model_simple": fit_scan(measured["scans"], per_vector=False),
        "node_model": node_model,
        "visit_models": visit_models,
        "crossovers": crossovers,
        "shipped_constants": constant_checks(scan_model, node_model, visit_models[-1]),
        "shipped_errors": prediction_errors(measured["scans"], measured["graph_rows"], scan_model, visit_models[-1],
                                            node_us, args.k),
        "shipped_crossovers": [shipped_crossover(c, args.k) for c in crossovers],
    }


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Measure (or, with --refit, read the last run's measurements), fit, write the report and the JSON."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    json_path = args.report.with_suffix(".json")
    if args.refit:
        stored, measured = read_results(json_path)
        args = argparse.Namespace(**dict(vars(stored), report=args.report, refit=True))
    else:
        measured = measure(args, argv)
    results = {**measured, **fit(measured, args)}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(render_report(results, args))
    write_results(json_path, args, results)
    log(f"wrote {args.report} and {json_path}")


if __name__ == "__main__":
    main()
