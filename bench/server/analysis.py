"""From the runs of every round to the numbers the issue asks for: the best round of each
(system, encoding, HTTP client, clients), vecdb/Chroma QPS ratios, the HTTP layer's cost over
embedded search, what --workers N gains over one process, and whether each goal is met, for each load-generator
HTTP client apart (httpx costs the client more CPU than the raw client, which shifts every
number; see bench/server/raw_http.py).

Rounds follow the harness's rule (bench/README.md, "Rounds"): noise only slows a run down,
so the round with the highest QPS is the least disturbed, and its latencies are reported.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

Row = Dict[str, Any]
Key = Tuple[str, str, str, int]
# A vecdb line: (vecdb system, HTTP client, vecdb encoding). The systems are "vecdb" (vecdb
# serve, one process) and "vecdb xN" (vecdb serve --workers N).
Line = Tuple[str, str, str]

# The goals (issue 18, "The server on every core").
QPS_RATIO_GOAL = 3.0
QPS_RATIO_CLIENTS = 8
WORKERS_GOAL = 1.7
WORKERS_CLIENTS = 8
HTTP_COST_GOAL_MS = 0.3
HTTP_COST_CLIENTS = 1
VECDB = "vecdb"
CHROMA = ("chroma", "json")
# The harness warns when other work kept more than this many cores busy during a measurement.
OTHER_LOAD_WARNING = 0.1
# The load generator is one Python thread: using this much of a core, it is what limits the run.
CLIENT_BOUND_CORES = 0.9


def vecdb_system(workers: int) -> str:
    """The system name of ``vecdb serve --workers workers``."""
    return VECDB if workers == 1 else f"{VECDB} x{workers}"


def workers_of(system: str) -> int:
    return 1 if system == VECDB else int(system.rsplit("x", 1)[1])


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
    """The (system, HTTP client, encoding) triples vecdb was measured with, one worker first."""
    return sorted({(row["system"], row["http_client"], row["encoding"]) for row in rows
                   if row["system"].startswith(VECDB)}, key=lambda line: (workers_of(line[0]), line[1:]))


def client_counts(rows: List[Row]) -> List[int]:
    return sorted({row["clients"] for row in rows})


def qps_ratios(rows: List[Row]) -> Dict[Line, Dict[int, float]]:
    """vecdb's QPS over Chroma's (JSON, through the same HTTP client) per vecdb line and client count."""
    ratios: Dict[Line, Dict[int, float]] = {}
    for system, http_client, encoding in vecdb_lines(rows):
        for clients in client_counts(rows):
            ours = _find(rows, system, encoding, http_client, clients)
            theirs = _find(rows, *CHROMA, http_client, clients)
            if ours is not None and theirs is not None and theirs["qps"] > 0:
                ratios.setdefault((system, http_client, encoding), {})[clients] = ours["qps"] / theirs["qps"]
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
    """Per vecdb line at one client: what HTTP adds to the embedded search's latency (ms),
    and HTTP latency over embedded latency, median and mean."""
    costs = {}
    for system, http_client, encoding in vecdb_lines(rows):
        row = _find(rows, system, encoding, http_client, HTTP_COST_CLIENTS)
        if row is not None:
            costs[system, http_client, encoding] = {
                "p50_added_ms": row["latency_ms_p50"] - embedded["latency_ms_p50"],
                "p50": row["latency_ms_p50"] / embedded["latency_ms_p50"],
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
        system, http_client, encoding = line
        where = {"system": system, "http_client": http_client, "encoding": encoding}
        ratio = ratios.get(line, {}).get(QPS_RATIO_CLIENTS)
        in_rounds = by_round.get(line, {}).get(QPS_RATIO_CLIENTS, [])
        verdicts.append({
            "goal": f"QPS >= {QPS_RATIO_GOAL:g}x Chroma's at {QPS_RATIO_CLIENTS} clients, equal recall", **where,
            "measured": "not measured" if ratio is None else f"{ratio:.2f}x (rounds {_listed(in_rounds, 'x')})",
            "met": None if ratio is None else ratio >= QPS_RATIO_GOAL,
            "rounds_met": _rounds_met([one >= QPS_RATIO_GOAL for one in in_rounds])})
        cost = costs.get(line)
        verdicts.append({
            "goal": f"HTTP adds <= {HTTP_COST_GOAL_MS:g} ms to the embedded p50 at {HTTP_COST_CLIENTS} client",
            **where, "measured": "not measured" if cost is None else
            f"+{cost['p50_added_ms']:.3f} ms (p50 {cost['p50']:.2f}x, mean {cost['mean']:.2f}x)",
            "met": None if cost is None else cost["p50_added_ms"] <= HTTP_COST_GOAL_MS, "rounds_met": None})
        if workers_of(system) > 1:
            verdicts.append(_scaling(runs, rows, line, where))
    return verdicts


def _scaling(runs: List[Row], rows: List[Row], line: Line, where: Dict[str, Any]) -> Dict[str, Any]:
    """The goal for ``--workers N``: QPS over one process's at WORKERS_CLIENTS clients."""
    system, http_client, encoding = line
    goal = f"QPS >= {WORKERS_GOAL:g}x one process's at {WORKERS_CLIENTS} clients"
    many = _find(rows, system, encoding, http_client, WORKERS_CLIENTS)
    one = _find(rows, VECDB, encoding, http_client, WORKERS_CLIENTS)
    if many is None or one is None:
        return {"goal": goal, **where, "measured": "not measured", "met": None, "rounds_met": None}
    in_rounds = []
    for round_number in sorted({run["round"] for run in runs}):
        in_round = [run for run in runs if run["round"] == round_number]
        many_then = _find(in_round, system, encoding, http_client, WORKERS_CLIENTS)
        one_then = _find(in_round, VECDB, encoding, http_client, WORKERS_CLIENTS)
        if many_then is not None and one_then is not None:
            in_rounds.append(many_then["qps"] / one_then["qps"])
    ratio = many["qps"] / one["qps"]
    return {"goal": goal, **where, "measured": f"{ratio:.2f}x (rounds {_listed(in_rounds, 'x')})",
            "met": ratio >= WORKERS_GOAL, "rounds_met": _rounds_met([one >= WORKERS_GOAL for one in in_rounds])}


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
    def spelled(key: str, name: str) -> List[Dict[str, Any]]:
        return [{"system": system, "http_client": client, "encoding": encoding, **({name: value} if name else value)}
                for (system, client, encoding), value in computed[key].items()]

    return dict(computed, qps_ratio_vs_chroma=spelled("qps_ratio_vs_chroma", "ratio_by_clients"),
                qps_ratio_by_round=spelled("qps_ratio_by_round", "ratios_by_clients"),
                http_cost_at_1_client=spelled("http_cost_at_1_client", ""))
