"""python -m bench.integrity: what storage integrity costs, before and after.

Runs the same jobs against this checkout and a baseline checkout (another
vecdb tree with its native core built, e.g. the commit before storage
format 2), in alternating order, each job in a fresh process (PYTHONPATH
set to that tree), and reports the best of the rounds for each:

- ingest: durable upserts of BATCH points with a small payload each (an
  integer payload index), into a Flat collection (storage is most of the
  work there) every round, and an HNSW collection (M=16,
  ef_construction=200) in the first round (its build takes minutes; the
  later rounds search it);
- search: one query per call, k=10, with payloads, on the HNSW collection;
  also filtered (a payload-index range keeping half the points) and get()
  of 100 ids with payloads;
- reopen: open the folder, load the HNSW collection from its snapshot,
  answer one query (the page walk at open is in this figure).

    python -m bench.integrity --baseline /tmp/vecdb-before --rounds 3

The data is the npm-minilm-384 set (or --dataset synthetic:N:DIM:METRIC).
Each figure is given in wall time (points/s, queries/s, seconds) and in
the process's CPU time (microseconds per point or per call), which other
load on a shared machine disturbs less; the table gives the best round of
each and the median of the rounds' after/before ratios (each round runs
both back to back, so the ratio cancels slow phases of the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

HERE = Path(__file__).resolve()
QUERIES = 1000


def payloads_for(rows: range) -> List[Dict[str, Any]]:
    return [{"bucket": row % 100, "group": f"g{row % 7}"} for row in rows]


# ---- jobs (run in a child process whose vecdb is the tree under test) ----

def job_ingest(work: Path, folder: Path, index: str, batch: int) -> Dict[str, float]:
    import vecdb

    base = np.load(work / "base.npy")
    spec = vecdb.Flat() if index == "flat" else vecdb.HNSW(M=16, ef_construction=200)
    start, cpu = time.perf_counter(), time.process_time()
    with vecdb.open(folder) as db:
        col = db.create_collection("bench", dim=base.shape[1], metric="cosine", index=spec)
        col.create_payload_index("bucket", "integer")
        for first in range(0, len(base), batch):
            rows = range(first, min(first + batch, len(base)))
            col.upsert(list(rows), base[first:rows.stop], payloads_for(rows))
    return {f"ingest_{index}_points_per_s": len(base) / (time.perf_counter() - start),
            f"ingest_{index}_cpu_us_per_point": 1e6 * (time.process_time() - cpu) / len(base)}


def job_search(work: Path, folder: Path) -> Dict[str, float]:
    import vecdb

    queries = np.load(work / "queries.npy")[:QUERIES]
    with vecdb.open(folder) as db:
        col = db.get_collection("bench")
        results = {}
        ids = [list(range(i, i + 100)) for i in range(0, 10_000, 100)]
        for name, calls in (("search", [lambda q=q: col.search(q, k=10) for q in queries]),
                            ("filtered_search", [lambda q=q: col.search(q, k=10, filter={"bucket": {"$lt": 50}})
                                                 for q in queries]),
                            ("get_100", [lambda chunk=chunk: col.get(chunk) for chunk in ids])):
            for call in calls[:100]:  # warm up
                call()
            start, cpu = time.perf_counter(), time.process_time()
            for call in calls:
                call()
            results[f"{name}_per_s"] = len(calls) / (time.perf_counter() - start)
            results[f"{name}_cpu_us"] = 1e6 * (time.process_time() - cpu) / len(calls)
    return results


def job_reopen(work: Path, folder: Path) -> Dict[str, float]:
    query = np.load(work / "queries.npy")[0]
    import vecdb

    # The figure is opening, not importing: vecdb loads its engine on first
    # use, so reaching vecdb.open imports it here, before the clock starts.
    open_database = vecdb.open
    start, cpu = time.perf_counter(), time.process_time()
    with open_database(folder) as db:
        db.get_collection("bench").search(query, k=10)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return {"reopen_s": seconds, "reopen_cpu_s": cpu_seconds}


def run_child(tree: Path, job: str, **args: Any) -> Dict[str, float]:
    request = json.dumps({"job": job, **{key: str(value) if isinstance(value, Path) else value
                                         for key, value in args.items()}})
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, str(HERE), "--job", request], env=env, cwd=tree,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{job} in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(request: Dict[str, Any]) -> None:
    job = request.pop("job")
    work, folder = Path(request.pop("work")), Path(request.pop("folder"))
    result = {"ingest": job_ingest, "search": job_search, "reopen": job_reopen}[job](work, folder, **request)
    print(json.dumps(result))


# ---- the comparison ----

def prepare(dataset: str, work: Path) -> str:
    sys.path.insert(0, str(HERE.parent.parent))
    from bench.datasets import DatasetSpec, load_dataset, resolve_spec_text

    data = load_dataset(DatasetSpec(resolve_spec_text(dataset)))
    np.save(work / "base.npy", np.ascontiguousarray(data.base, dtype=np.float32))
    np.save(work / "queries.npy", np.ascontiguousarray(data.queries, dtype=np.float32))
    return f"{data.name}: {data.n_base:,} x {data.dim}"


def one_round(trees: Dict[str, Path], order: List[str], work: Path, batch: int,
              first: bool) -> Dict[str, Dict[str, float]]:
    results: Dict[str, Dict[str, float]] = {name: {} for name in trees}
    for name in order:
        tree = trees[name]
        for index in ("flat", "hnsw") if first else ("flat",):
            folder = work / f"{name}-{index}"
            shutil.rmtree(folder, ignore_errors=True)
            results[name].update(run_child(tree, "ingest", work=work, folder=folder, index=index, batch=batch))
        results[name].update(run_child(tree, "search", work=work, folder=work / f"{name}-hnsw"))
        results[name].update(run_child(tree, "reopen", work=work, folder=work / f"{name}-hnsw"))
        print(f"  {name}: " + ", ".join(f"{k}={v:,.4g}" for k, v in results[name].items()), flush=True)
    return results


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.integrity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="a vecdb checkout to compare with (its core built); required")
    parser.add_argument("--dataset", default="npm-minilm-384", help="dataset spec (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, in alternating order (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=1000, help="points per upsert (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        child_main(json.loads(args.job))
        return
    if args.baseline is None:
        parser.error("--baseline is required")
    trees = {"before": args.baseline.resolve(), "after": HERE.parent.parent}
    work = Path(tempfile.mkdtemp(prefix="vecdb-integrity-bench-"))
    try:
        print(f"data {prepare(args.dataset, work)}; batches of {args.batch}; {args.rounds} rounds", flush=True)
        rounds = []
        for number in range(args.rounds):
            order = ["before", "after"] if number % 2 == 0 else ["after", "before"]
            print(f"round {number + 1} ({' then '.join(order)})", flush=True)
            rounds.append(one_round(trees, order, work, args.batch, first=number == 0))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    metrics = list(rounds[0]["before"])
    print(f"\n| metric | before (best of {args.rounds}) | after (best) | best after / best before | "
          "median of the rounds' after / before |\n|---|---|---|---|---|")
    best: Dict[str, Dict[str, float]] = {}
    for metric in metrics:
        pick = max if metric.endswith("per_s") else min  # rates: the highest; times: the lowest
        runs = [r for r in rounds if metric in r["before"]]
        best[metric] = {name: pick(r[name][metric] for r in runs) for name in trees}
        ratios = sorted(r["after"][metric] / r["before"][metric] for r in runs)
        median = (ratios[len(ratios) // 2] + ratios[(len(ratios) - 1) // 2]) / 2
        print(f"| {metric} | {best[metric]['before']:,.4g} | {best[metric]['after']:,.4g} | "
              f"{best[metric]['after'] / best[metric]['before']:.3f} | {median:.3f} |")
    if args.out:
        args.out.write_text(json.dumps({"rounds": rounds, "best": best}, indent=1) + "\n")


if __name__ == "__main__":
    main()
