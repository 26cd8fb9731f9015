"""The cluster benchmark (bench/cluster/): target names, the closed-loop clients, the
per-round overheads and goal verdicts on made-up measurements, the process-tree CPU
accounting, and the report rendered and read back. No Ray here (the cluster itself is
tested in tests/cluster/), and no test asserts a speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from bench.cluster.__main__ import main, render
from bench.cluster.analysis import batch_overhead, goals, hop_ms, medians, replica_gain
from bench.cluster.benchmark import answers
from bench.cluster.clients import run_clients
from bench.cluster.targets import target_label, upsert_all
from bench.cpu_load import DescendantsCpu, descendant_pids

PARAMS = {"k": 10, "batch_queries": 100, "clients": 8, "ingest_batch": 2000, "hnsw_m": 16, "ef_construction": 200,
          "ef_candidates": [16, 32], "target_recall": 0.95, "warmup_seconds": 1.0, "duration_seconds": 5.0,
          "rounds": 2}


def test_target_labels():
    assert target_label(None, 0) == "embedded"
    assert target_label(1, 0) == "1 shard"
    assert target_label(4, 1) == "4 shards + 1 replica"
    assert target_label(2, 3) == "2 shards + 3 replicas"


def test_clients_all_run_and_stop_by_themselves():
    seen = []
    lock = threading.Lock()

    def call(item):
        with lock:
            seen.append((threading.get_ident(), item))

    run = run_clients(call, items=10, clients=3, warmup=0.05, duration=0.2)
    assert len({thread for thread, _ in seen}) == 3
    assert {item for _, item in seen} == set(range(10))
    assert 0 < run.stats.requests <= len(seen) and run.stats.errors == 0
    assert run.driver_cores >= 0 and run.ray_cores >= 0 and run.other_cores >= 0


def test_a_failing_call_is_raised_in_the_caller():
    def call(item):
        raise ValueError(f"no answer for {item}")

    with pytest.raises(ValueError, match="no answer"):
        run_clients(call, items=4, clients=2, warmup=0.0, duration=0.1)


class _Collection:
    """The calls the benchmark makes of a collection, over a list of rows."""

    def __init__(self):
        self.rows = {}
        self.batches = []
        self.waited_for = None  # how many rows the last wait_indexed() saw

    def upsert(self, ids, vectors):
        self.batches.append(len(ids))
        self.rows.update(zip(ids, vectors))

    def wait_indexed(self, timeout=None):
        self.waited_for = len(self.rows)
        return True

    def count(self):
        return len(self.rows)

    def search(self, queries, k, ef, with_payload):
        class Hit:
            def __init__(self, id):
                self.id = id
        return [[Hit(int(query[0])), Hit(-1)][:k] for query in queries]


def test_upserts_go_in_batches_and_every_query_is_answered():
    collection = _Collection()
    ingest = upsert_all(collection, np.zeros((2500, 4), dtype=np.float32), batch=1000)
    assert collection.batches == [1000, 1000, 500] and sorted(collection.rows) == list(range(2500))
    assert collection.waited_for == 2500  # searched once indexed: the graphs, not a backlog scan
    assert ingest.points == 2500 and ingest.points_per_second > 0
    queries = np.arange(250, dtype=np.float32).reshape(250, 1)
    assert answers(collection, queries, k=2, ef=16, batch=100) == {row: [row, -1] for row in range(250)}


def _run(target, mode, round_number, qps, p50):
    return {"target": target, "mode": mode, "round": round_number, "qps": qps, "latency_ms_p50": p50,
            "latency_ms_p99": 2 * p50, "driver_cores": 0.5, "ray_cores": 1.0, "other_cores": 0.05}


def _made_up_result():
    targets = [{"label": "embedded", "shards": None, "replicas": 0, "recall": 0.96},
               {"label": "1 shard", "shards": 1, "replicas": 0, "recall": 0.96},
               {"label": "1 shard + 1 replica", "shards": 1, "replicas": 1, "recall": 0.97}]
    for target in targets:
        target.update(ingest={"points": 1000, "seconds": 1.0, "batch": 100, "points_per_second": 1000.0},
                      recall_queries=10)
    runs = []
    for round_number, slower in ((1, 1.0), (2, 2.0)):  # round 2: the whole machine twice as slow
        runs += [_run("embedded", "single", round_number, 2000 / slower, 0.5 * slower),
                 _run("1 shard", "single", round_number, 500 / slower, 1.2 * slower),
                 _run("1 shard + 1 replica", "single", round_number, 500 / slower, 1.0 * slower),
                 _run("embedded", "batch", round_number, 10000 / slower, 10.0 * slower),
                 _run("1 shard", "batch", round_number, 9000 / slower, 11.0 * slower),
                 _run("1 shard + 1 replica", "batch", round_number, 8000 / slower, 12.0 * slower),
                 _run("embedded", "concurrent", round_number, 3000 / slower, 2.0),
                 _run("1 shard", "concurrent", round_number, 600 / slower, 10.0),
                 _run("1 shard + 1 replica", "concurrent", round_number, 1020 / slower, 6.0)]
    return {"dataset": {"name": "made-up", "spec": "made-up", "n_base": 1000, "dim": 8, "metric": "l2",
                        "n_queries": 10},
            "ef": {"ef": 32, "recall": 0.96, "sweep": [{"ef": 16, "recall": 0.9}, {"ef": 32, "recall": 0.96}]},
            "ground_truth": {}, "targets": targets, "runs": runs, "seconds": 60.0,
            "ray_round_trip": [{"round": 1, "calls": 100, "latency_ms_p50": 0.9, "latency_ms_p99": 2.0},
                               {"round": 2, "calls": 50, "latency_ms_p50": 1.1, "latency_ms_p99": 3.0}]}


def test_overheads_are_paired_within_rounds():
    result = _made_up_result()
    assert hop_ms(result) == {"1 shard": [pytest.approx(0.7), pytest.approx(1.4)],
                              "1 shard + 1 replica": [pytest.approx(0.5), pytest.approx(1.0)]}
    assert batch_overhead(result)["1 shard"] == [pytest.approx(0.1), pytest.approx(0.1)]
    assert replica_gain(result) == {"1 shard + 1 replica": [pytest.approx(1.7), pytest.approx(1.7)]}
    single = medians(result)["1 shard"]["single"]
    assert single["qps"] == pytest.approx(375) and single["qps_rounds"] == [500, 250] and single["rounds"] == 2


def test_goal_verdicts():
    verdicts = {goal["goal"].split()[0]: goal for goal in goals(_made_up_result(), PARAMS)}
    assert verdicts["Ray"]["met"] is False  # 1 shard: 0.7 and 1.4 ms, median 1.05
    assert verdicts["Ray"]["measured"] == ("1 shard: 1.05 ms (0.70, 1.40); "
                                           "1 shard + 1 replica: 0.75 ms (0.50, 1.00)")
    assert verdicts["overhead"]["met"] is False  # with the replica: +20% in both rounds
    assert verdicts["1"]["met"] is True and verdicts["1"]["measured"] == "1.70x (1.70, 1.70)"
    assert verdicts["merged"]["met"] is True
    with_fewer_clients = {goal["goal"].split()[0]: goal for goal in goals(_made_up_result(), {**PARAMS, "clients": 4})}
    assert "this run used 4" in with_fewer_clients["1"]["goal"]


def test_merged_recall_below_single_node_fails_its_goal():
    result = _made_up_result()
    result["targets"][1]["recall"] = 0.9599
    assert next(goal for goal in goals(result, PARAMS) if goal["goal"].startswith("merged"))["met"] is False


def test_processes_below_this_one_are_found_and_their_cpu_counted():
    child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 0.3\nwhile time.time() < end: pass"])
    try:
        below = DescendantsCpu()
        assert child.pid in descendant_pids(os.getpid())
        child.wait()
        assert below.cores() >= 0
    finally:
        child.kill()


def test_report_renders_and_reads_back(tmp_path):
    document = {"format": "vecdb-cluster-bench", "version": 1, "params": PARAMS, "datasets": [_made_up_result()],
                "machine": {"cpu_model": "made-up", "usable_cores": 2, "memory_gib": 4,
                            "libraries": {"vecdb-engine": "0"}},
                "ray_version": "0", "measured_at": "now", "command": "python -m bench.cluster", "seconds": 120.0}
    render(tmp_path, document)
    report = (tmp_path / "cluster.md").read_text()
    assert (tmp_path / "cluster.png").is_file()
    assert "p50 1.000 ms, p99 2.500 ms (p50 by round: 0.900, 1.100)" in report
    assert "| 1 shard | 1,000 | 0.9600 | 1.800 | 3.600 | 375 | +1.050 | 6,750 | 16.5 | 33.0 | +10% | 450 |" in report
    assert "| 1 shard + 1 replica >= 1.6x the QPS of 1 shard at 8 clients | made-up | 1.70x (1.70, 1.70) | **met** |" \
        in report
    saved = json.loads((tmp_path / "cluster.json").read_text())
    assert saved["summary"][0]["hop_ms"]["1 shard"] == [pytest.approx(0.7), pytest.approx(1.4)]
    main(["--report-only", "--out", str(tmp_path)])  # re-rendering from the JSON gives the same report
    assert (tmp_path / "cluster.md").read_text() == report
