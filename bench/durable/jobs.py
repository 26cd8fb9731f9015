"""Benchmark jobs, each run in a fresh process (``python -m bench.durable.jobs
JSON``) that prints one JSON result line, so no job inherits another's
caches, threads or memory.

Every system ingests the same points in the same batches (``bench.durable.points``),
with HNSW M and ef_construction equal for all that build a graph; what each
database does with them is in its module in ``bench.durable.databases``.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from bench.cpu_load import OtherCpuLoad
from bench.datasets import Dataset, DatasetSpec, load_dataset
from bench.durable.databases import DATABASES
from bench.ground_truth import read_ground_truth
from bench.memory import anonymous_rss_bytes, file_rss_bytes, peak_rss_bytes, reset_peak_rss
from bench.recall import recall_at_k
from bench.server.recall import ids_matrix

# Queries answered untimed before a search setting is timed.
WARMUP_QUERIES = 20


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def import_package(system: str) -> float:
    """Import the database's Python package before a clock starts, so the clock measures the
    database rather than Python importing it (seconds for some packages); returns the
    seconds the import took in this fresh process."""
    start = time.perf_counter()
    importlib.import_module(DATABASES[system].requirement.module)
    return time.perf_counter() - start


def _fresh_ingest(spec: DatasetSpec, system: str, folder: Path) -> Dataset:
    """The dataset, an empty ``folder`` and ``system``'s package imported: before the clock starts."""
    dataset = load_dataset(spec)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    import_package(system)
    return dataset


def run_ingest(spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    dataset = _fresh_ingest(spec, system, folder)
    reset_peak_rss()
    load = OtherCpuLoad()
    start = time.perf_counter()
    milestones = DATABASES[system].ingest(dataset.base, dataset.metric, params, folder)
    seconds = time.perf_counter() - start
    points = len(dataset.base)
    reached = {f"{name}_seconds": when - start for name, when in milestones.items()}
    rates = {f"{name}_points_per_second": points / (when - start) for name, when in milestones.items()}
    return {"job": "ingest", "system": system, "points": points, "seconds": seconds,
            "points_per_second": points / seconds, **reached, **rates, "disk_bytes": folder_bytes(folder),
            "peak_rss_mb": peak_rss_bytes() / 2**20, "other_load": load.cores()}


def run_ingest_search(spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """vecdb's ingest with one thread searching all along (see ``ingest_while_searching``)."""
    from bench.durable.databases.vecdb_collection import ingest_while_searching

    dataset = _fresh_ingest(spec, system, folder)
    load = OtherCpuLoad()
    measured = ingest_while_searching(dataset.base, dataset.queries, dataset.metric, params, folder)
    return {"job": "ingest_search", "system": system, "points": len(dataset.base), **measured,
            "other_load": load.cores()}


def run_memory(spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """Memory a stored collection takes once opened and searched (fresh process): the
    anonymous resident growth (the index), and separately the LMDB map's resident pages."""
    import vecdb

    query = load_dataset(spec).queries[0]
    anonymous, mapped = anonymous_rss_bytes(), file_rss_bytes()
    with vecdb.open(folder, read_only=True) as db:
        col = db.get_collection("bench")
        col.search(query, k=10)
        stats = col.stats()
        anonymous, mapped = anonymous_rss_bytes() - anonymous, file_rss_bytes() - mapped
    points = stats["count"]
    return {"job": "memory", "system": system, "points": points, "anonymous_rss_mb": anonymous / 2**20,
            "anonymous_bytes_per_vector": anonymous / points, "mapped_rss_mb": mapped / 2**20,
            "index_bytes_per_vector": stats["index_memory_bytes"] / points, "index_source": stats["index_source"]}


def run_reopen(spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """Open the stored collection in this fresh process (default search settings) and answer
    one query; the package's import is timed apart."""
    dataset = load_dataset(spec)
    import_seconds = import_package(system)
    start = time.perf_counter()
    with DATABASES[system].open(folder, dataset.metric, {}) as collection:
        opened = time.perf_counter()
        collection.search(dataset.queries[0], 10)
        done = time.perf_counter()
        source = collection.index_source()
    return {"job": "reopen", "system": system, "import_seconds": import_seconds, "open_seconds": opened - start,
            "first_query_seconds": done - opened, "total_seconds": done - start, "index_source": source}


def run_search(spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """One setting of a database's search knob (``params["setting"]``), one query per call.

    The stored collection is opened in this fresh process with that setting, the first
    WARMUP_QUERIES queries are answered untimed (first reads of the index), then the first
    ``queries`` queries one after another, stopping early once ``search_seconds`` have passed
    (exact scans of a large collection are slow); recall@10 is over the queries answered,
    against the exact neighbours the harness caches (``bench.ground_truth``).
    """
    dataset = load_dataset(spec)
    true_ids = read_ground_truth(Path(params["ground_truth"])).ids
    queries = dataset.queries[: params["queries"]]
    k = true_ids.shape[1]
    found: List[List[int]] = []
    with DATABASES[system].open(folder, dataset.metric, params["setting"]) as collection:
        for query in queries[:WARMUP_QUERIES]:
            collection.search(query, k)
        load = OtherCpuLoad()
        start = time.perf_counter()
        for query in queries:
            found.append(collection.search(query, k))
            if time.perf_counter() - start > params["search_seconds"]:
                break
        seconds = time.perf_counter() - start
    answered = len(found)
    recall = recall_at_k(ids_matrix(found, k), true_ids[:answered], dataset.base, queries[:answered], dataset.metric)
    return {"job": "search", "system": system, "setting": params["setting"], "queries": answered,
            "recall": recall, "qps": answered / seconds, "other_load": load.cores()}


def run_filtered(spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    """Single-query search with filters keeping 1%, 10%, 50% and 100% of the points."""
    import vecdb

    dataset = load_dataset(spec)
    queries = dataset.queries[: params["queries"]]
    buckets = np.arange(len(dataset.base)) % 100
    rows = []
    with vecdb.open(folder, read_only=True) as db:
        col = db.get_collection("bench")
        for percent in params["selectivities"]:
            allowed = buckets < percent
            truth, _ = vecdb.knn(dataset.base, queries, k=10, metric=dataset.metric, allowed=allowed)
            spec_filter = None if percent >= 100 else {"bucket": {"$lt": percent}}
            for ef in params["ef"]:
                col.search(queries[0], k=10, filter=spec_filter, ef=ef)  # warm up
                load = OtherCpuLoad()
                start = time.perf_counter()
                found = [[hit.id for hit in col.search(q, k=10, filter=spec_filter, ef=ef, with_payload=False)]
                         for q in queries]
                seconds = time.perf_counter() - start
                recall = np.mean([_recall(f, t) for f, t in zip(found, truth)])
                rows.append({"selectivity_percent": percent, "ef": ef, "recall": float(recall),
                             "qps": len(queries) / seconds, "other_load": load.cores()})
    return {"job": "filtered", "system": system, "rows": rows}


def _recall(found: List[int], truth: np.ndarray) -> float:
    """Share of the true neighbours found (a filter may leave fewer than k)."""
    valid = set(truth[truth >= 0].tolist())
    return len(set(found) & valid) / len(valid) if valid else 1.0


JOBS = {"ingest": run_ingest, "ingest_search": run_ingest_search, "reopen": run_reopen, "search": run_search,
        "filtered": run_filtered, "memory": run_memory}


def main() -> None:
    request = json.loads(sys.argv[1])
    spec = DatasetSpec(**request["spec"])
    result = JOBS[request["job"]](spec, request["system"], request["params"], Path(request["folder"]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
