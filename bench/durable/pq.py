"""python -m bench.durable.pq: collections with product quantization against the same
collection with vectors in RAM.

For each system (``vecdb``: HNSW over float vectors; ``vecdb-pq``: HNSW over PQ codes;
``vecdb-flat-pq``: a scan of PQ codes; both PQ kinds re-rank their best 100 with vectors
read from LMDB), in fresh processes: ingest the dataset, measure the memory the opened
collection takes (anonymous resident growth, i.e. the index, apart from the resident
pages of LMDB's map), reopen time, and one-query-per-call search with and without a
filter. Writes OUT/pq_collections.json and OUT/pq_collections.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

from bench.datasets import DatasetSpec, resolve_spec_text
from bench.durable.__main__ import run_job, write_results
from bench.machine import machine_info
from bench.paths import REPO_ROOT

SYSTEMS = ("vecdb", "vecdb-pq", "vecdb-flat-pq")


def parse_args(argv: List[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.durable.pq", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="npm-minilm-384", help="dataset spec (default: %(default)s)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated, from: " + ", ".join(SYSTEMS))
    parser.add_argument("--pq-m", type=int, help="bytes per code (default: dimension / 8)")
    parser.add_argument("--rerank", type=int, default=100, help="candidates re-ranked (default: %(default)s)")
    parser.add_argument("--train-size", type=int, default=10_000,
                        help="vectors before the codebooks are trained (default: %(default)s)")
    parser.add_argument("--ef-search", default="32,64,128", help="ef sweep (default: %(default)s)")
    parser.add_argument("--selectivity", default="10,100", help="filter selectivities in %% (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=1000, help="search queries (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="(default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "bench" / ".cache" / "durable-pq",
                        help="(default: %(default)s)")
    return parser.parse_args(argv)


def markdown(document: Dict[str, Any]) -> str:
    results = document["results"]
    lines = ["# vecdb collections with product quantization", "",
             f"Dataset {document['dataset']}; measured {document['measured_at']}; command: `{document['command']}`.",
             "", "| system | ingest points/s | index bytes/vector | RSS growth bytes/vector (anonymous) | "
             "LMDB map resident MB | reopen s | index from |", "|---|---|---|---|---|---|---|"]
    for system in document["systems"]:
        row = {r["job"]: r for r in results if r["system"] == system}
        lines.append(f"| {system} | {row['ingest']['points_per_second']:,.0f} | "
                     f"{row['memory']['index_bytes_per_vector']:,.0f} | {row['memory']['anonymous_bytes_per_vector']:,.0f} | "
                     f"{row['memory']['mapped_rss_mb']:.0f} | {row['reopen']['total_seconds']:.3f} | "
                     f"{row['reopen']['index_source']} |")
    lines += ["", "Search, one query per call (recall@10 against exact search among the allowed points):", "",
              "| system | filter keeps | ef | recall@10 | QPS |", "|---|---|---|---|---|"]
    for system in document["systems"]:
        for result in results:
            if result["system"] == system and result["job"] == "filtered":
                for row in result["rows"]:
                    lines.append(f"| {system} | {row['selectivity_percent']}% | {row['ef']} | {row['recall']:.4f} | "
                                 f"{row['qps']:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: List[str] | None = None) -> None:
    args = parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    spec = DatasetSpec(text=resolve_spec_text(args.dataset))
    params = {"M": 16, "ef_construction": 200, "batch": 1000, "queries": args.queries, "pq_m": args.pq_m,
              "rerank": args.rerank, "train_size": args.train_size, "ef": [int(e) for e in args.ef_search.split(",")],
              "selectivities": [int(s) for s in args.selectivity.split(",")]}
    results: List[Dict[str, Any]] = []
    for system in systems:
        folder = args.work_dir / system
        for job in ("ingest", "memory", "reopen", "filtered"):
            results.append(run_job(job, spec, system, params, folder))
    document = {"format": "vecdb-pq-collections-bench", "version": 1, "dataset": args.dataset, "params": params,
                "systems": systems, "machine": machine_info(),
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": "python -m bench.durable.pq " + " ".join(sys.argv[1:] if argv is None else argv),
                "results": results}
    write_results(args.out, "pq_collections", document, markdown(document))


if __name__ == "__main__":
    main()
