"""From the runs of every round to the numbers the issue asks for: the best round of each
(system, encoding, clients), vecdb/Chroma QPS ratios, p99 at 8 clients, the HTTP layer's cost
over embedded search, and whether each goal is met.

Rounds follow the harness's rule (bench/README.md, "Rounds"): noise only slows a run down,
so the round with the highest QPS is the least disturbed, and its latencies are reported.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

Row = Dict[str, Any]
Key = Tuple[str, str, int]

# The goals.
QPS_RATIO_GOAL = 2.0
P99_GOAL_CLIENTS = 8
P99_GOAL_MS = 25.0
HTTP_COST_GOAL = 2.0
HTTP_COST_CLIENTS = 1
CHROMA = ("chroma", "json")
# The harness warns when other work kept more than this many cores busy during a measurement.
OTHER_LOAD_WARNING = 0.1


def row_key(row: Row) -> Key:
    return row["system"], row["encoding"], row["clients"]


def best_rows(runs: List[Row]) -> List[Row]:
    """One row per (system, encoding, clients): the round with the highest QPS, with
    ``qps_rounds`` listing every round's QPS in round order."""
    grouped: Dict[Key, List[Row]] = {}
    for run in runs:
        grouped.setdefault(row_key(run), []).append(run)
    best = []
    for key, rounds in grouped.items():
        rounds.sort(key=lambda run: run["round"])
        top = max(rounds, key=lambda run: run["qps"])
        best.append(dict(top, qps_rounds=[run["qps"] for run in rounds]))
    return best


def _find(rows: List[Row], system: str, encoding: str, clients: int) -> Optional[Row]:
    return next((row for row in rows if row_key(row) == (system, encoding, clients)), None)


def vecdb_encodings(rows: List[Row]) -> List[str]:
    return sorted({row["encoding"] for row in rows if row["system"] == "vecdb"})


def client_counts(rows: List[Row]) -> List[int]:
    return sorted({row["clients"] for row in rows})


def qps_ratios(rows: List[Row]) -> Dict[str, Dict[int, float]]:
    """vecdb's QPS over Chroma's (JSON) per vecdb encoding and client count."""
    ratios: Dict[str, Dict[int, float]] = {}
    for encoding in vecdb_encodings(rows):
        for clients in client_counts(rows):
            ours, theirs = _find(rows, "vecdb", encoding, clients), _find(rows, *CHROMA, clients)
            if ours is not None and theirs is not None and theirs["qps"] > 0:
                ratios.setdefault(encoding, {})[clients] = ours["qps"] / theirs["qps"]
    return ratios


def http_cost(rows: List[Row], embedded: Row) -> Dict[str, Dict[str, float]]:
    """Per vecdb encoding: HTTP latency at one client over embedded latency, median and mean."""
    costs = {}
    for encoding in vecdb_encodings(rows):
        row = _find(rows, "vecdb", encoding, HTTP_COST_CLIENTS)
        if row is not None:
            costs[encoding] = {"p50": row["latency_ms_p50"] / embedded["latency_ms_p50"],
                               "mean": row["latency_ms_mean"] / embedded["latency_ms_mean"]}
    return costs


def goals(rows: List[Row], embedded: Row) -> List[Dict[str, Any]]:
    """Each goal of the issue per vecdb encoding: what was measured and whether it is met
    (``met`` is None when the run did not measure it)."""
    verdicts = []
    ratios = qps_ratios(rows)
    costs = http_cost(rows, embedded)
    for encoding in vecdb_encodings(rows):
        by_clients = ratios.get(encoding, {})
        verdicts.append({
            "goal": f"QPS >= {QPS_RATIO_GOAL:g}x Chroma's at equal recall, every client count", "encoding": encoding,
            "measured": ", ".join(f"{clients}: {ratio:.2f}x" for clients, ratio in sorted(by_clients.items())),
            "met": all(ratio >= QPS_RATIO_GOAL for ratio in by_clients.values()) if by_clients else None})
        row = _find(rows, "vecdb", encoding, P99_GOAL_CLIENTS)
        verdicts.append({
            "goal": f"p99 < {P99_GOAL_MS:g} ms with {P99_GOAL_CLIENTS} clients", "encoding": encoding,
            "measured": "not measured" if row is None else f"{row['latency_ms_p99']:.2f} ms",
            "met": None if row is None else row["latency_ms_p99"] < P99_GOAL_MS})
        cost = costs.get(encoding)
        verdicts.append({
            "goal": f"HTTP latency <= {HTTP_COST_GOAL:g}x embedded at {HTTP_COST_CLIENTS} client (p50)",
            "encoding": encoding,
            "measured": "not measured" if cost is None else f"p50 {cost['p50']:.2f}x, mean {cost['mean']:.2f}x",
            "met": None if cost is None else cost["p50"] <= HTTP_COST_GOAL})
    return verdicts


def summary(runs: List[Row], embedded: Row) -> Dict[str, Any]:
    """Everything the report shows besides the raw runs."""
    rows = best_rows(runs)
    return {"best": rows, "qps_ratio_vs_chroma": qps_ratios(rows), "http_cost_at_1_client": http_cost(rows, embedded),
            "goals": goals(rows, embedded)}
