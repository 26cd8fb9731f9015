"""Grouping measurements the way the table and the plot show them."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from bench.systems import SYSTEMS

Measurement = dict[str, Any]


def group_by_dataset(measurements: list[Measurement]) -> dict[tuple[str, str, int], list[Measurement]]:
    """Measurements per (dataset, metric, k), each list sorted for display."""
    groups: dict[tuple[str, str, int], list[Measurement]] = defaultdict(list)
    for measurement in measurements:
        groups[measurement["dataset"], measurement["metric"], measurement["k"]].append(measurement)
    return {key: sorted(group, key=display_order) for key, group in sorted(groups.items())}


def display_order(measurement: Measurement) -> tuple:
    """Known systems in registry order, then batch, threads and sweep value."""
    known = list(SYSTEMS)
    system = measurement["system"]
    rank = known.index(system) if system in known else len(known)
    return (rank, system, measurement["batch"], measurement["threads"], measurement["param"] or 0)


def file_stem(dataset: str, metric: str, k: int) -> str:
    """A file-name-safe stem for one (dataset, metric, k) group."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{dataset}-{metric}-k{k}")
