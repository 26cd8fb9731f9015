"""python -m bench.durable: the embedded databases a user picks from, on the same data:
vecdb's collection, Chroma (PersistentClient), Qdrant's local mode and LanceDB, beside
vecdb's native index alone.

For each database: ingest until searchable, reopen and first query, and one-query-per-call
search at the cheapest setting of its search knob reaching --target-recall (recall@10
against the harness's exact ground truth), then filtered search for vecdb. Each job runs
in a fresh process; with --rounds N every database's jobs run N times in alternating order
and the best round counts (every round is recorded). A database whose Python package is
missing is skipped with a message. Results go to OUT/durable.json and OUT/durable.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

from bench.datasets import DatasetSpec, load_dataset, resolve_spec_text
from bench.durable.databases import DATABASES, DurableDatabase
from bench.durable.report import markdown
from bench.ground_truth import load_or_compute_ground_truth
from bench.machine import machine_info
from bench.paths import DEFAULT_CACHE_DIR, REPO_ROOT

SYSTEMS = ("vecdb", "vecdb-native", "chroma", "qdrant", "lancedb")
# Neighbours per search, the k of recall@k.
K = 10


def write_results(out: Path, name: str, document: Dict[str, Any], report: str) -> None:
    """OUT/name.json (the document) and OUT/name.md (its report)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n")
    (out / f"{name}.md").write_text(report)
    print(f"wrote {out / (name + '.json')} and {out / (name + '.md')}")


def read_results(out: Path, name: str, format_name: str) -> Dict[str, Any]:
    """The document OUT/name.json holds (for re-rendering a report); exits naming the
    problem when it is missing or of another format than ``format_name``."""
    path = out / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"no {path} to render")
    document = json.loads(path.read_text())
    if document.get("format") != format_name:
        raise SystemExit(f"{path} is not a {format_name} file")
    return document


def run_job(job: str, spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    request = json.dumps({"job": job, "spec": asdict(spec), "system": system, "params": params,
                          "folder": str(folder)})
    completed = subprocess.run([sys.executable, "-m", "bench.durable.jobs", request], cwd=REPO_ROOT,
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{job} job for {system} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"  {job:8s} {system:12s} " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                  for k, v in result.items() if k not in ("job", "system", "rows")),
          flush=True)
    for row in result.get("rows", []):
        print("    " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
    return result


def skipped_for_missing_packages(systems: List[str]) -> Dict[str, str]:
    """Why each of ``systems`` whose Python package is not installed cannot run, by name."""
    return {system: f"the Python package '{DATABASES[system].requirement.pip_package}' is not installed "
                    f"({DATABASES[system].requirement.install_hint()}, or pip install -e \".[bench]\")"
            for system in systems if not DATABASES[system].requirement.is_installed()}


def search_sweep(spec: DatasetSpec, database: DurableDatabase, params: Dict[str, Any], folder: Path,
                 target_recall: float) -> List[Dict[str, Any]]:
    """One search job per setting of ``database.sweep`` (cheapest first, each in a fresh
    process), up to the first whose recall reaches ``target_recall``: every setting when none does."""
    results = []
    for setting in database.sweep:
        results.append(run_job("search", spec, database.name, dict(params, setting=setting), folder))
        if results[-1]["recall"] >= target_recall:
            break
    return results


def parse_args(argv: List[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.durable", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="npm-minilm-384", help="dataset spec (default: %(default)s)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated, from: " + ", ".join(SYSTEMS) + " (default: all)")
    parser.add_argument("--batch", type=int, default=1000, help="points per upsert (default: %(default)s)")
    parser.add_argument("--hnsw-m", type=int, default=16, help="HNSW M for every system (default: %(default)s)")
    parser.add_argument("--ef-construction", type=int, default=200, help="(default: %(default)s)")
    parser.add_argument("--ef-search", default="32,64,128", help="filtered-search ef sweep (default: %(default)s)")
    parser.add_argument("--selectivity", default="1,10,50,100",
                        help="percent of points each filter keeps (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=1000,
                        help="queries per search measurement, filtered or not (default: %(default)s)")
    parser.add_argument("--target-recall", type=float, default=0.95,
                        help="recall@10 each database's search setting must reach (default: %(default)s)")
    parser.add_argument("--search-seconds", type=float, default=30.0,
                        help="a search setting stops timing after this, short of --queries (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="ingest/reopen/search rounds (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="(default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "bench" / ".cache" / "durable",
                        help="where the databases are written (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help="ground truth cache, shared with python -m bench (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> None:
    args = parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    skipped = skipped_for_missing_packages(systems)
    for system, reason in skipped.items():
        print(f"skipping {system}: {reason}", flush=True)
    systems = [s for s in systems if s not in skipped]
    if not systems:
        raise SystemExit("no system left to run")
    spec = DatasetSpec(text=resolve_spec_text(args.dataset))
    params = {"M": args.hnsw_m, "ef_construction": args.ef_construction, "batch": args.batch,
              "queries": args.queries, "ef": [int(e) for e in args.ef_search.split(",")],
              "selectivities": [int(s) for s in args.selectivity.split(",")],
              "target_recall": args.target_recall, "search_seconds": args.search_seconds}
    if any(DATABASES[system].sweep for system in systems):
        params["ground_truth"] = str(load_or_compute_ground_truth(load_dataset(spec), K, args.cache_dir)[1])
    results: List[Dict[str, Any]] = []
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number}/{args.rounds}", flush=True)
        order = systems if round_number % 2 else systems[::-1]
        for system in order:
            database, folder = DATABASES[system], args.work_dir / system
            round_results = [run_job("ingest", spec, system, params, folder)]
            if database.open is not None:
                round_results.append(run_job("reopen", spec, system, params, folder))
            round_results += search_sweep(spec, database, params, folder, args.target_recall)
            results += [dict(r, round=round_number) for r in round_results]
    if "vecdb" in systems:
        results.append(dict(run_job("filtered", spec, "vecdb", params, args.work_dir / "vecdb"), round=1))
        results.append(dict(run_job("ingest_search", spec, "vecdb", params, args.work_dir / "vecdb-searched"),
                            round=1))
    document = {"format": "vecdb-durable-bench", "version": 2, "dataset": args.dataset, "params": params,
                "systems": systems, "skipped": skipped,
                "databases": {s: {"ingest_includes": DATABASES[s].ingest_includes, "knob": DATABASES[s].knob}
                              for s in systems},
                "machine": machine_info(), "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": "python -m bench.durable " + " ".join(sys.argv[1:] if argv is None else argv),
                "results": results}
    write_results(args.out, "durable", document, markdown(document))


if __name__ == "__main__":
    main()
