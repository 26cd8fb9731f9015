"""The calibration's Markdown report: vecdb's cost model against this run (with where each
of its constants comes from), the fitted models, the scan/graph crossovers, the funnel, and
every measurement."""

from __future__ import annotations

import argparse
from typing import Any, Optional

from bench.planner.calibration.fit import CAPPED_SHARE, Crossover, NodeModel, ScanModel, VisitModel
from bench.planner.calibration.funnel import FunnelResults
from bench.planner.calibration.measure import WARMUP_CALLS
from bench.planner.calibration.shipped import ConstantCheck, PredictionErrors
from bench.report.table import markdown_table

# Where vecdb/query/planner.py's constants come from: the history the numbers alone do not tell.
PROVENANCE = [
    "The constants were set in commit 496c36f from two runs of this calibration (then "
    "`bench/calibrate_planner.py`) on the reference machine (2 cores, AVX2) with a build of d04dc8b: "
    "npm-minilm-384 (50k x 384) and clustered 50k-200k x 384 and 100k x 768 sets, cosine, M=16, "
    "ef_construction=200. The two runs agreed within +-30% (other processes kept about one of the two "
    "cores busy), so treat every constant as +-15-30%.",
    "",
    "- **Exact scan** (`Scan`): `SCAN_CALL_US`, plus `SCAN_SLOT_US` per indexed point (the filter bitset is "
    "built and tested over every slot), plus per allowed point `SCAN_VECTOR_US` and `SCAN_ELEMENT_US` per "
    "dimension: the first run's exact-scan fit (a, c, b0, b1).",
    "- **Graph search** (`Graph`, and the prefix graph of `Funnel` and `Prefix`): `GRAPH_CALL_US` plus, per "
    "visited point, `GRAPH_NODE_US` (neighbour lists, visited set, heaps) and `GRAPH_ELEMENT_US` per "
    "dimension (the graph-node fit c0, c1). It visits about `GRAPH_VISITS_PER_EF * ef + GRAPH_VISITS_BASE` "
    "points, times `s^-GRAPH_FILTER_EXPONENT` under a filter keeping a share s of the points (it steps over "
    "the points it may not return), never more than all of them; a filter adds `GRAPH_FILTER_SLOT_US` per "
    "indexed point (its bitset). `GRAPH_FILTER_EXPONENT` and `GRAPH_FILTER_SLOT_US` are the pooled "
    "filtered fit's gamma and p. Where the search walks two hops instead (`TWO_HOP_MIN_LISTS / (2M) <= s < "
    "TWO_HOP_MAX_SHARE`: only allowed points are scored, csrc/hnsw/graph.h), the visits are "
    "`GRAPH_TWO_HOP_FACTOR` times an unfiltered search's, a factor set by hand, not fitted here. `GRAPH_CALL_US`, `GRAPH_VISITS_PER_EF` and `GRAPH_VISITS_BASE` are not "
    "its a0, alpha and beta (60, 4 and 50 against 121, 3.0 and 8 then); the planner uses one formula for "
    "filtered and unfiltered searches alike, and the commit does not record how they were chosen: the "
    "shipped model's prediction errors below are their test.",
    "- **Exact re-rank** (`Funnel`'s second stage), not measured here: `RERANK_CALL_US` plus per candidate "
    "`RERANK_VECTOR_US` and `RERANK_ELEMENT_US` per dimension, timed on the native `HnswIndex.rerank` "
    "(random reads: 50k x 384, C = 200: 73 us); read from LMDB (PQ collections), `LMDB_RERANK_US` per "
    "candidate (py-lmdb copies each value).",
    "- **ADC scan of PQ codes**, not measured here: `ADC_CODE_BYTE_US` per code byte (50k x 48 bytes: "
    "~1 ms, issue 5's measurement).",
]


def us(value: Optional[float]) -> str:
    """Microseconds for a table: 3 significant digits, ``-`` for none."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _share(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_report(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The whole report: vecdb's model against this run first, then the fits, then the raw tables."""
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
    ]
    lines += shipped_section(results, args)
    lines += fitted_section(results)
    lines += crossover_section(results, args)
    lines += funnel_section(results["funnel"], args)
    lines += raw_tables(results, args)
    return "\n".join(lines) + "\n"


def shipped_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """vecdb/query/planner.py's constants against this run's fits, its errors and its crossovers."""
    checks: list[ConstantCheck] = results["shipped_constants"]
    errors: list[PredictionErrors] = results["shipped_errors"]
    lines = ["## vecdb's cost model (`vecdb/query/planner.py`) against this run", ""] + PROVENANCE + [
        "", "Each constant beside the term this run fitted for it (sections below):", ""]
    lines += markdown_table(["constant", "vecdb/query/planner.py", "this run", "this run / vecdb", "fitted term"],
                            [[c.name, f"{c.shipped:.3g}", f"{c.refit:.3g}", f"{c.refit / c.shipped:.2f}", c.term]
                             for c in checks])
    lines += ["", "Relative error of each model's estimate against every measured median (the re-fitted "
              "models cover exact scans and filtered graph searches):", ""]
    lines += markdown_table(["searches", "points", "vecdb median", "vecdb max", "re-fit median", "re-fit max"],
                            [[e.searches, e.points, _share(e.shipped_median), _share(e.shipped_max),
                              _share(e.refit_median), _share(e.refit_max)] for e in errors])
    measured: list[Crossover] = results["crossovers"]
    predicted: list[Crossover] = results["shipped_crossovers"]
    agreeing = sum(_winner(m) == _winner(p) for c, s in zip(measured, predicted) for m, p in zip(c.points, s.points))
    total = sum(len(c.points) for c in measured)
    lines += ["", f"Exact scan or graph at recall@{args.k} >= {args.target_recall} (the graph at the smallest ef "
              "reaching it): where the scan stops being faster, measured and as vecdb's model predicts it at the "
              f"same points. The model picks the measured faster plan at {agreeing} of {total} "
              "(dataset, selectivity) points.", ""]
    lines += markdown_table(["dataset", "n_total", "dim", "measured", "vecdb's model"],
                            [[m.dataset, f"{m.n_total:,}", m.dim, m.summary, p.summary]
                             for m, p in zip(measured, predicted)])
    return lines + [""]


def _winner(point: dict[str, Any]) -> str:
    return "exact" if point["graph_us"] is None or point["exact_us"] <= point["graph_us"] else "graph"


def fitted_section(results: dict[str, Any]) -> list[str]:
    """The exact-scan, graph-node and filtered-graph fits."""
    scan_model: ScanModel = results["scan_model"]
    scan_simple: ScanModel = results["scan_model_simple"]
    node: NodeModel = results["node_model"]
    visit_models: list[VisitModel] = results["visit_models"]
    lines = [
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
        "every filtered point. A full traversal keeps every node in its candidate queue, so an ordinary "
        "search's real per-node cost may be lower and its real visit count higher: only `t_node*alpha` and "
        "`t_node*beta` are identified, and they are what predicts time.",
        "",
    ]
    lines += markdown_table(["fit", "alpha", "beta", "gamma", "a_g or a0 (us)", "p (ns per slot)", "points fitted",
                             "median abs err", "max abs err"],
                            [[m.scope, f"{m.alpha:.3g}", f"{m.beta:.3g}", f"{m.gamma:.2f}", us(m.fixed_us),
                              f"{m.per_slot_us * 1e3:.3g}", m.fitted_points, f"{m.median_abs_error:.1%}",
                              f"{m.max_abs_error:.1%}"] for m in visit_models])
    return lines


def crossover_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Per dataset and selectivity: the exact scan against the cheapest graph search at the
    target recall, measured and as vecdb's model estimates them."""
    lines = ["", f"## Crossover: exact scan vs graph at recall@{args.k} >= {args.target_recall}"]
    for measured, predicted in zip(results["crossovers"], results["shipped_crossovers"]):
        lines += ["", f"**{measured.dataset}** ({measured.summary}): smallest ef reaching the target at each "
                  "selectivity; vecdb's estimates for the same searches", ""]
        lines += markdown_table(
            ["s", "n_allowed", "exact us", "ef", "graph us", "recall", "exact / graph", "vecdb exact us",
             "vecdb graph us", "faster", "vecdb picks"],
            [[f"{p['selectivity']:g}", f"{p['n_allowed']:,}", us(p["exact_us"]),
              p["ef"] if p["ef"] is not None else f"> {max(args.ef)}", us(p["graph_us"]),
              "-" if p["graph_recall"] is None else f"{p['graph_recall']:.3f}",
              "-" if p["graph_us"] is None else f"{p['exact_us'] / p['graph_us']:.2f}",
              us(q["exact_us"]), us(q["graph_us"]), _winner(p), _winner(q)]
             for p, q in zip(measured.points, predicted.points)])
    return lines


def funnel_section(funnel: Optional[FunnelResults], args: argparse.Namespace) -> list[str]:
    """Funnel tables: full graph sweep, each funnel, PCA vs truncation, configurations at the target."""
    if funnel is None:
        return []
    target = args.target_recall
    full_at_target = next((r for r in funnel.full_graph if r.recall >= target), None)
    lines = ["", f"## Funnel on {args.funnel_dataset} (recall@{args.k} against the exact full-dimension neighbours)",
             "", f"Candidates come from a graph over the first d' dimensions (re-normalized), searched with "
             f"ef = max(C, {args.funnel_min_ef}), then `vecdb.rerank` at full dimension. `pca` first applies the "
             "rotation a `rotate=\"pca\"` collection learns (`vecdb.index.rotation.learn_pca_rotation` on at most "
             f"{args.pca_sample:,} sampled rows). 'exact-prefix recall' replaces the graph by an exact prefix "
             "scan: the best that prefix and C allow.", "",
             "Full-dimension graph on the same queries:", ""]
    lines += markdown_table(["ef", "recall", "median us", "p90 us", "wall us"],
                            [[r.ef, f"{r.recall:.3f}", us(r.timing.median_us), us(r.timing.p90_us),
                              us(r.timing.wall_us)] for r in funnel.full_graph])
    if full_at_target is None:
        lines += ["", f"The full graph does not reach recall {target} at ef <= {max(args.funnel_efs)}."]
    else:
        lines += ["", f"Full graph at recall >= {target}: ef={full_at_target.ef}, recall {full_at_target.recall:.3f}, "
                  f"{us(full_at_target.timing.median_us)} us."]
    lines += ["", "Share of sum(||x||^2) in the first d' coordinates:", ""]
    lines += markdown_table(["variant"] + [f"d'={d}" for d in args.prefix_dims],
                            [[variant] + [f"{shares[d]:.3f}" for d in args.prefix_dims]
                             for variant, shares in funnel.energy.items()])
    reaching = sorted((r for r in funnel.funnel if r.recall >= target), key=lambda r: r.total_us)
    lines += ["", f"Funnels reaching recall {target} (total = project + graph + rerank, median of the per-query sum):",
              ""]
    lines += markdown_table(["variant", "d'", "C", "ef", "recall", "total us", "vs full graph at target"],
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
    lines += markdown_table(["d'", "C", "truncate", "pca", "pca - truncate"], grid)
    lines += ["", "All funnels (median us per stage; total is the median of the per-query sum):", ""]
    lines += markdown_table(["variant", "d'", "C", "ef", "recall", "exact-prefix recall", "project", "graph", "rerank",
                             "total", "wall"],
                            [[r.variant, r.prefix_dims, r.candidates, r.ef, f"{r.recall:.3f}",
                              f"{r.exact_prefix_recall:.3f}", us(r.project_us), us(r.graph_us), us(r.rerank_us),
                              us(r.total_us), us(r.wall_us)] for r in funnel.funnel])
    return lines


def raw_tables(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Every exact scan, traversal and graph search measured, with the models' predictions."""
    scan_model: ScanModel = results["scan_model"]
    pooled: VisitModel = results["visit_models"][-1]
    lines = ["", "## Raw tables", "", "### Exact scan (fresh filter per query unless 'same filter')", ""]
    lines += markdown_table(["dataset", "n_total", "dim", "n_allowed", "median us", "p90 us", "wall us",
                             "same filter us", "recall vs knn", "model us"],
                            [[r.dataset, f"{r.n_total:,}", r.dim, f"{r.n_allowed:,}", us(r.timing.median_us),
                              us(r.timing.p90_us), us(r.timing.wall_us), us(r.same_mask.median_us),
                              "-" if r.recall is None else f"{r.recall:.3f}",
                              us(scan_model.predict(r.n_total, r.n_allowed, r.dim))] for r in results["scans"]])
    lines += ["", "### Full traversals (per-node cost)", ""]
    lines += markdown_table(["graph", "n_total", "dim", "median us", "wall us", "us per node", "ns per node per dim"],
                            [[r.graph, f"{r.n_total:,}", r.dim, us(r.timing.median_us), us(r.timing.wall_us),
                              f"{r.node_us:.3g}", f"{r.node_us / r.dim * 1e3:.3g}"] for r in results["traversals"]])
    node_us = results["node_us"]
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
        lines += markdown_table(["s", "n_allowed"] + [f"ef={ef}" for ef in args.ef], grid)
    lines += ["", "Graph builds this run (seconds; cached graphs are not rebuilt): "
              + (", ".join(f"{name} {seconds:.0f}" for name, seconds in results["builds"].items()) or "none") + "."]
    return lines
