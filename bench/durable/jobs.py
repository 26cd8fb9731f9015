"""Benchmark jobs, each run in a fresh process (``python -m bench.durable.jobs
JSON``) that prints one JSON result line, so no job inherits another's
caches, threads or memory.

Every system ingests the same points in the same batches: the dataset's
vectors with a small payload per point (``bucket`` = row % 100 for filters,
``group``: a short string), with HNSW M and ef_construction equal for all.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

from bench.cpu_load import OtherCpuLoad
from bench.datasets import DatasetSpec, load_dataset
from bench.memory import anonymous_rss_bytes, file_rss_bytes, peak_rss_bytes, reset_peak_rss


def payloads_for(rows: range) -> List[Dict[str, Any]]:
    return [{"bucket": row % 100, "group": f"g{row % 7}"} for row in rows]


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def ingest_vecdb(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path, flat: bool = False,
                 quantized: bool = False) -> None:
    import vecdb

    index = vecdb.Flat() if flat else vecdb.HNSW(M=params["M"], ef_construction=params["ef_construction"])
    quantization = vecdb.PQ(m=params.get("pq_m"), rerank=params.get("rerank", 100),
                            train_size=params.get("train_size", 10_000)) if quantized else None
    with vecdb.open(folder) as db:
        col = db.create_collection("bench", dim=base.shape[1], metric=metric, index=index, quantization=quantization)
        col.create_payload_index("bucket", "integer")
        for first in range(0, len(base), params["batch"]):
            rows = range(first, min(first + params["batch"], len(base)))
            col.upsert(ids=list(rows), vectors=base[first:rows.stop], payloads=payloads_for(rows))
    # Closing wrote the index snapshot: the timed work ends with everything on disk.


def ingest_native(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path) -> None:
    import vecdb

    index = vecdb.HNSWIndex(base.shape[1], metric, M=params["M"], ef_construction=params["ef_construction"])
    for first in range(0, len(base), params["batch"]):
        index.add(base[first:first + params["batch"]])


def ingest_chroma(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path) -> None:
    import chromadb

    client = chromadb.PersistentClient(path=str(folder))
    col = client.create_collection(
        "bench", embedding_function=None,
        configuration={"hnsw": {"space": metric, "max_neighbors": params["M"],
                                "ef_construction": params["ef_construction"]}},
    )
    for first in range(0, len(base), params["batch"]):
        rows = range(first, min(first + params["batch"], len(base)))
        col.add(ids=[str(row) for row in rows], embeddings=base[first:rows.stop], metadatas=payloads_for(rows))


INGEST: Dict[str, Callable[..., None]] = {
    "vecdb": ingest_vecdb, "vecdb-native": ingest_native, "chroma": ingest_chroma,
    # Product quantization (PQ codes in RAM, re-ranked with vectors read from LMDB):
    "vecdb-pq": lambda *args: ingest_vecdb(*args, quantized=True),
    "vecdb-flat-pq": lambda *args: ingest_vecdb(*args, flat=True, quantized=True),
}


def run_ingest(spec: DatasetSpec, system: str, params: Dict[str, Any], folder: Path) -> Dict[str, Any]:
    dataset = load_dataset(spec)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    reset_peak_rss()
    load = OtherCpuLoad()
    start = time.perf_counter()
    INGEST[system](dataset.base, dataset.metric, params, folder)
    seconds = time.perf_counter() - start
    return {"job": "ingest", "system": system, "points": len(dataset.base), "seconds": seconds,
            "points_per_second": len(dataset.base) / seconds, "disk_mb": folder_bytes(folder) / 2**20,
            "peak_rss_mb": peak_rss_bytes() / 2**20, "other_load": load.cores()}


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
    """Open the stored collection in this fresh process and answer one query."""
    query = load_dataset(spec).queries[0]
    start = time.perf_counter()
    if system.startswith("vecdb"):
        import vecdb

        db = vecdb.open(folder)
        col = db.get_collection("bench")
        opened = time.perf_counter()
        col.search(query, k=10)
        source = col.stats()["index_source"]
    else:
        import chromadb

        col = chromadb.PersistentClient(path=str(folder)).get_collection("bench", embedding_function=None)
        opened = time.perf_counter()
        col.query(query_embeddings=[query], n_results=10)
        source = "chroma"
    done = time.perf_counter()
    return {"job": "reopen", "system": system, "open_seconds": opened - start,
            "first_query_seconds": done - opened, "total_seconds": done - start, "index_source": source}


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


JOBS = {"ingest": run_ingest, "reopen": run_reopen, "filtered": run_filtered, "memory": run_memory}


def main() -> None:
    request = json.loads(sys.argv[1])
    spec = DatasetSpec(**request["spec"])
    result = JOBS[request["job"]](spec, request["system"], request["params"], Path(request["folder"]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
