"""The arithmetic behind the planner benchmark's verdicts, free of vecdb so it is unit-tested alone.

A *row* is one measured plan: a dict with at least ``kind`` (``graph``, ``funnel``,
``prefix``, ``scan``, ``default``, ``tuned``, ``planner``), ``label`` (the plan as
vecdb prints it), ``params``, ``recall`` and ``qps`` (the best round's).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from bench.report.at_recall import TARGET_RECALL, qps_at_recall

Row = Dict[str, Any]

# Issue 18's goal for the tuned funnel: QPS at the target recall at least this many times
# the full-dimension graph's (on the 768-d set), with SPEEDUP_AIM the aim (issue 6's goal).
SPEEDUP_GOAL = 1.5
SPEEDUP_AIM = 2.5
# The planner may be this much slower than the better forced plan (the issue: "never worse
# than the better of the two by more than 10%").
QPS_TOLERANCE = 0.10
# The goal for filtered search: QPS at the target recall under any filter at least
# this share of the unfiltered search's.
FILTERED_SHARE_GOAL = 0.5
# Recall the planner may lose against the better forced plan's (capped at the target):
# one query in a hundred missing one neighbour in ten, the resolution of 1,000 queries at
# recall@10 once graph searches with the same ef visit candidates in a different order.
RECALL_SLACK = 0.01


def pareto_frontier(rows: List[Row]) -> List[Row]:
    """The rows no other row beats on both recall and QPS, by ascending recall (and so
    descending QPS): the best speed reachable at each recall over every setting swept."""
    frontier: List[Row] = []
    for row in sorted(rows, key=lambda r: (-r["recall"], -r["qps"])):
        if not frontier or row["qps"] > frontier[-1]["qps"]:
            frontier.append(row)
    return frontier[::-1]


def graph_qps_at_recall(rows: List[Row], target: float = TARGET_RECALL) -> tuple[Optional[float], bool]:
    """QPS of the ``graph`` rows at ``target`` recall, interpolated over their ef sweep as the
    main harness does (``bench.report.at_recall``); the flag marks a lower bound."""
    sweep = [{"param": r["params"]["ef"], "recall": r["recall"], "qps": r["qps"]} for r in rows if r["kind"] == "graph"]
    return qps_at_recall(sweep, target)


def frontier_qps_at_recall(rows: List[Row], target: float = TARGET_RECALL) -> tuple[Optional[float], bool]:
    """QPS at ``target`` recall interpolated along the Pareto frontier of ``rows``: for a
    two-parameter sweep (the funnel's dims and candidates) the frontier plays the part of
    a one-parameter sweep ordered by cost."""
    frontier = pareto_frontier(rows)
    return qps_at_recall([{"param": rank, "recall": r["recall"], "qps": r["qps"]} for rank, r in enumerate(frontier)],
                         target)


def fastest_reaching(rows: List[Row], target: float = TARGET_RECALL) -> Optional[Row]:
    """The fastest row whose recall reaches ``target``, or None."""
    reaching = [r for r in rows if r["recall"] >= target]
    return max(reaching, key=lambda r: r["qps"], default=None)


def _ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    return None if numerator is None or not denominator else numerator / denominator


def funnel_summary(rows: List[Row], target: float = TARGET_RECALL) -> Dict[str, Any]:
    """The headline numbers of one funnel run: QPS at ``target`` of the full-dimension graph
    and of the funnel (interpolated, and its fastest measured setting reaching the target),
    the tuned default plan's, and each one's speedup over the graph."""
    graph_qps, graph_bound = graph_qps_at_recall(rows, target)
    funnels = [r for r in rows if r["kind"] == "funnel"]
    funnel_qps, funnel_bound = frontier_qps_at_recall(funnels, target) if funnels else (None, False)
    measured = fastest_reaching(funnels, target)
    tuned = next((r for r in rows if r["kind"] == "tuned"), None)
    return {
        "target_recall": target,
        "graph_qps": graph_qps, "graph_lower_bound": graph_bound,
        "funnel_qps": funnel_qps, "funnel_lower_bound": funnel_bound,
        "funnel_speedup": _ratio(funnel_qps, graph_qps),
        "funnel_measured": None if measured is None else {
            "label": measured["label"], "recall": measured["recall"], "qps": measured["qps"],
            "speedup": _ratio(measured["qps"], graph_qps)},
        "tuned": None if tuned is None else {
            "label": tuned["label"], "recall": tuned["recall"], "qps": tuned["qps"],
            "reaches_target": tuned["recall"] >= target, "speedup": _ratio(tuned["qps"], graph_qps)},
        "speedup_goal": SPEEDUP_GOAL,
        "goal_met": funnel_qps is not None and graph_qps is not None and funnel_qps >= SPEEDUP_GOAL * graph_qps,
        # The wording: "the tuned MRL funnel" (the default plan tune() stores).
        "tuned_goal_met": tuned is not None and graph_qps is not None and tuned["recall"] >= target
        and tuned["qps"] >= SPEEDUP_GOAL * graph_qps,
        "speedup_aim": SPEEDUP_AIM,
        "aim_met": funnel_qps is not None and graph_qps is not None and funnel_qps >= SPEEDUP_AIM * graph_qps,
    }


def better_forced(forced: List[Row], target: float = TARGET_RECALL) -> Row:
    """Of the forced plans, the better: the fastest that reaches ``target`` recall, or, when
    none does, the most accurate (ties to the faster)."""
    reaching = fastest_reaching(forced, target)
    return reaching if reaching is not None else max(forced, key=lambda r: (r["recall"], r["qps"]))


def planner_check(planner: Row, forced: List[Row], target: float = TARGET_RECALL,
                  planner_plans: Optional[List[str]] = None, default_ef: Optional[int] = None) -> Dict[str, Any]:
    """Whether the planner's default plan is within QPS_TOLERANCE of the better forced plan's
    speed without losing more than RECALL_SLACK of its recall (capped at ``target``: beyond
    the target, recall is not worth speed).

    ``planner_plans``: the plans the planner chose (as vecdb prints them; ``ef=None`` is the
    collection's ``default_ef``). When they are the better forced plan itself, the two rows
    time the same search and their QPS differ only by the machine's noise (the same Scan()
    measured 0.87x and 1.37x of itself in two runs): the check passes on the choice, and the
    ratio is still reported."""
    best = better_forced(forced, target)
    qps_ratio = planner["qps"] / best["qps"]
    recall_needed = min(best["recall"], target) - RECALL_SLACK
    same_plan = bool(planner_plans) and all(
        plan.replace("ef=None", f"ef={default_ef}") == best["label"] for plan in planner_plans or [])
    return {
        "best_label": best["label"], "best_kind": best["kind"], "best_recall": best["recall"], "best_qps": best["qps"],
        "planner_recall": planner["recall"], "planner_qps": planner["qps"], "qps_ratio": qps_ratio,
        "recall_needed": recall_needed, "same_plan": same_plan,
        "passed": (same_plan or qps_ratio >= 1.0 - QPS_TOLERANCE) and planner["recall"] >= recall_needed,
    }


def filtered_qps_at_recall(rows: List[Row], target: float = TARGET_RECALL) -> Optional[float]:
    """The best QPS one selectivity's measurements reach at ``target`` recall: the graph's ef
    sweep interpolated there, or a measured plan (scan, planner) reaching it, whichever is
    faster; None when nothing reaches it."""
    graph_qps, _ = graph_qps_at_recall(rows, target)
    reaching = fastest_reaching(rows, target)
    values = [value for value in (graph_qps, None if reaching is None else reaching["qps"]) if value is not None]
    return max(values, default=None)


def filtered_share(rows: List[Row], unfiltered_rows: List[Row], target: float = TARGET_RECALL) -> Dict[str, Any]:
    """Filtered QPS at ``target`` recall (:func:`filtered_qps_at_recall`) over the unfiltered
    graph's, measured in the same run, against FILTERED_SHARE_GOAL."""
    filtered = filtered_qps_at_recall(rows, target)
    unfiltered, _ = graph_qps_at_recall(unfiltered_rows, target)
    share = _ratio(filtered, unfiltered)
    return {"filtered_qps": filtered, "unfiltered_qps": unfiltered, "share": share, "goal": FILTERED_SHARE_GOAL,
            "goal_met": share is not None and share >= FILTERED_SHARE_GOAL}
