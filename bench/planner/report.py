"""The planner benchmark's Markdown reports, rendered from its JSON documents alone."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from bench.planner.analysis import FILTERED_SHARE_GOAL, QPS_TOLERANCE, RECALL_SLACK, SPEEDUP_AIM, SPEEDUP_GOAL
from bench.report.table import format_qps

Document = Dict[str, Any]


def _qps(value: Optional[float], lower_bound: bool = False) -> str:
    if value is None:
        return "not reached"
    return ("≥ " if lower_bound else "") + format_qps(value)


def _times(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def _run_header(run: Document) -> List[str]:
    machine, params = run["machine"], run["params"]
    index = (f"HNSW M={params['M']}, ef_construction={params['ef_construction']}, ef_search={params['ef_search']}; "
             f"mrl_dims={params['mrl_dims'] or 'none'}, rotate={params['rotate'] or 'none'}")
    return [
        f"## {run['dataset']} ({run['n_base']:,} x {run['dim']}, {run['metric']}, {run['n_queries']} queries, "
        f"recall@{run['k']})", "",
        f"Collection: {index}. Built (upserts of {params['batch']:,} on all cores, snapshot written) in "
        f"{run['build']['seconds']:.1f} s. Searches: one query per call, one thread, {params['rounds']} interleaved "
        f"round(s) (QPS is the best round's; recall is over every query).", "",
        f"Measured {run['measured_at']} on {machine['cpu_model']} ({machine['usable_cores']} usable cores, "
        f"{machine['memory_gib']} GiB), Python {machine['python']}, vecdb "
        f"{machine['libraries'].get('vecdb-engine')} ({(machine.get('vecdb_cpu_features') or {}).get('simd_level')}).",
        "", f"Reproduce: `{run['command']}`", "",
    ]


# How the measurement tables mark the rows that are not a plan forced for its own sake.
_ROLES = {"default": " (default before tune, forced)", "tuned": " (default after tune)"}


def _measurement_table(rows: List[Document], k: int) -> List[str]:
    lines = [f"| plan | recall@{k} | QPS | QPS per round | p50 ms | other load |", "|---|---|---|---|---|---|"]
    for row in rows:
        rounds = ", ".join(format_qps(q) for q in row["qps_rounds"])
        lines.append(f"| {row['label']}{_ROLES.get(row['kind'], '')} | {row['recall']:.4f} | "
                     f"{format_qps(row['qps'])} | {rounds} | "
                     f"{row['latency_ms_p50']:.3f} | {row['other_load']:.2f} |")
    return lines + [""]


def _memory_lines(run: Document) -> List[str]:
    stats = run["stats"]
    mrl = stats.get("mrl") or {}
    full = stats["index_memory_bytes"]
    points = stats["count"]
    lines = [f"Index memory (`stats()`; rotation trained: {mrl.get('rotation_trained')}):", "",
             "| index | MiB | bytes per vector | share of the full index |", "|---|---|---|---|",
             f"| full dimension ({run['dim']}-d) | {_mib(full)} | {full / points:,.0f} | 1.00 |"]
    for dims, size in (mrl.get("prefix_memory_bytes") or {}).items():
        lines.append(f"| prefix {dims}-d | {_mib(size)} | {size / points:,.0f} | {size / full:.2f} |")
    return lines + [""]


def _summary_lines(run: Document) -> List[str]:
    summary = run["summary"]
    target, graph = summary["target_recall"], summary["graph_qps"]
    lines = [f"QPS at recall@{run['k']} = {target} (interpolated in log QPS between the sweep values that bracket "
             "it; the funnel along the Pareto frontier of its (dims, candidates) grid; ≥ marks a sweep whose "
             "cheapest setting already exceeds the target):", "",
             "| search | QPS at target | speedup over graph |", "|---|---|---|",
             f"| graph, full dimension (ef sweep) | {_qps(graph, summary['graph_lower_bound'])} | 1.00x |",
             f"| funnel (dims x candidates sweep) | {_qps(summary['funnel_qps'], summary['funnel_lower_bound'])} | "
             f"{_times(summary['funnel_speedup'])} |"]
    measured = summary["funnel_measured"]
    if measured is not None:
        lines.append(f"| fastest funnel setting measured at or above target: {measured['label']} "
                     f"(recall {measured['recall']:.4f}) | {format_qps(measured['qps'])} | "
                     f"{_times(measured['speedup'])} |")
    tuned = summary["tuned"]
    if tuned is not None:
        note = "" if tuned["reaches_target"] else ", below target"
        lines.append(f"| tuned default: {tuned['label']} (recall {tuned['recall']:.4f}{note}) | "
                     f"{format_qps(tuned['qps'])} | {_times(tuned['speedup'])} |")
    verdict = "met" if summary["goal_met"] else "not met"
    tuned_verdict = "met" if summary.get("tuned_goal_met") else "not met"
    aim = "reached" if summary.get("aim_met") else "not reached"
    lines += ["", f"Goal (funnel ≥ {SPEEDUP_GOAL}x the graph's QPS at recall {target}): along the funnel sweep "
                  f"**{verdict}**, by the tuned default **{tuned_verdict}**; aim ({SPEEDUP_AIM}x): {aim}.", ""]
    return lines


def _tune_lines(run: Document) -> List[str]:
    tune = run["tune"]
    on_queries = tune.get("tuned_on") == "queries"
    queries = "the first half of the dataset's queries" if on_queries else run["params"]["tune_queries"]
    tuned_on = "its half of the queries" if on_queries else "its pseudo-queries"
    lines = [f"`tune(target_recall={run['params']['target_recall']}, k={run['k']}, "
             f"queries={queries}, seed={run['params']['seed']})` took {tune['seconds']:.1f} s "
             f"and chose {tune['label']} (its recall {tune['recall']:.4f}, held out {tune['held_out_recall']:.4f}). "
             f"Its trials (recall on {tuned_on}; latency "
             "of the plan alone, as tune measured it, without fetching ids from LMDB):", "",
             "| trial | recall | latency µs | estimated µs | meets target |", "|---|---|---|---|---|"]
    for trial in tune["trials"]:
        lines.append(f"| {trial['description']} | {trial['recall']:.4f} | {trial['latency_us']:,.0f} | "
                     f"{trial['estimated_us']:,.0f} | {'yes' if trial['meets_target'] else 'no'} |")
    return lines + [""]


# Other load (cores busy with other processes while a case was timed) above which timings
# are disturbed, as in the main harness.
_QUIET_LOAD = 0.1


def _load_lines(rows: List[Document]) -> List[str]:
    busiest = max(row["other_load"] for row in rows)
    if busiest <= _QUIET_LOAD:
        return []
    disturbed = sum(row["other_load"] > _QUIET_LOAD for row in rows)
    return [f"**Noisy machine:** other processes kept up to {busiest:.2f} cores busy while {disturbed} of "
            f"{len(rows)} cases were timed (best round; \"other load\" column). Above {_QUIET_LOAD} timings are "
            "disturbed: compare within this run, or re-run on a quiet machine.", ""]


def funnel_markdown(document: Document, plot_files: Dict[str, str]) -> str:
    """The funnel report: per dataset, QPS at the target recall, memory, tune, every plan measured."""
    lines = ["# vecdb planner: Matryoshka funnel against full-dimension HNSW", "",
             "One collection per dataset with an HNSW index over each `mrl_dims` prefix besides the full one. "
             "Graph = `plans.Graph(ef)` (full dimension); funnel = `plans.Funnel(dims, candidates)` (the prefix "
             "index shortlists candidates, re-ranked exactly at full dimension); prefix = `plans.Prefix(dims)` "
             "(no re-rank); tuned = the default plan `tune()` stored. Recall@k is against exact search.", ""]
    for name, run in document["runs"].items():
        lines += _run_header(run)
        if name in plot_files:
            lines += [f"![recall vs QPS]({plot_files[name]})", ""]
        lines += _load_lines(run["rows"]) + _summary_lines(run) + _memory_lines(run)
        lines += _measurement_table(run["rows"], run["k"]) + _tune_lines(run)
    return "\n".join(lines)


def _verdict(check: Dict[str, Any]) -> str:
    if not check["passed"]:
        return "**no**"
    return "yes (the same plan)" if check.get("same_plan") and check["qps_ratio"] < 1 - QPS_TOLERANCE else "yes"


def _check_lines(run: Document) -> List[str]:
    target = run["params"]["target_recall"]
    lines = [f"Planner check: the better forced plan is the faster of scan and graph (ef_search="
             f"{run['params']['ef_search']}, the collection's default) among those reaching recall {target}, "
             "else the more accurate; the planner passes when its QPS is at least "
             f"{1 - QPS_TOLERANCE:.2f} of that plan's, or it chose that very plan (then both rows time the "
             "same search and their ratio is the machine's noise), and its recall is at least min(that plan's, "
             f"{target}) - {RECALL_SLACK}.", "",
             "| filter keeps | allowed points | planner chose | planner recall | planner QPS | better forced | "
             "its recall | its QPS | planner / better QPS | pass |", "|---|---|---|---|---|---|---|---|---|---|"]
    for level in run["selectivities"]:
        check = level["check"]
        lines.append(f"| {level['percent']:g}% | {level['allowed']:,} | {' / '.join(level['planner_plans'])} | "
                     f"{check['planner_recall']:.4f} | {format_qps(check['planner_qps'])} | {check['best_label']} | "
                     f"{check['best_recall']:.4f} | {format_qps(check['best_qps'])} | {check['qps_ratio']:.2f} | "
                     f"{_verdict(check)} |")
    verdict = "yes" if all(level["check"]["passed"] for level in run["selectivities"]) else "**no**"
    return lines + ["", f"Planner within {QPS_TOLERANCE:.0%} of the better forced plan at every selectivity: "
                        f"{verdict}.", ""]


def _share_lines(run: Document) -> List[str]:
    """Filtered QPS at the target recall against the unfiltered graph's (runs before the
    unfiltered reference was measured have none)."""
    if "unfiltered" not in run:
        return []
    target = run["params"]["target_recall"]
    unfiltered = run["selectivities"][0]["share"]["unfiltered_qps"]
    lines = [f"Filtered against unfiltered: QPS at recall {target} under each filter (the graph's ef sweep "
             "interpolated there, or a scan or planner plan reaching it, whichever is faster) over the same "
             f"graph's without a filter ({format_qps(unfiltered) if unfiltered else 'not reached'} QPS at recall "
             f"{target}, interpolated over the unfiltered ef sweep below); goal: at least {FILTERED_SHARE_GOAL:g}.",
             "", "| filter keeps | filtered QPS | filtered / unfiltered | goal met |", "|---|---|---|---|"]
    for level in run["selectivities"]:
        share = level["share"]
        shown = "not reached" if share["filtered_qps"] is None else format_qps(share["filtered_qps"])
        ratio = "" if share["share"] is None else f"{share['share']:.2f}"
        lines.append(f"| {level['percent']:g}% | {shown} | {ratio} | {'yes' if share['goal_met'] else '**no**'} |")
    verdict = "yes" if all(level["share"]["goal_met"] for level in run["selectivities"]) else "**no**"
    return lines + ["", f"Filtered QPS at least {FILTERED_SHARE_GOAL:g}x unfiltered at every selectivity: {verdict}.",
                    "", "### no filter (reference)", ""] + _measurement_table(run["unfiltered"], run["k"])


def filtered_markdown(document: Document, plot_files: Dict[str, str]) -> str:
    """The filtered-search report: per dataset, the planner check and every plan at each selectivity."""
    lines = ["# vecdb planner: filtered search, planner against forced plans", "",
             "Every point has a `bucket` payload (a seeded permutation of the rows modulo 1,000, integer payload "
             "index); the filter `{\"bucket\": {\"$lt\": X}}` keeps X in 1,000 points. Planner = `search()` with "
             "the default plan choice; scan = `plans.Scan()`; graph = `plans.Graph(ef)` (filtered HNSW). "
             "Recall@k is against exact search among the allowed points.", ""]
    for name, run in document["runs"].items():
        lines += _run_header(run)
        if name in plot_files:
            lines += [f"![QPS and recall by selectivity]({plot_files[name]})", ""]
        lines += _load_lines([row for level in run["selectivities"] for row in level["rows"]]) + _check_lines(run)
        lines += _share_lines(run)
        for level in run["selectivities"]:
            lines += [f"### filter keeps {level['percent']:g}% ({level['allowed']:,} points)", ""]
            lines += _measurement_table(level["rows"], run["k"])
    return "\n".join(lines)
