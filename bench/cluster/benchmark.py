"""One dataset, step by step: exact neighbours, the embedded baseline filled (ingest timed),
the search ef chosen on it, one cluster folder per shard count filled the same way, each
target's recall at that ef, then every measurement of every target in rounds.

A target is opened for its measurements and closed after them (bench.cluster.targets says
why), so each round measures them all within minutes of each other (odd rounds in build
order, even rounds reversed: bench.rounds) with only the one under test running. Their
folders live in a temporary folder under the work dir, removed at the end.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from bench.cluster.analysis import MODES
from bench.cluster.clients import ClientRun, run_clients
from bench.cluster.ray_floor import echo_actor, time_round_trip
from bench.cluster.targets import IndexSettings, Target, build_cluster, build_embedded, opened, reuse_cluster
from bench.datasets import Dataset, DatasetSpec, load_dataset
from bench.ground_truth import load_or_compute_ground_truth
from bench.rounds import round_order
from bench.server.recall import EfChoice, answers_recall, choose_ef

Row = Dict[str, Any]


@dataclass(frozen=True)
class BenchParams:
    """What one run measures (the JSON's ``params``)."""

    datasets: List[str]
    shards: List[int]
    replicas: List[int]
    k: int
    target_recall: float
    ef_candidates: List[int]
    queries: Optional[int]
    batch_queries: int
    clients: int
    warmup_seconds: float
    duration_seconds: float
    rounds: int
    ingest_batch: int
    hnsw_m: int
    ef_construction: int


def _say(text: str) -> None:
    print(text, flush=True)


def answers(collection: Any, queries: np.ndarray, k: int, ef: int, batch: int) -> Dict[int, List[int]]:
    """Query row -> the ids ``collection`` returns for it, searched ``batch`` queries per call."""
    found: Dict[int, List[int]] = {}
    for first in range(0, len(queries), batch):
        rows = collection.search(queries[first:first + batch], k=k, ef=ef, with_payload=False)
        for offset, hits in enumerate(rows):
            found[first + offset] = [hit.id for hit in hits]
    return found


def _choose_search_ef(embedded: Target, dataset: Dataset, true_ids: np.ndarray, params: BenchParams) -> EfChoice:
    with opened(embedded) as collection:
        def recall_at(ef: int) -> float:
            recall = answers_recall(answers(collection, dataset.queries, params.k, ef, params.batch_queries),
                                    true_ids, dataset)
            _say(f"  embedded: ef={ef} recall@{params.k}={recall:.4f}")
            return recall

        return choose_ef(recall_at, params.ef_candidates, params.target_recall)


def _measure(collection: Any, mode: str, queries: np.ndarray, ef: int, params: BenchParams) -> ClientRun:
    """One measurement of ``collection``: ``single`` and ``concurrent`` send one query (a 1-D
    vector) per call, from one client and from ``params.clients``; ``batch`` sends
    consecutive blocks of ``params.batch_queries`` queries from one client."""
    k = params.k
    if mode == "batch":
        size = params.batch_queries
        blocks = [queries[first:first + size] for first in range(0, len(queries) - size + 1, size)]
        return run_clients(lambda item: collection.search(blocks[item], k=k, ef=ef, with_payload=False),
                           len(blocks), 1, params.warmup_seconds, params.duration_seconds)
    clients = params.clients if mode == "concurrent" else 1
    return run_clients(lambda item: collection.search(queries[item], k=k, ef=ef, with_payload=False),
                       len(queries), clients, params.warmup_seconds, params.duration_seconds)


def _row(target: Target, mode: str, round_number: int, run: ClientRun, params: BenchParams) -> Row:
    """A measurement as a row of the JSON's ``runs``: latencies are per call, ``qps`` counts
    queries (a batch call answers ``batch_queries``), ``calls`` the calls that ended in the
    window."""
    per_call = params.batch_queries if mode == "batch" else 1
    stats = asdict(run.stats)
    calls_per_second = stats.pop("qps")
    return {"target": target.label, "mode": mode, "round": round_number,
            "clients": params.clients if mode == "concurrent" else 1, "queries_per_call": per_call,
            "calls": stats.pop("requests"), **stats, "qps": calls_per_second * per_call,
            "driver_cores": run.driver_cores, "ray_cores": run.ray_cores, "other_cores": run.other_cores}


def _progress(row: Row) -> str:
    return (f"  {row['target']:22s} {row['mode']:10s} qps={row['qps']:9.1f} p50={row['latency_ms_p50']:8.3f} ms "
            f"p99={row['latency_ms_p99']:8.3f} ms cores: driver {row['driver_cores']:.2f} ray {row['ray_cores']:.2f} "
            f"other {row['other_cores']:.2f}")


def _measure_rounds(targets: List[Target], queries: np.ndarray, ef: int, params: BenchParams,
                    echo: object) -> Tuple[List[Row], List[Row]]:
    """Every target in every mode, round after round; and Ray's own round trip at the start
    of each round."""
    rows, floor = [], []
    for round_number in range(1, params.rounds + 1):
        _say(f"round {round_number}/{params.rounds}")
        trip = time_round_trip(echo, params.warmup_seconds, params.duration_seconds)
        floor.append({"round": round_number, "calls": trip.stats.requests, "latency_ms_p50": trip.stats.latency_ms_p50,
                      "latency_ms_p99": trip.stats.latency_ms_p99})
        _say(f"  Ray round trip (echo actor): p50={trip.stats.latency_ms_p50:.3f} ms "
             f"p99={trip.stats.latency_ms_p99:.3f} ms")
        for target in round_order(targets, round_number):
            with opened(target) as collection:
                for mode in MODES:
                    run = _measure(collection, mode, queries, ef, params)
                    rows.append(_row(target, mode, round_number, run, params))
                    _say(_progress(rows[-1]))
    return rows, floor


def _described(target: Target, recall: float, queries: int) -> Row:
    ingest = None if target.ingest is None else {**asdict(target.ingest),
                                                  "points_per_second": target.ingest.points_per_second}
    return {"label": target.label, "shards": target.shards, "replicas": target.replicas, "ingest": ingest,
            "recall": recall, "recall_queries": queries}


def _build(scratch: Path, dataset: Dataset, settings: IndexSettings, params: BenchParams) -> List[Target]:
    """One cluster folder per shard count, filled with the fewest replicas asked for; the
    other replica counts reopen it."""
    targets = []
    for shards in params.shards:
        replicas = sorted(params.replicas)
        built = build_cluster(scratch / f"cluster-{shards}-shards", shards, replicas[0], dataset.base, dataset.metric,
                              settings, params.ingest_batch)
        assert built.ingest is not None
        _say(f"  {built.label}: {built.ingest.points_per_second:,.0f} points/s")
        targets += [built, *(reuse_cluster(built, more) for more in replicas[1:])]
    return targets


def run_dataset(spec_text: str, params: BenchParams, work_dir: Path, cache_dir: Path) -> Row:
    """Everything measured on one dataset (the JSON's ``datasets`` entry)."""
    started = time.perf_counter()
    dataset = load_dataset(DatasetSpec(text=spec_text, query_limit=params.queries))
    truth, _ = load_or_compute_ground_truth(dataset, params.k, cache_dir)
    true_ids = truth.ids[:, :params.k]
    _say(f"{dataset.name}: {dataset.n_base:,} x {dataset.dim} {dataset.metric}, {dataset.n_queries} queries")
    settings = IndexSettings(M=params.hnsw_m, ef_construction=params.ef_construction)
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch_name:
        scratch = Path(scratch_name)
        embedded = build_embedded(scratch / "embedded", dataset.base, dataset.metric, settings, params.ingest_batch)
        assert embedded.ingest is not None
        _say(f"  embedded: {embedded.ingest.points_per_second:,.0f} points/s")
        _say(f"choosing ef for recall@{params.k} >= {params.target_recall} on the embedded collection")
        ef = _choose_search_ef(embedded, dataset, true_ids, params)
        targets = [embedded, *_build(scratch, dataset, settings, params)]
        described = []
        for target in targets:
            with opened(target) as collection:
                recall = answers_recall(answers(collection, dataset.queries, params.k, ef.ef, params.batch_queries),
                                        true_ids, dataset)
            described.append(_described(target, recall, dataset.n_queries))
            _say(f"  {target.label}: recall@{params.k}={recall:.4f} at ef={ef.ef}")
        with echo_actor() as echo:
            runs, floor = _measure_rounds(targets, dataset.queries, ef.ef, params, echo)
    return {"dataset": {"name": dataset.name, "spec": spec_text, "n_base": dataset.n_base, "dim": dataset.dim,
                        "metric": dataset.metric, "n_queries": dataset.n_queries},
            "ground_truth": truth.metadata, "ef": asdict(ef), "targets": described, "runs": runs,
            "ray_round_trip": floor,
            "seconds": time.perf_counter() - started}
