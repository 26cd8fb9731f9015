"""The run, step by step: data into both servers, the ef that reaches the target recall on
each, the embedded baseline, then every (clients, HTTP client, system, encoding) load run in
rounds.

Every server stays up from ingestion to the end, those not under test idle (their CPU time
is recorded apart from other load). vecdb serve is stopped once after ingestion, which writes
its index snapshot; the database is copied for the embedded baseline and for each other
worker count (`vecdb serve --workers N`, one writer per folder), and the servers started,
so every served and the embedded collection search the very same graph.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List

from bench.datasets import Dataset, DatasetSpec, load_dataset
from bench.ground_truth import load_or_compute_ground_truth
from bench.server.analysis import OTHER_LOAD_WARNING, vecdb_system
from bench.server.embedded import measure_embedded
from bench.server.ingest import ingest_chroma, ingest_vecdb, set_chroma_ef
from bench.server.load import LoadRun, answer_all, run_load
from bench.server.processes import ServerProcess, chroma_server, vecdb_server
from bench.server.recall import EfChoice, answers_recall, choose_ef
from bench.server.targets import SearchTarget, chroma_target, vecdb_target

COLLECTION = "bench"
VECDB_ENCODINGS = ("json", "msgpack")


@dataclass(frozen=True)
class BenchParams:
    """What one run measures (the JSON's ``params``)."""

    dataset: str
    k: int
    clients: List[int]
    warmup_seconds: float
    duration_seconds: float
    rounds: int
    target_recall: float
    ef_candidates: List[int]
    batch: int
    http_clients: List[str]
    workers: List[int]


def _say(text: str) -> None:
    print(text, flush=True)


def _sweep(server: ServerProcess, make_target: Callable[[int], SearchTarget], before_each: Callable[[int], None],
           dataset: Dataset, true_ids: Any, params: BenchParams) -> EfChoice:
    def recall_at(ef: int) -> float:
        before_each(ef)
        target = make_target(ef)
        answers = answer_all(server.url, target)
        recall = answers_recall(dict(enumerate(answers)), true_ids, dataset)
        _say(f"  {target.label}: ef={ef} recall@{params.k}={recall:.4f}")
        return recall

    return choose_ef(recall_at, params.ef_candidates, params.target_recall)


def _row(run: LoadRun, round_number: int, dataset: Dataset, true_ids: Any) -> Dict[str, Any]:
    """A load run as a row of the JSON's ``runs``."""
    return {"system": run.system, "encoding": run.encoding, "http_client": run.http_client, "clients": run.clients,
            "round": round_number, **asdict(run.stats), "client_cores": run.cpu.own,
            "server_cores": run.cpu.processes[0], "idle_server_cores": sum(run.cpu.processes[1:]),
            "other_load": run.cpu.other, "recall": answers_recall(run.answers, true_ids, dataset),
            "recall_queries": len(run.answers)}


def _progress(label: str, row: Dict[str, Any]) -> str:
    warning = f"  (other load above {OTHER_LOAD_WARNING}: disturbed)" if row["other_load"] > OTHER_LOAD_WARNING else ""
    return (f"  {label:14s} {row['http_client']:5s} clients={row['clients']:<3d} qps={row['qps']:8.1f} "
            f"p50={row['latency_ms_p50']:7.2f} ms p95={row['latency_ms_p95']:7.2f} p99={row['latency_ms_p99']:7.2f} "
            f"errors={row['errors']} cores: client {row['client_cores']:.2f} server {row['server_cores']:.2f} "
            f"idle server {row['idle_server_cores']:.2f} other {row['other_load']:.2f}{warning}")


def _load_runs(params: BenchParams, targets: Dict[str, SearchTarget], servers: Dict[str, ServerProcess],
               dataset: Dataset, true_ids: Any) -> List[Dict[str, Any]]:
    """Every (clients, HTTP client, target) job once per round; even rounds run the jobs in
    reverse order."""
    jobs = [(clients, http_client, label) for clients in params.clients for http_client in params.http_clients
            for label in targets]
    rows = []
    for round_number in range(1, params.rounds + 1):
        _say(f"round {round_number}/{params.rounds}")
        for clients, http_client, label in jobs if round_number % 2 else jobs[::-1]:
            target = targets[label]
            server = servers[target.system]
            idle = [other.pid for other in servers.values() if other is not server]
            run = run_load(server.url, target, http_client, clients, params.warmup_seconds, params.duration_seconds,
                           server.pid, idle)
            rows.append(_row(run, round_number, dataset, true_ids))
            _say(_progress(label, rows[-1]))
    return rows


def run_benchmark(params: BenchParams, work_dir: Path, cache_dir: Path) -> Dict[str, Any]:
    """Run everything; the results document without machine and command (the caller adds them)."""
    dataset = load_dataset(DatasetSpec(text=params.dataset))
    truth, _ = load_or_compute_ground_truth(dataset, params.k, cache_dir)
    true_ids = truth.ids[:, :params.k]
    _say(f"{dataset.name}: {dataset.n_base:,} x {dataset.dim} {dataset.metric}, {dataset.n_queries} queries")
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch_name, ExitStack() as running:
        scratch = Path(scratch_name)
        vecdb = running.enter_context(vecdb_server(scratch / "vecdb", scratch / "vecdb.log"))
        vecdb_ingest = ingest_vecdb(vecdb, COLLECTION, dataset.base, dataset.metric, params.batch)
        _say(f"vecdb serve: {vecdb_ingest.points:,} points upserted in {vecdb_ingest.seconds:.1f} s")
        vecdb.stop()
        shutil.copytree(scratch / "vecdb", scratch / "vecdb-embedded")
        vecdb.start()
        chroma = running.enter_context(chroma_server(scratch / "chroma", scratch / "chroma.log"))
        chroma_ingest = ingest_chroma(chroma, COLLECTION, dataset.base, dataset.metric, params.batch,
                                      ef_search=min(params.ef_candidates))
        _say(f"chroma run: {chroma_ingest.points:,} points added in {chroma_ingest.seconds:.1f} s")

        _say(f"choosing ef for recall@{params.k} >= {params.target_recall}")
        vecdb_ef = _sweep(vecdb, lambda ef: vecdb_target(COLLECTION, dataset.queries, params.k, ef, "json"),
                          lambda ef: None, dataset, true_ids, params)
        chroma_ef = _sweep(chroma, lambda ef: chroma_target(chroma_ingest.collection_id, dataset.queries, params.k),
                           lambda ef: set_chroma_ef(chroma, COLLECTION, ef), dataset, true_ids, params)

        embedded = measure_embedded(scratch / "vecdb-embedded", COLLECTION, dataset, params.k, vecdb_ef.ef,
                                    params.warmup_seconds, params.duration_seconds)
        _say(f"embedded: p50={embedded.stats.latency_ms_p50:.3f} ms mean={embedded.stats.latency_ms_mean:.3f} ms "
             f"({embedded.stats.qps:.0f} searches/s, index from {embedded.index_source})")

        servers = {vecdb_system(1): vecdb, "chroma": chroma}
        for workers in params.workers:
            if workers > 1:
                folder = scratch / f"vecdb-x{workers}"
                shutil.copytree(scratch / "vecdb-embedded", folder)
                servers[vecdb_system(workers)] = running.enter_context(
                    vecdb_server(folder, scratch / f"{folder.name}.log", workers))
        targets = {}
        for system in map(vecdb_system, params.workers):
            for encoding in VECDB_ENCODINGS:
                target = replace(vecdb_target(COLLECTION, dataset.queries, params.k, vecdb_ef.ef, encoding),
                                 system=system)
                targets[target.label] = target
        targets["chroma json"] = chroma_target(chroma_ingest.collection_id, dataset.queries, params.k)
        runs = _load_runs(params, targets, servers, dataset, true_ids)
    return {
        "dataset": {"name": dataset.name, "n_base": dataset.n_base, "dim": dataset.dim, "metric": dataset.metric,
                    "n_queries": dataset.n_queries},
        "params": asdict(params),
        "ground_truth": truth.metadata,
        "ingest": {"vecdb": asdict(vecdb_ingest), "chroma": asdict(chroma_ingest)},
        "ef": {"vecdb": asdict(vecdb_ef), "chroma": asdict(chroma_ef)},
        "embedded": {"ef": vecdb_ef.ef, **asdict(embedded.stats), "other_load": embedded.other_load,
                     "index_source": embedded.index_source,
                     "recall": answers_recall(embedded.answers, true_ids, dataset)},
        "runs": runs,
    }

