"""The recall-vs-QPS plot known from ann-benchmarks: up and to the right is better."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bench.optional import MATPLOTLIB, require
from bench.report.groups import Measurement

_LINE_STYLES = ("-", "--", ":", "-.")
# Recall axis: at least this much of the range below 1.0 is shown, so exact systems alone
# still sit on a readable axis, and a little room is left right of 1.0 for their markers.
_MIN_RECALL_SHOWN = 0.9
_RECALL_MARGIN = 0.01
_MARKERS = ("o", "s", "^", "D")


def plot_recall_qps(measurements: list[Measurement], title: str, path: Path) -> None:
    """One panel per batch size; in each, one curve per (system, threads), log-scale QPS.

    Exact systems have one point each; graph systems a curve over their sweep.
    """
    require(MATPLOTLIB, "plotting results")
    # The object-oriented Figure renders through Agg without touching pyplot's global backend.
    from matplotlib.figure import Figure

    by_batch: dict[int, list[Measurement]] = defaultdict(list)
    for measurement in measurements:
        by_batch[measurement["batch"]].append(measurement)
    systems = list(dict.fromkeys(m["system"] for m in measurements))
    thread_counts = sorted({m["threads"] for m in measurements})
    colors = {system: f"C{i % 10}" for i, system in enumerate(systems)}

    figure = Figure(figsize=(6.5 * len(by_batch), 5), layout="constrained")
    axes = figure.subplots(1, len(by_batch), squeeze=False)[0]
    for axis, batch in zip(axes, sorted(by_batch)):
        curves: dict[tuple[str, int], list[Measurement]] = defaultdict(list)
        for measurement in by_batch[batch]:
            curves[measurement["system"], measurement["threads"]].append(measurement)
        for (system, threads), curve in curves.items():
            curve.sort(key=lambda m: m["param"] or 0)
            style = thread_counts.index(threads)
            axis.plot(
                [m["recall"] for m in curve],
                [m["qps"] for m in curve],
                color=colors[system],
                linestyle=_LINE_STYLES[style % len(_LINE_STYLES)],
                marker=_MARKERS[style % len(_MARKERS)],
                label=f"{system}, {threads} thread{'s' if threads > 1 else ''}",
            )
        lowest = min(m["recall"] for m in by_batch[batch])
        axis.set_xlim(min(_MIN_RECALL_SHOWN, lowest - _RECALL_MARGIN), 1.0 + _RECALL_MARGIN)
        axis.set_yscale("log")
        axis.set_xlabel(f"recall@{measurements[0]['k']}")
        axis.set_ylabel("queries per second")
        axis.set_title(f"batch {batch}" + (" (one query per call)" if batch == 1 else ""))
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
