"""The durable benchmark's Markdown report."""

from __future__ import annotations

from typing import Any, Dict, List


def _best(results: List[Dict[str, Any]], job: str, system: str, key: str, lowest: bool) -> Dict[str, Any] | None:
    rows = [r for r in results if r["job"] == job and r["system"] == system]
    return (min if lowest else max)(rows, key=lambda r: r[key]) if rows else None


def markdown(document: Dict[str, Any]) -> str:
    results, params = document["results"], document["params"]
    machine = document["machine"]
    lines = [
        "# vecdb durable-collection benchmark", "",
        f"Dataset {document['dataset']}; HNSW M={params['M']}, ef_construction={params['ef_construction']} "
        f"for every system; upserts of {params['batch']} points with a payload each. "
        f"Measured {document['measured_at']} on {machine.get('cpu_model', 'this machine')} "
        f"({machine.get('usable_cores', '?')} usable cores). Command: `{document['command']}`", "",
        "## Ingest (best round; every system on all cores)", "",
        "| system | points/s | seconds | vecdb / system | disk MB | peak RSS MB | other load | rounds (points/s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ours = _best(results, "ingest", "vecdb", "points_per_second", lowest=False)
    for system in ("vecdb", "vecdb-native", "chroma"):
        best = _best(results, "ingest", system, "points_per_second", lowest=False)
        if best is None:
            continue
        rounds = ", ".join(f"{r['points_per_second']:,.0f}" for r in results
                           if r["job"] == "ingest" and r["system"] == system)
        ratio = f"{ours['points_per_second'] / best['points_per_second']:.2f}" if ours else ""
        lines.append(f"| {system} | {best['points_per_second']:,.0f} | {best['seconds']:.1f} | {ratio} | "
                     f"{best['disk_mb']:.0f} | {best['peak_rss_mb']:.0f} | {best['other_load']:.2f} | {rounds} |")
    lines += ["", "vecdb includes closing the database (the index snapshot is written then); vecdb-native is "
              "`HNSWIndex.add` in memory only, the cost durability is measured against.", "",
              "## Reopen and first query (fresh process, best round)", "",
              "| system | open s | first query s | total s | index from |", "|---|---|---|---|---|"]
    for system in ("vecdb", "chroma"):
        best = _best(results, "reopen", system, "total_seconds", lowest=True)
        if best is not None:
            lines.append(f"| {system} | {best['open_seconds']:.3f} | {best['first_query_seconds']:.4f} | "
                         f"{best['total_seconds']:.3f} | {best['index_source']} |")
    filtered = [r for r in results if r["job"] == "filtered"]
    if filtered:
        lines += ["", "## Filtered search (vecdb, one query per call, one process; payload index on `bucket`)", "",
                  "| filter keeps | ef | recall@10 | QPS | other load |", "|---|---|---|---|---|"]
        for row in filtered[0]["rows"]:
            lines.append(f"| {row['selectivity_percent']}% | {row['ef']} | {row['recall']:.4f} | "
                         f"{row['qps']:,.0f} | {row['other_load']:.2f} |")
    return "\n".join(lines) + "\n"
