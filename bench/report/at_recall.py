"""Graph systems compared at equal recall: QPS interpolated at a target recall@k.

A sweep gives QPS at a handful of recall values, different for every system; the fair
comparison is speed at the same recall. Between the two sweep values whose recall brackets
the target, log QPS is interpolated linearly in recall (QPS falls about exponentially as
recall approaches 1). A sweep that never reaches the target has no value there; one whose
smallest setting already exceeds it is reported at that setting (a lower bound, marked).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Optional

from bench.report.groups import Measurement, display_order

TARGET_RECALL = 0.95


def qps_at_recall(sweep: list[Measurement], target: float) -> tuple[Optional[float], bool]:
    """QPS at ``target`` recall for one (system, batch, threads) sweep, and whether it is
    only a lower bound (the sweep starts above the target). ``(None, False)`` if the sweep
    never reaches it."""
    points = sorted(sweep, key=lambda m: m["param"] or 0)
    if not points or max(m["recall"] for m in points) < target:
        return None, False
    if points[0]["recall"] >= target:
        return points[0]["qps"], True
    for lower, upper in zip(points, points[1:]):
        if lower["recall"] < target <= upper["recall"]:
            share = (target - lower["recall"]) / (upper["recall"] - lower["recall"])
            return math.exp(math.log(lower["qps"]) + share * (math.log(upper["qps"]) - math.log(lower["qps"]))), False
    # Recall dipped below the target again after reaching it (noise): the first crossing's
    # upper point is the conservative answer.
    return next(m["qps"] for m in points if m["recall"] >= target), False


def family(system: str) -> str:
    """Systems compared with each other: compressed (PQ codes) or full vectors."""
    return "compressed" if "pq" in system else "vectors"


def at_recall_lines(group: list[Measurement], k: int, target: float = TARGET_RECALL) -> list[str]:
    """A Markdown table of the swept (approximate) systems of one dataset group at
    ``target`` recall: one row per (system, batch, threads) with interpolated QPS, its
    ratio to the fastest vecdb system of its family (full vectors or PQ codes), build time,
    memory and index size. Empty when the group has no swept systems."""
    sweeps: dict[tuple[str, int, int], list[Measurement]] = defaultdict(list)
    for measurement in group:
        if measurement["param"] is not None:
            sweeps[measurement["system"], measurement["batch"], measurement["threads"]].append(measurement)
    if not sweeps:
        return []
    lines = [
        f"QPS at recall@{k} = {target} (interpolated between sweep values; ≥ marks a sweep whose "
        "lowest setting already exceeds it), and the QPS of the fastest vecdb system of the same "
        "family (full vectors, or PQ codes) over each system's (> 1: vecdb is faster):",
        "",
        "| system | batch | threads | QPS at recall " + f"{target} | best vecdb / system | build s | memory MB | index MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(sweeps.items(), key=lambda item: (item[0][1], item[0][2], display_order(item[1][0])))
    for (system, batch, threads), sweep in ordered:
        qps, lower_bound = qps_at_recall(sweep, target)
        ours = [qps_at_recall(other, target)[0] for (name, b, t), other in sweeps.items()
                if name.startswith("vecdb") and family(name) == family(system) and (b, t) == (batch, threads)]
        best = max((value for value in ours if value is not None), default=None)
        shown = "not reached" if qps is None else ("≥ " if lower_bound else "") + f"{qps:,.0f}"
        ratio = "" if qps is None or best is None else f"{best / qps:.2f}"
        lines.append(
            f"| {system} | {batch} | {threads} | {shown} | {ratio} | "
            f"{sweep[0]['build_seconds']:.1f} | {sweep[0]['memory_peak_mb']:.1f} | {sweep[0]['index_mb']:.1f} |"
        )
    lines.append("")
    return lines
