"""From the runs of every round to the numbers the issue asks for: the best round of each
(system, encoding, HTTP client, clients), vecdb/Chroma QPS ratios, p99 at 8 clients, the HTTP
layer's cost over embedded search, and whether each goal is met, for each load-generator
HTTP client apart (httpx costs the client more CPU than the raw client, which shifts every
number; see bench/server/raw_http.py).

Rounds follow the harness's rule (bench/README.md, "Rounds"): noise only slows a run down,
so the round with the highest QPS is the least disturbed, and its latencies are reported.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

Row = Dict[str, Any]
Key = Tuple[str, str, str, int]
# A vecdb line: (HTTP client, vecdb encoding).
Line = Tuple[str, str]

# The goals.
QPS_RATIO_GOAL = 2.0
P99_GOAL_CLIENTS = 8
P99_GOAL_MS = 25.0
HTTP_COST_GOAL = 2.0
HTTP_COST_CLIENTS = 1
CHROMA = ("chroma", "json")
# The harness warns when other work kept more than this many cores busy during a measurement.
OTHER_LOAD_WARNING = 0.1
# The load generator is one Python thread: using this much of a core, it is what limits the run.
CLIENT_BOUND_CORES = 0.9


def row_key(row: Row) -> Key:
    return row["system"], row["encoding"], row["http_client"], row["clients"]


def best_rows(runs: List[Row]) -> List[Row]:
    """One row per (system, encoding, HTTP client, clients): the round with the highest QPS,
    with ``qps_rounds`` and ``p99_rounds`` listing every round's QPS and p99, in round order."""
    grouped: Dict[Key, List[Row]] = {}
    for run in runs:
        grouped.setdefault(row_key(run), []).append(run)
    best = []
    for rounds in grouped.values():
        rounds.sort(key=lambda run: run["round"])
        top = max(rounds, key=lambda run: run["qps"])
        best.append(dict(top, qps_rounds=[run["qps"] for run in rounds],
                         p99_rounds=[run["latency_ms_p99"] for run in rounds]))
    return best


def _find(rows: List[Row], system: str, encoding: str, http_client: str, clients: int) -> Optional[Row]:
    return next((row for row in rows if row_key(row) == (system, encoding, http_client, clients)), None)


def vecdb_lines(rows: List[Row]) -> List[Line]:
    """The (HTTP client, encoding) pairs vecdb was measured with."""
    return sorted({(row["http_client"], row["encoding"]) for row in rows if row["system"] == "vecdb"})


def client_counts(rows: List[Row]) -> List[int]:
    return sorted({row["clients"] for row in rows})


def qps_ratios(rows: List[Row]) -> Dict[Line, Dict[int, float]]:
    """vecdb's QPS over Chroma's (JSON, through the same HTTP client) per vecdb line and client count."""
    ratios: Dict[Line, Dict[int, float]] = {}
    for http_client, encoding in vecdb_lines(rows):
        for clients in client_counts(rows):
            ours = _find(rows, "vecdb", encoding, http_client, clients)
            theirs = _find(rows, *CHROMA, http_client, clients)
            if ours is not None and theirs is not None and theirs["qps"] > 0:
                ratios.setdefault((http_client, encoding), {})[clients] = ours["qps"] / theirs["qps"]
    return ratios


def qps_ratios_by_round(runs: List[Row]) -> Dict[Line, Dict[int, List[float]]]:
    """The same ratios within each round (vecdb and Chroma measured minutes apart, not across
    the whole run): robust to the machine's speed drifting between rounds."""
    ratios: Dict[Line, Dict[int, List[float]]] = {}
    for round_number in sorted({run["round"] for run in runs}):
        in_round = [run for run in runs if run["round"] == round_number]
        for line, by_clients in qps_ratios(in_round).items():
            for clients, ratio in by_clients.items():
                ratios.setdefault(line, {}).setdefault(clients, []).append(ratio)
    return ratios


def http_cost(rows: List[Row], embedded: Row) -> Dict[Line, Dict[str, float]]:
    """Per vecdb line: HTTP latency at one client over embedded latency, median and mean."""
    costs = {}
    for http_client, encoding in vecdb_lines(rows):
        row = _find(rows, "vecdb", encoding, http_client, HTTP_COST_CLIENTS)
        if row is not None:
            costs[http_client, encoding] = {"p50": row["latency_ms_p50"] / embedded["latency_ms_p50"],
                                            "mean": row["latency_ms_mean"] / embedded["latency_ms_mean"]}
    return costs


def goals(runs: List[Row], embedded: Row) -> List[Dict[str, Any]]:
    """Each goal of the issue per vecdb line: what was measured and whether it is met
    (``met`` is None when the run did not measure it). Verdicts follow the best rounds; the
    ``measured`` text also gives every round's value and ``rounds_met`` says in how many
    rounds taken alone the goal was met, since a goal met in the best round only is a close
    call."""
    rows = best_rows(runs)
    verdicts = []
    ratios = qps_ratios(rows)
    costs = http_cost(rows, embedded)
    by_round = qps_ratios_by_round(runs)
    for line in vecdb_lines(rows):
        http_client, encoding = line
        where = {"http_client": http_client, "encoding": encoding}
        by_clients = ratios.get(line, {})
        round_ratios = list(zip(*by_round.get(line, {}).values()))  # one tuple of ratios per round
        verdicts.append({
            "goal": f"QPS >= {QPS_RATIO_GOAL:g}x Chroma's at equal recall, every client count", **where,
            "measured": ", ".join(f"{clients}: {ratio:.2f}x (rounds {_listed(by_round[line][clients], 'x')})"
                                  for clients, ratio in sorted(by_clients.items())),
            "met": all(ratio >= QPS_RATIO_GOAL for ratio in by_clients.values()) if by_clients else None,
            "rounds_met": _rounds_met([all(ratio >= QPS_RATIO_GOAL for ratio in one) for one in round_ratios])})
        row = _find(rows, "vecdb", encoding, http_client, P99_GOAL_CLIENTS)
        verdicts.append({
            "goal": f"p99 < {P99_GOAL_MS:g} ms with {P99_GOAL_CLIENTS} clients", **where,
            "measured": "not measured" if row is None else
            f"{row['latency_ms_p99']:.2f} ms (rounds {_listed(row['p99_rounds'], ' ms')})",
            "met": None if row is None else row["latency_ms_p99"] < P99_GOAL_MS,
            "rounds_met": None if row is None else _rounds_met([p99 < P99_GOAL_MS for p99 in row["p99_rounds"]])})
        cost = costs.get(line)
        verdicts.append({
            "goal": f"HTTP latency <= {HTTP_COST_GOAL:g}x embedded at {HTTP_COST_CLIENTS} client (p50)", **where,
            "measured": "not measured" if cost is None else f"p50 {cost['p50']:.2f}x, mean {cost['mean']:.2f}x",
            "met": None if cost is None else cost["p50"] <= HTTP_COST_GOAL, "rounds_met": None})
    return verdicts


def _rounds_met(met: List[bool]) -> Optional[str]:
    return f"{sum(met)} of {len(met)}" if met else None


def _listed(values: List[float], unit: str) -> str:
    return ", ".join(f"{value:.2f}{unit}" for value in values)


def summary(runs: List[Row], embedded: Row) -> Dict[str, Any]:
    """Everything the report shows besides the raw runs (``qps_ratio_vs_chroma``,
    ``qps_ratio_by_round`` and ``http_cost_at_1_client`` keyed by (HTTP client, encoding);
    JSON gets them as lists)."""
    rows = best_rows(runs)
    return {"best": rows, "qps_ratio_vs_chroma": qps_ratios(rows), "qps_ratio_by_round": qps_ratios_by_round(runs),
            "http_cost_at_1_client": http_cost(rows, embedded), "goals": goals(runs, embedded)}


def summary_for_json(computed: Dict[str, Any]) -> Dict[str, Any]:
    """``summary``'s result with its tuple keys spelled out (JSON keys must be strings)."""
    return dict(computed,
                qps_ratio_vs_chroma=[{"http_client": client, "encoding": encoding, "ratio_by_clients": ratios}
                                     for (client, encoding), ratios in computed["qps_ratio_vs_chroma"].items()],
                qps_ratio_by_round=[{"http_client": client, "encoding": encoding, "ratios_by_clients": ratios}
                                    for (client, encoding), ratios in computed["qps_ratio_by_round"].items()],
                http_cost_at_1_client=[{"http_client": client, "encoding": encoding, **cost}
                                       for (client, encoding), cost in computed["http_cost_at_1_client"].items()])
