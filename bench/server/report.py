"""The server benchmark's Markdown report."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from bench.server.analysis import CLIENT_BOUND_CORES, OTHER_LOAD_WARNING, client_counts

Document = Dict[str, Any]


def _verdict(goal: Dict[str, Any]) -> str:
    if goal["met"] is None:
        return "not measured"
    verdict = "**met**" if goal["met"] else "**not met**"
    return verdict if goal["rounds_met"] is None else f"{verdict} (met in {goal['rounds_met']} rounds)"


def _results_table(best: List[Dict[str, Any]], http_client: str) -> List[str]:
    lines = ["| system | encoding | clients | QPS | p50 ms | p95 ms | p99 ms | mean ms | recall@10 | errors | "
             "cores: client / server / idle server / other | QPS by round |", "|---" * 12 + "|"]
    rows = [row for row in best if row["http_client"] == http_client]
    for row in sorted(rows, key=lambda row: (row["clients"], not row["system"].startswith("vecdb"), row["system"],
                                             row["encoding"])):
        rounds = ", ".join(f"{qps:,.0f}" for qps in row["qps_rounds"])
        lines.append(f"| {row['system']} | {row['encoding']} | {row['clients']} | {row['qps']:,.0f} | "
                     f"{row['latency_ms_p50']:.2f} | {row['latency_ms_p95']:.2f} | {row['latency_ms_p99']:.2f} | "
                     f"{row['latency_ms_mean']:.2f} | {row['recall']:.4f} | {row['errors']} | "
                     f"{row['client_cores']:.2f} / {row['server_cores']:.2f} / {row['idle_server_cores']:.2f} / "
                     f"{row['other_load']:.2f} | {rounds} |")
    return lines


def _ratio_table(summary: Dict[str, Any], counts: List[int]) -> List[str]:
    ratios, by_round = summary["qps_ratio_vs_chroma"], summary["qps_ratio_by_round"]
    lines = ["| clients | " + " | ".join(f"{system} {encoding} via {client}" for system, client, encoding in ratios)
             + " |",
             "|---|" + "---|" * len(ratios)]
    for clients in counts:
        cells = [f"{by_clients[clients]:.2f}x ({', '.join(f'{ratio:.2f}' for ratio in by_round[line][clients])})"
                 if clients in by_clients else "—" for line, by_clients in ratios.items()]
        lines.append(f"| {clients} | " + " | ".join(cells) + " |")
    return lines


def markdown(document: Document, summary: Dict[str, Any], plot_file: str) -> str:
    """The report of ``document``; ``summary`` is bench.server.analysis.summary's for its runs."""
    params, dataset, machine = document["params"], document["dataset"], document["machine"]
    embedded = document["embedded"]
    ef, ingest = document["ef"], document["ingest"]
    best = summary["best"]
    libraries = document.get("server_libraries", {})
    versions = ", ".join(f"{name} {version}" for name, version in libraries.items())
    lines = [
        "# vecdb serve against Chroma's server: search under load", "",
        f"Dataset {dataset['name']} ({dataset['n_base']:,} x {dataset['dim']}, {dataset['metric']}, "
        f"{dataset['n_queries']:,} queries), k={params['k']}. Measured {document['measured_at']} on "
        f"{machine.get('cpu_model', 'this machine')} ({machine.get('usable_cores', '?')} usable cores, "
        f"{machine.get('memory_gib', '?')} GiB); {versions}.", "",
        f"Reproduce: `{document['command']}` (or `make bench-server`).", "",
        "## Setup", "",
        "- Servers: `vecdb serve` (FastAPI on uvicorn, default settings; **vecdb xN** is `vecdb serve --workers "
        "N`, on a copy of the same folder) and `chroma run` (Chroma's own server), each a child process on a "
        "loopback port with its own database folder, all up for the whole run (those not being measured idle). "
        "A server's cores count its reader processes too.",
        f"- Data: the same {dataset['n_base']:,} vectors, ids = row numbers, no payloads, through each system's "
        f"Python client in batches of {params['batch']:,}: `vecdb.connect(...).create_collection(...)` + `upsert` "
        f"({ingest['vecdb']['seconds']:.1f} s), `chromadb.HttpClient` + `collection.add` "
        f"({ingest['chroma']['seconds']:.1f} s). HNSW M=16, ef_construction=200 on both.",
        f"- Equal recall: each system's search ef is the smallest of {params['ef_candidates']} reaching "
        f"recall@{params['k']} >= {params['target_recall']} over all {dataset['n_queries']:,} queries (sent "
        f"over HTTP, against exact neighbours): vecdb ef={ef['vecdb']['ef']} (recall {ef['vecdb']['recall']:.4f}, "
        f"the request's `ef` field), Chroma ef_search={ef['chroma']['ef']} (recall {ef['chroma']['recall']:.4f}, "
        "a collection setting; Chroma applies a new ef_search only after a restart, so every ef tried was set "
        "with `collection.modify` and the server restarted). The recall@10 column below is recomputed from the "
        "answers each load run received.",
        f"- Load: one asyncio loop (uvloop) in the benchmark's process; each simulated client has a connection "
        f"of its own and sends one k={params['k']} search after another, cycling through the queries, for "
        f"{params['warmup_seconds']:g} s of warm-up then {params['duration_seconds']:g} s measured; requests that "
        "finished in the measured window count. Bodies are encoded before the clock starts. vecdb: "
        "`POST /v1/collections/bench/search` with `{\"vector\", \"k\", \"ef\", \"with_payload\": false}` in JSON, "
        "or MessagePack with the vector as float32 bytes; Chroma: the v2 `.../collections/{id}/query` body its "
        "HttpClient sends, `include: [\"distances\"]` (JSON is all it speaks).",
        "- Two HTTP clients send the same requests: **httpx** (`httpx.AsyncClient`, a pool with one connection per "
        "client), and **raw** (bench/server/raw_http.py: each request prepared whole and sent in one write on a "
        "keep-alive asyncio connection). httpx costs the client many times the CPU per request of the raw client "
        "(compare the client cores columns) and writes headers and body in two sends, waking the server twice: "
        "through httpx the client is a large part of what is measured, through raw the numbers are the "
        "server's. Both are reported; the goals are judged for each.",
        f"- Rounds: every (clients, HTTP client, system, encoding) job ran {params['rounds']} time(s), in reverse "
        "order on even rounds; the tables show the round with the highest QPS (noise only slows runs down) and "
        "every round's QPS.",
        "- The load generator is Python on the same machine: the **cores** column splits the CPU used during "
        "the measured window into the load generator (**client**), the server under test, the other server "
        "(idle), and **other** work on the machine (above 0.1 the run was disturbed). The generator is one "
        f"thread: at {CLIENT_BOUND_CORES} cores or more it is what limits the run. Where client and server "
        "together use the machine's cores, the numbers are a property of both, not of the server alone.",
    ]
    for http_client in params["http_clients"]:
        lines += ["", f"## Results through {http_client} (best round)", "", *_results_table(best, http_client)]
    lines += ["", f"![QPS and p99 by clients]({plot_file})", "",
              "## vecdb QPS over Chroma QPS (same HTTP client)", "",
              "Best round over best round, then in parentheses the ratio within each round (vecdb and Chroma "
              "measured minutes apart, so drift of the machine's speed between rounds cancels out).", "",
              *_ratio_table(summary, client_counts(best))]
    lines += ["", "## HTTP layer cost at 1 client", "",
              f"Embedded baseline: a copy of the served database (the same index snapshot) opened with `vecdb.open`, "
              f"`collection.search(q, k={params['k']}, ef={embedded['ef']}, with_payload=False)` one query per call "
              f"on one thread: p50 {embedded['latency_ms_p50']:.3f} ms, mean {embedded['latency_ms_mean']:.3f} ms, "
              f"p99 {embedded['latency_ms_p99']:.3f} ms ({embedded['qps']:,.0f} searches/s, recall "
              f"{embedded['recall']:.4f}, index from {embedded['index_source']}, other load "
              f"{embedded['other_load']:.2f}).", "",
              "| system | HTTP client | encoding | HTTP p50 - embedded p50 | HTTP p50 / embedded p50 | "
              "HTTP mean / embedded mean |", "|---|---|---|---|---|---|"]
    for (system, http_client, encoding), cost in summary["http_cost_at_1_client"].items():
        lines.append(f"| {system} | {http_client} | {encoding} | {cost['p50_added_ms']:+.3f} ms | {cost['p50']:.2f}x "
                     f"| {cost['mean']:.2f}x |")
    lines += ["", "## Goals", "", "| goal | system | HTTP client | vecdb encoding | measured | verdict (best rounds) |",
              "|---|---|---|---|---|---|"]
    for goal in summary["goals"]:
        lines.append(f"| {goal['goal']} | {goal['system']} | {goal['http_client']} | {goal['encoding']} | "
                     f"{goal['measured']} | {_verdict(goal)} |")
    lines += _flagged(best, lambda row: row["client_cores"] >= CLIENT_BOUND_CORES,
                      f"The load generator used {CLIENT_BOUND_CORES} cores or more (its one thread saturated) in",
                      "those rows measure the client more than the server.")
    lines += _flagged(best, lambda row: row["other_load"] > OTHER_LOAD_WARNING,
                      f"Other load was above {OTHER_LOAD_WARNING} cores during", "those rows were disturbed by other "
                      "work on the machine.")
    return "\n".join(lines) + "\n"


def _flagged(best: List[Dict[str, Any]], condition: Callable[[Dict[str, Any]], bool], opening: str,
             meaning: str) -> List[str]:
    """A paragraph naming the best-round rows that meet ``condition``, or nothing."""
    rows = [row for row in best if condition(row)]
    if not rows:
        return []
    named = ", ".join(f"{row['system']} {row['encoding']} via {row['http_client']} at {row['clients']} clients"
                      for row in rows)
    return ["", f"{opening} {named}: {meaning}"]
