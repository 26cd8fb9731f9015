"""Planner benchmark jobs, each run in a fresh process (``python -m bench.planner.jobs JSON``)
that prints one JSON result line, so no job inherits another's caches, threads or memory.

- ``build``: create the collection (HNSW with the run's M / ef_construction / ef_search,
  optional ``mrl_dims`` and ``rotate``, optional ``bucket`` payloads with an integer
  payload index) and upsert the dataset in batches; closing writes the index snapshots.
- ``funnel``: reopen it; sweep full-dimension graph ef, funnel (dims, candidates) and
  prefix-only plans; run ``tune`` and measure the default plan it stored.
- ``filtered``: reopen it; at each selectivity, the planner's default plan against the
  forced exact scan and forced graph searches, scored against exact search among the
  allowed points; then the same graph searches without a filter, for reference.

Searches go one query per call on one thread (the runner pins native thread pools).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from bench.cpu_load import OtherCpuLoad
from bench.datasets import DatasetSpec, load_dataset
from bench.ground_truth import read_ground_truth
from bench.memory import peak_rss_bytes, reset_peak_rss
from bench.planner.buckets import bucket_filter, bucket_limit, bucket_of_rows
from bench.planner.measure import PlanCase, TimingSettings, hit_ids, measure_cases

COLLECTION = "bench"


def plan_params(plan: Any) -> Dict[str, Any]:
    """A vecdb plan as a JSON-ready dict: its kind and fields."""
    return {"kind": plan.kind, **dataclasses.asdict(plan)}


def plan_case(col: Any, kind: str, k: int, plan: Any = None, query_filter: Optional[Dict[str, Any]] = None,
              label: Optional[str] = None) -> PlanCase:
    """A case searching ``col`` with ``plan`` (None: the collection's default plan)."""
    def search(query: np.ndarray) -> np.ndarray:
        return hit_ids(col.search(query, k=k, filter=query_filter, plan=plan, with_payload=False), k)

    params = {} if plan is None else plan_params(plan)
    return PlanCase(kind=kind, label=label or repr(plan), params=params, search=search)


def run_build(spec: DatasetSpec, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """Create the collection in ``folder`` (replacing what was there) and upsert every point."""
    import vecdb

    dataset = load_dataset(spec)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    buckets = bucket_of_rows(dataset.n_base, params["seed"]) if params["buckets"] else None
    options: Dict[str, Any] = {"rotate": params["rotate"]}
    if params["mrl_dims"]:
        options["mrl_dims"] = params["mrl_dims"]
    reset_peak_rss()
    load = OtherCpuLoad()
    start = time.perf_counter()
    with vecdb.open(folder) as db:
        col = db.create_collection(
            COLLECTION, dim=dataset.dim, metric=dataset.metric,
            index=vecdb.HNSW(M=params["M"], ef_construction=params["ef_construction"], ef_search=params["ef_search"]),
            **options)
        if buckets is not None:
            col.create_payload_index("bucket", "integer")
        for first in range(0, dataset.n_base, params["batch"]):
            rows = range(first, min(first + params["batch"], dataset.n_base))
            payloads = None if buckets is None else [{"bucket": int(buckets[row])} for row in rows]
            col.upsert(ids=list(rows), vectors=dataset.base[rows.start:rows.stop], payloads=payloads)
        col.wait_indexed()  # the stats (index memory) of the whole graph, not of what was indexed so far
        stats = col.stats()
    seconds = time.perf_counter() - start
    return {"job": "build", "points": dataset.n_base, "seconds": seconds, "points_per_second": dataset.n_base / seconds,
            "peak_rss_mb": peak_rss_bytes() / 2**20, "other_load": load.cores(), "stats": stats}


def _timing(params: Dict[str, Any]) -> TimingSettings:
    return TimingSettings(rounds=params["rounds"], min_seconds=params["min_seconds"], repeats=params["repeats"])


def run_funnel(spec: DatasetSpec, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """Graph, funnel and prefix sweeps, then ``tune`` and its default plan, on the built collection."""
    import vecdb
    from vecdb import plans

    dataset = load_dataset(spec)
    k = params["k"]
    true_ids = read_ground_truth(Path(params["ground_truth"])).ids[:, :k]
    queries = dataset.queries
    tune_queries: Any = params["tune_queries"]
    if params.get("tune_on", "stored") == "queries":  # tune on one half of the queries, measure on the other
        half = len(queries) // 2
        tune_queries, queries, true_ids = queries[:half], queries[half:], true_ids[half:]
    with vecdb.open(folder) as db:
        col = db.get_collection(COLLECTION)
        stats = col.stats()
        dims = list(stats["mrl"]["dims"])
        untuned = col.explain(queries[0], k=k).plan
        start = time.perf_counter()
        report = col.tune(target_recall=params["target_recall"], k=k, queries=tune_queries, seed=params["seed"])
        tune_seconds = time.perf_counter() - start
        tuned = col.explain(queries[0], k=k).plan
        cases = [plan_case(col, "graph", k, plans.Graph(ef=ef)) for ef in params["ef"]]
        cases += [plan_case(col, "funnel", k, plans.Funnel(dims=d, candidates=c))
                  for d in dims for c in params["candidates"]]
        cases += [plan_case(col, "prefix", k, plans.Prefix(dims=d)) for d in dims]
        cases += [plan_case(col, "default", k, untuned), plan_case(col, "tuned", k, None, label=repr(tuned))]
        rows = measure_cases(cases, queries, true_ids, dataset.base, dataset.metric, _timing(params))
    tune = {"tuned_on": params.get("tune_on", "stored"), "plan": plan_params(report.plan), "label": repr(report.plan), "recall": report.recall,
            "held_out_recall": report.held_out_recall, "seconds": tune_seconds, "trials": report.trials}
    return {"job": "funnel", "stats": stats, "tune": tune, "rows": rows}


def run_filtered(spec: DatasetSpec, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """At each selectivity: the planner's default plan, a forced scan and forced graph searches."""
    import vecdb
    from vecdb import plans

    dataset = load_dataset(spec)
    k = params["k"]
    buckets = bucket_of_rows(dataset.n_base, params["seed"])
    results: List[Dict[str, Any]] = []
    with vecdb.open(folder, read_only=True) as db:
        col = db.get_collection(COLLECTION)
        for percent, truth_path in zip(params["selectivities"], params["ground_truth"]):
            limit = bucket_limit(percent)
            allowed_rows = np.flatnonzero(buckets < limit)
            true_ids = allowed_rows[read_ground_truth(Path(truth_path)).ids[:, :k]]
            query_filter = bucket_filter(limit)
            chosen = sorted({repr(col.explain(query, k=k, filter=query_filter).plan)
                             for query in dataset.queries[: params["explained_queries"]]})
            print(f"  keeps {percent}% ({len(allowed_rows)} points): planner chose {', '.join(chosen)}",
                  file=sys.stderr, flush=True)
            cases = [plan_case(col, "planner", k, None, query_filter, label="planner: " + " / ".join(chosen)),
                     plan_case(col, "scan", k, plans.Scan(), query_filter)]
            cases += [plan_case(col, "graph", k, plans.Graph(ef=ef), query_filter) for ef in params["ef"]]
            rows = measure_cases(cases, dataset.queries, true_ids, dataset.base, dataset.metric, _timing(params))
            results.append({"percent": percent, "bucket_limit": limit, "allowed": int(len(allowed_rows)),
                            "planner_plans": chosen, "rows": rows})
        # The reference the filtered goal is measured against: the same graph, no filter.
        true_ids = read_ground_truth(Path(params["unfiltered_ground_truth"])).ids[:, :k]
        unfiltered = measure_cases([plan_case(col, "graph", k, plans.Graph(ef=ef)) for ef in params["ef"]],
                                   dataset.queries, true_ids, dataset.base, dataset.metric, _timing(params))
        stats = col.stats()
    return {"job": "filtered", "stats": stats, "selectivities": results, "unfiltered": unfiltered}


JOBS = {"build": run_build, "funnel": run_funnel, "filtered": run_filtered}


def main() -> None:
    request = json.loads(sys.argv[1])
    result = JOBS[request["job"]](DatasetSpec(**request["spec"]), request["params"], Path(request["folder"]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
