"""The planner benchmark's plots (matplotlib's object-oriented Figure, no pyplot state)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

from bench.optional import MATPLOTLIB, require
from bench.report.axes import log_x_axis

Document = Dict[str, Any]
# Room left of the lowest recall shown and right of 1.0, so markers there stay whole.
_RECALL_MARGIN = 0.01


def _figure(width: float, panels: int) -> tuple[Any, Any]:
    """A figure of ``panels`` side by side and its axes."""
    require(MATPLOTLIB, "plotting results")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * panels, 5), layout="constrained")
    return figure, figure.subplots(1, panels, squeeze=False)[0]


def plot_funnel(run: Document, path: Path) -> None:
    """Recall against QPS (log scale): the graph's ef sweep, one funnel curve per prefix
    dimension over its candidates, prefix-only points, the defaults before and after tune."""
    figure, (axis,) = _figure(7.5, 1)
    rows = run["rows"]
    graph = sorted((r for r in rows if r["kind"] == "graph"), key=lambda r: r["params"]["ef"])
    axis.plot([r["recall"] for r in graph], [r["qps"] for r in graph], "k-o", label="graph, full dim (ef sweep)")
    funnels: Dict[int, List[Document]] = defaultdict(list)
    for row in rows:
        if row["kind"] == "funnel":
            funnels[row["params"]["dims"]].append(row)
    for number, (dims, curve) in enumerate(sorted(funnels.items())):
        curve.sort(key=lambda r: r["params"]["candidates"])
        axis.plot([r["recall"] for r in curve], [r["qps"] for r in curve], marker="s", color=f"C{number}",
                  label=f"funnel {dims}-d (candidates {curve[0]['params']['candidates']}–"
                        f"{curve[-1]['params']['candidates']})")
    prefixes = [r for r in rows if r["kind"] == "prefix"]
    recalls = ", ".join(f"{r['params']['dims']}-d {r['recall']:.2f}" for r in prefixes)
    axis.scatter([r["recall"] for r in prefixes], [r["qps"] for r in prefixes], marker="x", color="grey",
                 label=f"prefix only, recall {recalls}")
    for kind, marker, color, text in (("default", "D", "orange", "default before tune"),
                                      ("tuned", "*", "crimson", "tuned default")):
        for row in rows:
            if row["kind"] == kind:
                axis.scatter([row["recall"]], [row["qps"]], marker=marker, s=140, color=color, zorder=3,
                             label=f"{text}: {row['label']}")
    target = run["summary"]["target_recall"]
    axis.axvline(target, color="grey", linestyle=":", linewidth=1)
    # Prefix-only recall is far below the rest; the axis shows the range the comparison is about
    # (prefix points outside it are listed in the legend).
    compared = [r["recall"] for r in rows if r["kind"] != "prefix"]
    axis.set_xlim(min([target - 0.05, *compared]) - _RECALL_MARGIN, 1 + _RECALL_MARGIN)
    axis.set_yscale("log")
    axis.set_xlabel(f"recall@{run['k']}")
    axis.set_ylabel("queries per second (one per call, one thread)")
    axis.set_title(f"{run['dataset']}: funnel vs graph")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def plot_filtered(run: Document, path: Path) -> None:
    """QPS and recall by selectivity for the planner and each forced plan."""
    figure, (speed, accuracy) = _figure(6.5, 2)
    series: Dict[str, List[tuple[float, Document]]] = defaultdict(list)
    for level in run["selectivities"]:
        for row in level["rows"]:
            name = "planner" if row["kind"] == "planner" else row["label"]
            series[name].append((level["percent"], row))
    for number, (name, points) in enumerate(series.items()):
        style = {"color": "crimson", "linewidth": 2.5, "marker": "*", "markersize": 11} if name == "planner" else {
            "color": f"C{number}", "marker": "o"}
        speed.plot([p for p, _ in points], [r["qps"] for _, r in points], label=name, **style)
        accuracy.plot([p for p, _ in points], [r["recall"] for _, r in points], label=name, **style)
    percents = [level["percent"] for level in run["selectivities"]]
    for axis, label in ((speed, "queries per second (one per call, one thread)"), (accuracy, f"recall@{run['k']}")):
        log_x_axis(axis, percents, [f"{p:g}%" for p in percents], "share of points the filter keeps (%)", label)
    speed.set_yscale("log")
    speed.set_title("speed")
    accuracy.set_title("recall")
    figure.suptitle(f"{run['dataset']}: filtered search, planner vs forced plans")
    figure.savefig(path, dpi=110)
