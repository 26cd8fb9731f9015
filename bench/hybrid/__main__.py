"""python -m bench.hybrid: hybrid search (vector + BM25 text, fused) against dense-only search,
on the path users take: one embedded collection, one Collection.search call per query.

The collection: vecdb.open(folder), create_collection("npm", dim, "cosine") with the default
HNSW, every point upserted with payload {"body": text}, create_text_index("body"),
wait_indexed(), built once in its own process (phases timed, reported apart). Every round
is then a fresh process opening that database, with native thread pools limited to one
thread, timing these modes one query per call (k = 10 by default):

  dense               search(q, k=10, with_payload=False)                 the baseline
  text                search(text=t, k=10, with_payload=False)
  hybrid-rrf          search(q, text=t, k=10, fusion=vecdb.RRF(), with_payload=False)
  hybrid-dbsf         the same with vecdb.DBSF()
  hybrid-rrf-c10/c50  RRF(candidates=10) and RRF(candidates=50) (default: max(20, 2k))
  dense-k20, text-k20, dense-k50, text-k50
                      a hybrid's branches run alone (k = its candidates): the branches'
                      cost against what fusion and the hybrid path add
  ...+payload         dense, text, hybrid-rrf, hybrid-dbsf with with_payload=True

Modes alternate within each round (the order reversed at every repetition) and rounds
alternate their first order, so a slow phase of a shared machine falls on every mode.
Reported per mode: mean, p50, p99 latency (µs) and QPS of the best round, and its mean
latency over dense's in the same round (median over rounds) against the goal: a hybrid at
most --goal (1.5) times dense. An instrumented pass splits each hybrid's call into dense
branch, text branch, fusion and the rest. Agreement with the exact dense top 10 is printed
as a sanity number, not a quality measure (it favours dense by construction).

Answers are checked in every round (ids exist, at most k, hybrid hits come from its
branches, payloads are the points'); an invalid answer, or answers that change between
rounds, makes the exit status 1. Results: OUT/hybrid.json and OUT/hybrid.md.

Quick run: --points 5000 --queries 100 --rounds 1 --min-time 0.1 (seconds), or
--dataset synthetic:2000:50 (no shared data needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import vecdb

from bench.durable.__main__ import read_results, write_results
from bench.hybrid.data import load
from bench.hybrid.modes import BASELINE, Mode, modes_for, parts_of
from bench.hybrid.report import console_report, markdown
from bench.machine import machine_info
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR, REPO_ROOT
from bench.progress import progress
from bench.threads import thread_environment

FORMAT = "vecdb-hybrid-bench"
RESULTS_NAME = "hybrid"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hybrid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="npm-minilm-384",
                        help="npm-minilm-384 (../shared/data), a folder with base.npy, queries.npy, base_texts.txt "
                             "and query_texts.txt, or synthetic:POINTS[:QUERIES] (default: %(default)s)")
    parser.add_argument("--points", type=int, metavar="N", help="use only the first N points")
    parser.add_argument("--queries", type=int, metavar="N", help="use only the first N queries")
    parser.add_argument("--modes", help="comma-separated modes to time (dense is always timed: the baseline); "
                                        "default: all (see above)")
    parser.add_argument("--no-payload", action="store_true", help="leave out the with_payload=True modes")
    parser.add_argument("--seed", type=int, default=0, help="seed of a synthetic dataset (default: %(default)s)")
    parser.add_argument("-k", type=int, default=10, help="hits per query (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, each a fresh process timing every mode (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each mode per round, modes alternating (default: %(default)s)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds a run lasts at least, in whole passes over the queries (default: %(default)s)")
    parser.add_argument("--split-passes", type=int, default=1,
                        help="instrumented passes over the queries splitting each hybrid's time; 0: none "
                             "(default: %(default)s)")
    parser.add_argument("--goal", type=float, default=1.5,
                        help="a hybrid's latency / dense's latency to meet (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "hybrid", help="(default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_CACHE_DIR / "hybrid",
                        help="the collection's database, rebuilt at every run (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render OUT/hybrid.md from OUT/hybrid.json and print its table")
    args = parser.parse_args(argv)
    if min(args.rounds, args.repeats, args.k) < 1 or args.split_passes < 0 or args.min_time < 0:
        parser.error("--rounds, --repeats and -k must be at least 1, --split-passes and --min-time at least 0")
    return args


def chosen_modes(args: argparse.Namespace) -> list[Mode]:
    every = modes_for(args.k, with_payload=not args.no_payload)
    if args.modes is None:
        return every
    by_name = {mode.name: mode for mode in every}
    names = [name for name in args.modes.split(",") if name]
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; choose from {', '.join(by_name)}")
    return [mode for mode in every if mode.name == BASELINE or mode.name in names]


def run_job(request: dict[str, Any]) -> dict[str, Any]:
    """``bench.hybrid.jobs`` in a fresh process with one thread per native pool."""
    environment = dict(os.environ, **thread_environment(1))
    completed = subprocess.run([sys.executable, "-m", "bench.hybrid.jobs", json.dumps(request)], cwd=REPO_ROOT,
                               env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{request['job']} job (round {request.get('round', '-')}) failed:\n"
                           f"{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def combine(mode: Mode, rounds: list[dict[str, Any]], by_name: dict[str, Mode]) -> dict[str, Any]:
    """One mode's rounds as one row: the best round's timings (highest QPS), its latency over
    dense's paired within each round (median, range, every round), and what its branches cost
    run alone (summed, paired within each round)."""
    measured = [{**r["modes"][mode.name], "round": r["round"]} for r in rounds]
    best = max(measured, key=lambda m: m["qps"])
    best_dense = max((r["modes"][BASELINE] for r in rounds), key=lambda m: m["qps"])
    ratios = [r["modes"][mode.name]["mean_us"] / r["modes"][BASELINE]["mean_us"] for r in rounds]
    qps = [m["qps"] for m in measured]
    row = {**best, "call": mode.call_text(), "role": mode.role, "best_round": best["round"],
           "qps_min": min(qps), "qps_median": statistics.median(qps), "qps_max": max(qps),
           "ratios": ratios, "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
           "ratio_max": max(ratios), "ratio_of_best": best["mean_us"] / best_dense["mean_us"],
           "rounds": measured}
    parts = parts_of(mode, by_name)
    if parts is not None:
        sums = [r["modes"][parts[0]]["mean_us"] + r["modes"][parts[1]]["mean_us"] for r in rounds]
        excess = [r["modes"][mode.name]["mean_us"] - total for r, total in zip(rounds, sums)]
        row["parts"] = {"modes": list(parts), "sum_us_median": statistics.median(sums),
                        "excess_us_median": statistics.median(excess)}
    return row


def best_split(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each hybrid's instrumented split from the round whose instrumented call was fastest."""
    names = list(dict.fromkeys(name for r in rounds for name in r["split"]))
    return {name: min((r["split"][name] for r in rounds if name in r["split"]), key=lambda s: s["call"])
            for name in names}


def problems(modes: list[Mode], rounds: list[dict[str, Any]]) -> list[str]:
    """Invalid answers in any round; answers that changed between rounds."""
    found = []
    for mode in modes:
        for r in rounds:
            checked = r["modes"][mode.name]
            if checked["invalid"]:
                found.append(f"{mode.name}, round {r['round']}: {checked['invalid']} invalid answers "
                             f"({'; '.join(checked['invalid_examples'])})")
        if len({r["modes"][mode.name]["digest"] for r in rounds}) > 1:
            found.append(f"{mode.name}: answers changed between rounds")
    return found


def measure(args: argparse.Namespace, modes: list[Mode], command: str) -> dict[str, Any]:
    data = load(args.dataset, args.k, args.points, args.queries, args.seed)
    summary = data.summary()
    print(f"{summary['name']}: {summary['points']:,} points x {summary['dim']}, {summary['queries']:,} queries; "
          f"modes: {', '.join(mode.name for mode in modes)}", flush=True)
    del data
    if args.work_dir.exists():
        shutil.rmtree(args.work_dir)
    args.work_dir.mkdir(parents=True)
    folder = str(args.work_dir / "db")
    common = {"dataset": args.dataset, "points": args.points, "queries": args.queries, "seed": args.seed,
              "k": args.k, "folder": folder}
    print("building the collection (untimed for the searches)...", flush=True)
    build = run_job({"job": "build", **common})
    print(f"built in {build['build_seconds']:.1f} s: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds
                                                                 in build["phases"].items()), flush=True)
    rounds = [run_job({"job": "measure", "round": round_number, "modes": [mode.name for mode in modes],
                       "repeats": args.repeats, "min_seconds": args.min_time, "split_passes": args.split_passes,
                       **common})
              for round_number in progress(range(1, args.rounds + 1), "bench.hybrid rounds")]
    shutil.rmtree(args.work_dir, ignore_errors=True)  # measured, not kept
    by_name = {mode.name: mode for mode in modes}
    other_load = [r["other_load_cores"] for r in rounds]
    return {"format": FORMAT, "version": 1, "data": summary, "spec": args.dataset, "build": build,
            "modes": [mode.name for mode in modes],
            "params": {"k": args.k, "rounds": args.rounds, "repeats": args.repeats, "min_seconds": args.min_time,
                       "split_passes": args.split_passes, "goal": args.goal, "seed": args.seed, "threads": 1},
            "vecdb_version": getattr(vecdb, "__version__", "?"), "machine": machine_info(),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "other_load_cores": statistics.median(other_load), "other_load_by_round": other_load,
            "open_seconds_by_round": [r["open_seconds"] for r in rounds],
            "rows": {mode.name: combine(mode, rounds, by_name) for mode in modes},
            "split": best_split(rounds), "split_unavailable": rounds[0]["split_unavailable"],
            "problems": problems(modes, rounds)}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.report_only:
        document = read_results(args.out, RESULTS_NAME, FORMAT)
        write_results(args.out, RESULTS_NAME, document, markdown(document))
        print(console_report(document), end="")
        return
    if not hasattr(vecdb.Collection, "create_text_index") or not hasattr(vecdb, "RRF"):
        raise SystemExit("this vecdb build has no text index or fusion (Collection.create_text_index, vecdb.RRF)")
    modes = chosen_modes(args)
    document = measure(args, modes, shlex.join(["python", "-m", "bench.hybrid", *argv]))
    write_results(args.out, RESULTS_NAME, document, markdown(document))
    print(console_report(document), end="")
    if document["problems"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
