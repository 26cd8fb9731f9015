"""Identical vectors in HNSW graphs (issue 15, item 2): recall with and without exact
repeats, and what keeping repeats as copies of one graph node costs a search.

    python -m bench.duplicates recall                       # the three cases below, ef 16 and 64
    python -m bench.duplicates speed --base-build DIR       # search QPS: this checkout vs DIR's build

``recall`` measures recall@10 (tie-aware: any of the points tied at the k-th true
distance fills the places the closer points leave; see TieAwareRecall) on each case's
data with repeats and on the same data without them, for vecdb's HNSWIndex, a default
HNSW collection (the planner's plan and a forced Graph plan), hnswlib and faiss-cpu's
IndexHNSWFlat (M=16, ef_construction=200 for all):

- ``copies-and-one``: 500 copies of one 4-d vector and one distinct point (inserted first,
  in the middle or last; l2); queries: the distinct point and the copy. Recall is the
  mean over the three positions; "distinct point first" counts the positions where a
  search for the distinct point returned it first.
- ``two-clusters``: 1,000 copies of each of two points among 1,000 distinct points of a
  32-d Gaussian mixture (l2); queries: 200 new points, the two points and 100 points
  next to them. Without repeats: one of each.
- ``minilm-30pct``: 35,000 npm-minilm-384 embeddings and 15,000 exact repeats of random
  ones, shuffled (30% repeats; cosine); queries: the dataset's 1,000 and 100 of the
  35,000 (exact matches). Without repeats: the 35,000.

``speed`` times HNSWIndex.search (one thread, ``--batch`` queries a call, fixed ``--ef``)
on npm-minilm-384 with this checkout's build and with another checkout's (``--base-build``:
a folder holding a built vecdb/, e.g. a worktree of main), plus hnswlib, in alternating
rounds in the same run (each round runs every system in a fresh process; odd rounds in
reverse order). Both vecdb builds build their graph on one thread with the same seed
(deterministic: the same graph when the data holds no repeats, as npm-minilm-384 does
not), cached in bench/.cache/duplicates/. Reported: each system's best and median round,
and the median over rounds of this build's QPS over the base build's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from bench.paths import DEFAULT_CACHE_DIR, REPO_ROOT, SHARED_DATA_DIR
from bench.recall import recall_at_k

K = 10
M = 16
EF_CONSTRUCTION = 200
MINILM = SHARED_DATA_DIR / "npm-minilm-384"

Case = Tuple[str, np.ndarray, np.ndarray, np.ndarray, str]  # name, with repeats, without, queries, metric
Search = Callable[[np.ndarray, int], np.ndarray]  # (queries, ef) -> ids (m, k), -1 padded


# ---- data ----

def copies_and_one(position: int) -> Case:
    copy, distinct = np.float32([0, 0, 0, 1]), np.float32([1, 0, 0, 0])
    repeated = np.tile(copy, (501, 1))
    repeated[position] = distinct
    without = np.vstack([distinct, copy] if position == 0 else [copy, distinct])
    return f"copies-and-one@{position}", repeated, without, np.vstack([distinct, copy]), "l2"


def two_clusters() -> Case:
    rng = np.random.default_rng(1000)
    centers = rng.standard_normal((20, 32)).astype(np.float32) * 3
    points = centers[rng.integers(0, 20, 1300)] + rng.standard_normal((1300, 32)).astype(np.float32)
    a, b, spread, near = points[0], points[1], points[2:1002], points[1002:]
    repeated = np.vstack([np.tile(a, (1000, 1)), spread, np.tile(b, (1000, 1))])[rng.permutation(3000)]
    without = np.vstack([a, spread, b])
    queries = np.vstack([near[:200], a, b, a + 0.01 * near[200:250], b + 0.01 * near[250:300]])
    return "two-clusters", repeated, without, queries.astype(np.float32), "l2"


def minilm_30pct() -> Case:
    rng = np.random.default_rng(30)
    base = np.load(MINILM / "base.npy").astype(np.float32)
    distinct = base[:35_000]
    repeated = np.vstack([distinct, distinct[rng.integers(0, len(distinct), 15_000)]])
    repeated = repeated[rng.permutation(len(repeated))]
    queries = np.vstack([np.load(MINILM / "queries.npy"), distinct[rng.integers(0, len(distinct), 100)]])
    return "minilm-30pct", repeated, distinct, queries.astype(np.float32), "cosine"


class TieAwareRecall:
    """Recall@k where points tie (copies): any of the points tied at the k-th
    true distance is a right answer for the places the closer points leave,
    and no more of them count, so ten copies returned in place of one closer
    point score 9 of 10. (bench/recall.py counts every returned tie, which
    scores that 10 of 10.) Float64 distances in vecdb's definitions."""

    def __init__(self, data: np.ndarray, queries: np.ndarray, metric: str, k: int) -> None:
        self.data, self.queries, self.metric = data.astype(np.float64), queries.astype(np.float64), metric
        if metric == "cosine":
            self.data /= np.linalg.norm(self.data, axis=1, keepdims=True)
            self.queries /= np.linalg.norm(self.queries, axis=1, keepdims=True)
        self.k = min(k, len(data))
        # Rounding of the float64 distances, and no more: exact copies tie exactly.
        self.tolerance = 1e-9 * (1 + (self.data**2).sum(axis=1).max() + (self.queries**2).sum(axis=1))
        self.kth, self.closer = np.empty(len(queries)), np.empty(len(queries), dtype=np.int64)
        for start in range(0, len(queries), 256):
            rows = slice(start, min(start + 256, len(queries)))
            d = self.distances(self.queries[rows], self.data)
            self.kth[rows] = np.partition(d, self.k - 1, axis=1)[:, self.k - 1]
            self.closer[rows] = (d < (self.kth[rows] - self.tolerance[rows])[:, None]).sum(axis=1)

    def distances(self, q: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(len(q), len(x)) distances (cosine: both already unit length)."""
        if self.metric == "l2":
            return (q**2).sum(axis=1)[:, None] - 2 * q @ x.T + (x**2).sum(axis=1)[None, :]
        return 1.0 - q @ x.T

    def __call__(self, found: np.ndarray) -> float:
        hits = 0
        for row, ids in enumerate(found[:, :self.k]):
            ids = np.unique(ids[ids >= 0])
            d = self.distances(self.queries[row:row + 1], self.data[ids])[0]
            closer = int((d < self.kth[row] - self.tolerance[row]).sum())
            tied = int((np.abs(d - self.kth[row]) <= self.tolerance[row]).sum())
            hits += closer + min(tied, self.k - int(self.closer[row]))
        return hits / (len(found) * self.k)


# ---- systems: each builds over data and returns a search function ----

def vecdb_index(data: np.ndarray, metric: str, threads: int) -> Dict[str, Search]:
    import vecdb

    index = vecdb.HNSWIndex(data.shape[1], metric, M=M, ef_construction=EF_CONSTRUCTION)
    index.add(data, threads=threads)
    return {"vecdb HNSWIndex": lambda queries, ef: index.search(queries, K, ef=ef, threads=threads)[0]}


def vecdb_collection(data: np.ndarray, metric: str, folder: Path, stack: contextlib.ExitStack) -> Dict[str, Search]:
    import vecdb

    db = stack.enter_context(vecdb.open(folder))
    col = db.create_collection("c", dim=data.shape[1], metric=metric)  # the default index: HNSW()
    for start in range(0, len(data), 10_000):
        col.upsert(list(range(start, min(start + 10_000, len(data)))), data[start:start + 10_000])
    col.wait_indexed()  # searches of the graph, not of points still waiting for the indexer

    def search(plan: Optional[object]) -> Search:
        def run(queries: np.ndarray, ef: int) -> np.ndarray:
            ids = np.full((len(queries), K), -1, dtype=np.int64)
            for row, hits in enumerate(col.search(queries, k=K, ef=ef, plan=plan, with_payload=False)):
                ids[row, :len(hits)] = [hit.id for hit in hits]
            return ids
        return run

    return {"Collection (planner)": search(None), "Collection, Graph plan": search(vecdb.plans.Graph())}


def hnswlib_index(data: np.ndarray, metric: str, threads: int) -> Dict[str, Search]:
    import hnswlib

    index = hnswlib.Index(space=metric, dim=data.shape[1])
    index.init_index(max_elements=len(data), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    index.add_items(data, np.arange(len(data)), num_threads=threads)

    def search(queries: np.ndarray, ef: int) -> np.ndarray:
        index.set_ef(ef)
        ids = np.full((len(queries), K), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            # hnswlib raises when it finds fewer than k: ask for fewer.
            for k in range(min(K, len(data)), 0, -1):
                try:
                    ids[row, :k] = index.knn_query(query, k=k, num_threads=1)[0][0]
                    break
                except RuntimeError:
                    continue
        return ids

    return {"hnswlib": search}


def faiss_index(data: np.ndarray, metric: str, threads: int) -> Dict[str, Search]:
    import faiss

    faiss.omp_set_num_threads(threads)

    def prepared(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "cosine" else x)

    index = faiss.IndexHNSWFlat(data.shape[1], M, faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(prepared(data))

    def search(queries: np.ndarray, ef: int) -> np.ndarray:
        index.hnsw.efSearch = ef
        return index.search(prepared(queries), K)[1].astype(np.int64)

    return {"faiss IndexHNSWFlat": search}


def recall_table(args: argparse.Namespace) -> List[dict]:
    cases = [copies_and_one(position) for position in (0, 250, 500)] + [two_clusters()]
    if MINILM.exists():
        cases.append(minilm_30pct())
    else:
        print(f"{MINILM} is absent: minilm-30pct skipped", file=sys.stderr)
    rows: Dict[Tuple[str, int, str], dict] = {}
    for name, repeated, without, queries, metric in cases:
        for variant, data in (("with", repeated), ("without", without)):
            recall_of = TieAwareRecall(data, queries, metric, K)
            with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
                started = time.perf_counter()
                systems = {**vecdb_index(data, metric, args.threads),
                           **vecdb_collection(data, metric, Path(folder) / "db", stack),
                           **hnswlib_index(data, metric, args.threads), **faiss_index(data, metric, args.threads)}
                print(f"{name} {variant} repeats: {len(data):,} rows, built in {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)
                for system, search in systems.items():
                    for ef in args.ef:
                        found = search(queries, ef)
                        row = rows.setdefault((name.split("@")[0], ef, system), {
                            "case": name.split("@")[0], "ef": ef, "system": system, "with": [], "without": [],
                            "distinct_first": []})
                        row[variant].append(recall_of(found))
                        if name.startswith("copies-and-one") and variant == "with":
                            row["distinct_first"].append(bool(found[0, 0] == np.flatnonzero(data[:, 0] == 1)[0]))
    table = []
    for row in rows.values():  # copies-and-one: the mean over the three positions
        table.append({**row, "with": float(np.mean(row["with"])), "without": float(np.mean(row["without"])),
                      "distinct_first": f"{sum(row['distinct_first'])}/{len(row['distinct_first'])}"
                      if row["distinct_first"] else ""})
    return table


def print_recall(table: List[dict]) -> None:
    print("| case | ef | system | recall@10 with repeats | without | with - without | distinct point first |")
    print("| --- | ---: | --- | ---: | ---: | ---: | :---: |")
    for row in table:
        print(f"| {row['case']} | {row['ef']} | {row['system']} | {row['with']:.4f} | {row['without']:.4f} "
              f"| {row['with'] - row['without']:+.4f} | {row['distinct_first']} |")


# ---- speed: one process per (system, round) ----

WORKER = r"""
import json, os, sys, time
build, system, cache, ef, batch, min_time, repeats = json.loads(sys.argv[1])
if build:
    sys.path.insert(0, build)
import numpy as np
queries = np.load(os.path.join({data!r}, "queries.npy")).astype(np.float32)
if system == "hnswlib":
    import hnswlib
    index = hnswlib.Index(space="cosine", dim=queries.shape[1])
    index.load_index(cache)
    index.set_ef(ef)
    search = lambda q: index.knn_query(q, k={k}, num_threads=1)[0]
    where = hnswlib.__file__
else:
    import vecdb
    index = vecdb.HNSWIndex.load(cache)
    search = lambda q: index.search(q, {k}, ef=ef, threads=1)[0]
    where = vecdb.__file__
chunks = [queries[i:i + batch] if batch > 1 else queries[i] for i in range(0, len(queries), batch)]
ids = np.vstack([np.atleast_2d(search(chunk)) for chunk in chunks])  # warm-up, and the recall
best = 0.0
for _ in range(repeats):
    done, started = 0, time.perf_counter()
    while True:
        for chunk in chunks:
            search(chunk)
        done += len(queries)
        elapsed = time.perf_counter() - started
        if elapsed >= min_time:
            break
    best = max(best, done / elapsed)
print(json.dumps({{"qps": best, "ids": ids.tolist(), "module": where}}))
"""

BUILDER = r"""
import json, sys
build, system, cache, threads = json.loads(sys.argv[1])
if build:
    sys.path.insert(0, build)
import numpy as np
data = np.load({base!r}).astype(np.float32)
if system == "hnswlib":
    import hnswlib
    index = hnswlib.Index(space="cosine", dim=data.shape[1])
    index.init_index(max_elements=len(data), M={m}, ef_construction={efc}, random_seed=100)
    index.add_items(data, np.arange(len(data)), num_threads=threads)
    index.save_index(cache)
    print(hnswlib.__file__)
else:
    import vecdb
    index = vecdb.HNSWIndex(data.shape[1], "cosine", M={m}, ef_construction={efc}, seed=0)
    index.add(data, threads=threads)
    index.save(cache)
    print(vecdb.__file__)
"""


def run_python(code: str, arguments: list) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)], capture_output=True, text=True,
                          env=env, cwd=tempfile.gettempdir(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def speed(args: argparse.Namespace) -> dict:
    builds = {"vecdb (this build)": str(REPO_ROOT), "vecdb (base build)": str(Path(args.base_build).resolve()),
              "hnswlib": ""}
    for label, build in builds.items():
        if build and not list((Path(build) / "vecdb").glob("_core*.so")):
            raise SystemExit(f"{label}: no built vecdb/_core*.so in {build}")
    cache_dir = DEFAULT_CACHE_DIR / "duplicates"
    cache_dir.mkdir(parents=True, exist_ok=True)
    caches = {}
    for label, build in builds.items():
        # Keyed by the build's commit: a cached graph of another build would not measure this one.
        commit = subprocess.run(["git", "-C", build, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip() if build else "hnswlib"
        caches[label] = str(cache_dir / f"{commit}-t{args.build_threads}.index")
        if args.rebuild or not Path(caches[label]).exists():
            started = time.perf_counter()
            where = run_python(BUILDER.format(base=str(MINILM / "base.npy"), m=M, efc=EF_CONSTRUCTION),
                               [build, "hnswlib" if not build else "vecdb", caches[label], args.build_threads])
            print(f"built {label} ({where}) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    base = np.load(MINILM / "base.npy").astype(np.float32)
    queries = np.load(MINILM / "queries.npy").astype(np.float32)
    truth = np.load(MINILM / "neighbors.npy")[:, :K]
    worker = WORKER.format(data=str(MINILM), k=K)
    qps: Dict[str, List[float]] = {label: [] for label in builds}
    recall: Dict[str, float] = {}
    labels = list(builds)
    for round_ in range(args.rounds):
        for label in labels if round_ % 2 == 0 else labels[::-1]:
            out = json.loads(run_python(worker, [builds[label], "hnswlib" if not builds[label] else "vecdb",
                                                 caches[label], args.ef, args.batch, args.min_time, args.repeats]))
            if builds[label] and not out["module"].startswith(builds[label]):
                raise SystemExit(f"{label} imported {out['module']}, not the build in {builds[label]}")
            qps[label].append(out["qps"])
            recall[label] = recall_at_k(np.array(out["ids"]), truth, base, queries, "cosine")
        print(f"round {round_ + 1}: " + ", ".join(f"{label} {values[-1]:,.0f}" for label, values in qps.items()),
              file=sys.stderr)
    ratios = [this / base_ for this, base_ in zip(qps["vecdb (this build)"], qps["vecdb (base build)"])]
    return {"ef": args.ef, "batch": args.batch, "rounds": args.rounds, "qps": qps, "recall": recall,
            "this_over_base_median": statistics.median(ratios), "this_over_base": ratios}


def print_speed(result: dict) -> None:
    print(f"HNSWIndex.search on npm-minilm-384, k={K}, ef={result['ef']}, {result['batch']} queries a call, "
          f"one thread, {result['rounds']} rounds")
    print("| system | QPS best round | QPS median | QPS range | recall@10 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, values in result["qps"].items():
        print(f"| {label} | {max(values):,.0f} | {statistics.median(values):,.0f} "
              f"| {min(values):,.0f}–{max(values):,.0f} | {result['recall'][label]:.4f} |")
    ratios = result["this_over_base"]
    print(f"this build / base build, per round: {', '.join(f'{r:.3f}' for r in ratios)}; "
          f"median {result['this_over_base_median']:.3f}")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.duplicates", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    recall = commands.add_parser("recall", help="recall@10 with and without exact repeats")
    recall.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64],
                        help="search beam widths, comma-separated (default 16,64)")
    recall.add_argument("--threads", type=int, default=os.cpu_count(), help="build threads (default: every core)")
    timing = commands.add_parser("speed", help="HNSWIndex.search QPS: this build vs another, and hnswlib")
    timing.add_argument("--base-build", required=True, help="a checkout whose vecdb/ holds a built _core .so")
    timing.add_argument("--ef", type=int, default=64, help="search beam width (default 64)")
    timing.add_argument("--batch", type=int, default=1000,
                        help="queries per search call (default 1000; 1: one at a time)")
    timing.add_argument("--rounds", type=int, default=8, help="alternating rounds (default 8)")
    timing.add_argument("--repeats", type=int, default=3, help="timed runs per round; the best counts (default 3)")
    timing.add_argument("--min-time", type=float, default=1.0, help="seconds per timed run (default 1)")
    timing.add_argument("--build-threads", type=int, default=1,
                        help="threads building each graph (default 1: deterministic, the same graph in both builds)")
    timing.add_argument("--rebuild", action="store_true",
                        help="build the graphs again rather than load the cached ones")
    for command in (recall, timing):
        command.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    result = recall_table(args) if args.command == "recall" else speed(args)
    (print_recall if args.command == "recall" else print_speed)(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
