"""Axis styling the benchmarks' plots share."""

from __future__ import annotations

from typing import Any, Sequence


def log_x_axis(axis: Any, ticks: Sequence[float], tick_labels: Sequence[str], x_label: str, y_label: str) -> None:
    """A log-scale x axis with one labelled tick per measured value (no minor ticks), axis
    labels, a grid and the legend."""
    axis.set_xscale("log")
    axis.set_xticks(ticks, labels=tick_labels)
    axis.minorticks_off()
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize="small")
