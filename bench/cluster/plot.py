"""The cluster benchmark's plot: each cluster configuration's QPS over the embedded
database's, one panel per dataset, one bar per measurement (matplotlib's object-oriented
Figure, no pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from bench.cluster.analysis import MODES, cluster_labels
from bench.cluster.targets import EMBEDDED
from bench.optional import MATPLOTLIB, require


def plot_relative_qps(results: List[Dict[str, Any]], summaries: List[Dict[str, Any]], mode_names: Dict[str, str],
                      path: Path) -> None:
    """Bars of median QPS over the embedded median QPS (1 = as fast as embedded), grouped
    by configuration; ``mode_names`` labels the measurements."""
    require(MATPLOTLIB, "plotting results")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5 * len(results), 5), layout="constrained")
    axes = figure.subplots(1, len(results), squeeze=False)[0]
    width = 0.8 / len(MODES)
    for axis, result, summary in zip(axes, results, summaries):
        medians = summary["medians"]
        labels = cluster_labels(result)
        for offset, mode in enumerate(MODES):
            ratios = [medians[label][mode]["qps"] / medians[EMBEDDED][mode]["qps"] for label in labels]
            axis.bar([position + (offset - (len(MODES) - 1) / 2) * width for position in range(len(labels))], ratios,
                     width, label=mode_names[mode], color=f"C{offset}")
        axis.axhline(1.0, color="black", linewidth=0.8, label="embedded")
        axis.set_xticks(range(len(labels)), labels=[label.replace(" + ", "\n+ ") for label in labels])
        axis.set_ylabel("QPS over embedded QPS (median of rounds)")
        info = result["dataset"]
        axis.set_title(f"{info['name']} ({info['n_base']:,} x {info['dim']})")
        axis.grid(True, axis="y", alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle("vecdb.cluster on one machine: QPS relative to the embedded database")
    figure.savefig(path, dpi=110)
