"""From one dataset's measurements to the numbers the issue asks for: medians over rounds,
the driver's overhead against the embedded database, what a read replica adds at N
clients, and whether each goal is met.

Medians, not best rounds (the other benchmarks' rule): the question here is what a search
through the cluster costs over an embedded one, and both are measured in every round, a
few seconds apart. Each overhead and ratio is therefore taken within a round (drift of the
machine's speed between rounds cancels out) and its median over the rounds is reported,
beside every round's value.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable, Dict, List, Optional

from bench.cluster.targets import EMBEDDED, target_label

Row = Dict[str, Any]
DatasetResult = Dict[str, Any]

# One query per call from one client; batches of queries per call from one client; one
# query per call from several clients at once.
MODES = ("single", "batch", "concurrent")

# The goals.
HOP_GOAL_MS = 1.0
BATCH_OVERHEAD_GOAL = 0.15
REPLICA_GAIN_GOAL = 1.6
REPLICA_GAIN_SHARDS = 1
REPLICA_GAIN_CLIENTS = 8

_MEDIAN_FIELDS = ("qps", "latency_ms_p50", "latency_ms_p99", "driver_cores", "ray_cores", "other_cores")


def cluster_labels(result: DatasetResult) -> List[str]:
    """The cluster targets, in the order they were built."""
    return [target["label"] for target in result["targets"] if target["shards"] is not None]


def medians(result: DatasetResult) -> Dict[str, Dict[str, Row]]:
    """target -> mode -> the median over rounds of each of _MEDIAN_FIELDS, with ``qps_rounds``
    (every round's QPS, in round order) and ``rounds``."""
    grouped: Dict[str, Dict[str, List[Row]]] = {}
    for run in sorted(result["runs"], key=lambda run: run["round"]):
        grouped.setdefault(run["target"], {}).setdefault(run["mode"], []).append(run)
    return {target: {mode: {**{field: statistics.median(run[field] for run in runs) for field in _MEDIAN_FIELDS},
                            "qps_rounds": [run["qps"] for run in runs], "rounds": len(runs)}
                     for mode, runs in modes.items()}
            for target, modes in grouped.items()}


def per_round(result: DatasetResult, mode: str, measure: Callable[[Row, Row], float],
              reference: Callable[[str], Optional[str]]) -> Dict[str, List[float]]:
    """target -> ``measure(its row, its reference's row)`` in each round where both were
    measured in ``mode`` (round order); ``reference(target)`` names the reference, or None
    for a target that has none."""
    rounds: Dict[int, Dict[str, Row]] = {}
    for run in result["runs"]:
        if run["mode"] == mode:
            rounds.setdefault(run["round"], {})[run["target"]] = run
    values: Dict[str, List[float]] = {}
    for round_number in sorted(rounds):
        rows = rounds[round_number]
        for target, row in rows.items():
            other = reference(target)
            if other is not None and other in rows:
                values.setdefault(target, []).append(measure(row, rows[other]))
    return values


def _embedded_unless_embedded(target: str) -> Optional[str]:
    return None if target == EMBEDDED else EMBEDDED


def hop_ms(result: DatasetResult) -> Dict[str, List[float]]:
    """Per cluster target, per round: its single-search p50 minus the embedded one's (ms)."""
    return per_round(result, "single", lambda row, base: row["latency_ms_p50"] - base["latency_ms_p50"],
                     _embedded_unless_embedded)


def batch_overhead(result: DatasetResult) -> Dict[str, List[float]]:
    """Per cluster target, per round: its batch p50 over the embedded one's, minus 1."""
    return per_round(result, "batch", lambda row, base: row["latency_ms_p50"] / base["latency_ms_p50"] - 1.0,
                     _embedded_unless_embedded)


def replica_gain(result: DatasetResult) -> Dict[str, List[float]]:
    """Per cluster target with replicas, per round: its QPS with concurrent clients over
    that of the same shard count without replicas."""
    plain = {(target["shards"], target["replicas"]): target["label"] for target in result["targets"]}

    def without_replicas(label: str) -> Optional[str]:
        target = next(target for target in result["targets"] if target["label"] == label)
        if target["shards"] is None or target["replicas"] == 0:
            return None
        return plain.get((target["shards"], 0))

    return per_round(result, "concurrent", lambda row, base: row["qps"] / base["qps"], without_replicas)


def _listed(values: List[float], form: str) -> str:
    return ", ".join(form.format(value) for value in values)


def goals(result: DatasetResult, params: Dict[str, Any]) -> List[Row]:
    """Each goal of the issue on this dataset: what was measured (median over rounds, each
    round in parentheses) and whether it is met (None: not measured). ``params``: the
    run's (k, queries per batch, concurrent clients)."""
    name, clients = result["dataset"]["name"], params["clients"]
    verdicts = []
    hops = hop_ms(result)
    verdicts.append({
        "goal": f"Ray hop <= {HOP_GOAL_MS:g} ms p50 per single search (cluster p50 - embedded p50)",
        "dataset": name,
        "measured": "; ".join(f"{label}: {statistics.median(values):.2f} ms ({_listed(values, '{:.2f}')})"
                              for label, values in hops.items()),
        "met": all(statistics.median(values) <= HOP_GOAL_MS for values in hops.values()) if hops else None})
    overheads = batch_overhead(result)
    verdicts.append({
        "goal": f"overhead <= {BATCH_OVERHEAD_GOAL:.0%} on batches of {params['batch_queries']} "
                "(cluster batch p50 / embedded batch p50 - 1)",
        "dataset": name,
        "measured": "; ".join(f"{label}: {statistics.median(values):+.0%} ({_listed(values, '{:+.0%}')})"
                              for label, values in overheads.items()),
        "met": all(statistics.median(values) <= BATCH_OVERHEAD_GOAL for values in overheads.values()) if overheads else None})
    with_replica, alone = target_label(REPLICA_GAIN_SHARDS, 1), target_label(REPLICA_GAIN_SHARDS, 0)
    gain = replica_gain(result).get(with_replica)
    at = f"at {clients} clients" + ("" if clients == REPLICA_GAIN_CLIENTS else
                                    f" (the goal says {REPLICA_GAIN_CLIENTS}: this run used {clients})")
    verdicts.append({
        "goal": f"{with_replica} >= {REPLICA_GAIN_GOAL:g}x the QPS of {alone} {at}",
        "dataset": name,
        "measured": "not measured" if not gain else f"{statistics.median(gain):.2f}x ({_listed(gain, '{:.2f}')})",
        "met": None if not gain else statistics.median(gain) >= REPLICA_GAIN_GOAL})
    recalls = {target["label"]: target["recall"] for target in result["targets"]}
    embedded = recalls[EMBEDDED]
    clusters = cluster_labels(result)
    verdicts.append({
        "goal": f"merged recall@{params['k']} never below single-node (embedded) at the same ef",
        "dataset": name,
        "measured": f"embedded {embedded:.4f}; " + "; ".join(f"{label}: {recalls[label]:.4f}" for label in clusters),
        "met": all(recalls[label] >= embedded for label in clusters) if clusters else None})
    return verdicts


def summary(result: DatasetResult, params: Dict[str, Any]) -> Dict[str, Any]:
    """Everything the report shows for one dataset besides the raw runs."""
    return {"medians": medians(result), "hop_ms": hop_ms(result), "batch_overhead": batch_overhead(result),
            "replica_gain": replica_gain(result), "goals": goals(result, params)}
