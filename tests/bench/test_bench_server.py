"""The server load benchmark (bench/server/): the load generator's QPS and percentile
arithmetic on made-up latencies, the self-stopping loop against a tiny `vecdb serve`, recall
and the ef choice, the goal verdicts, and Chroma's route when chromadb is installed. No test
asserts a speed."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import vecdb
from bench.cpu_load import process_cpu_seconds
from bench.datasets.synthetic import make_synthetic
from bench.server.__main__ import main, render
from bench.server.analysis import best_rows, goals, qps_ratios, qps_ratios_by_round
from bench.server.ingest import ingest_vecdb
from bench.server.load import HTTP_CLIENTS, answer_all, run_load, summarize
from bench.server.raw_http import encode_requests
from bench.server.processes import chroma_server, vecdb_server
from bench.server.recall import answers_recall, choose_ef, ids_matrix
from bench.server.targets import chroma_target, vecdb_target
from vecdb.wire import decode_msgpack


def test_summarize_counts_requests_that_end_inside_the_window():
    # Ten requests of 1..10 ms ending at t = 1.0, 1.1, ..., 1.9; the window is [1.0, 2.0].
    ends = 1.0 + 0.1 * np.arange(10)
    latencies = np.arange(1, 11) * 1e-3
    # Before the window (warm-up) and after it (still running when it closed): not counted.
    starts = np.concatenate([ends - latencies, [0.4, 2.05]])
    ends = np.concatenate([ends, [0.5, 2.2]])
    stats = summarize(starts, ends, window_start=1.0, window_end=2.0, errors=3)
    assert stats.requests == 10 and stats.errors == 3
    assert stats.seconds == pytest.approx(1.0) and stats.qps == pytest.approx(10.0)
    assert stats.latency_ms_mean == pytest.approx(5.5)
    assert stats.latency_ms_max == pytest.approx(10.0)
    # numpy's linear interpolation between closest ranks: 1..10 ms -> p50 5.5, p95 9.55, p99 9.91.
    assert stats.latency_ms_p50 == pytest.approx(5.5)
    assert stats.latency_ms_p95 == pytest.approx(9.55)
    assert stats.latency_ms_p99 == pytest.approx(9.91)


def test_summarize_with_nothing_in_the_window():
    stats = summarize([0.0], [0.5], window_start=1.0, window_end=3.0)
    assert stats.requests == 0 and stats.qps == 0.0 and stats.seconds == 2.0
    assert np.isnan(stats.latency_ms_p99)


def test_recall_of_answers_and_missing_results():
    dataset = make_synthetic(200, 8, "l2", n_queries=3, seed=1)
    true_ids, _ = vecdb.knn(dataset.base, dataset.queries, 4, metric="l2")
    answers = {0: list(true_ids[0]), 2: list(true_ids[2][:2])}  # query 1 unanswered, query 2 half found
    assert answers_recall(answers, true_ids, dataset) == pytest.approx(0.75)
    assert ids_matrix([[5, 6], [7]], 3).tolist() == [[5, 6, -1], [7, -1, -1]]


def test_choose_ef_stops_at_the_first_ef_reaching_the_target():
    tried = []

    def recall_at(ef: int) -> float:
        tried.append(ef)
        return {10: 0.80, 16: 0.93, 24: 0.96, 32: 0.99}[ef]

    choice = choose_ef(recall_at, [32, 10, 24, 16], target=0.95)
    assert (choice.ef, choice.recall) == (24, 0.96)
    assert tried == [10, 16, 24]
    assert [point["ef"] for point in choice.sweep] == [10, 16, 24]
    with pytest.raises(ValueError, match="no ef reached recall 0.999"):
        choose_ef(recall_at, [10, 32], target=0.999)


def _row(system, encoding, clients, round_number, qps, p50=1.0, p99=2.0, mean=1.2, http_client="raw"):
    return {"system": system, "encoding": encoding, "http_client": http_client, "clients": clients,
            "round": round_number, "qps": qps, "latency_ms_p50": p50, "latency_ms_p99": p99, "latency_ms_mean": mean}


def test_best_round_ratios_and_goal_verdicts():
    runs = [_row("vecdb", "json", 1, 1, 900.0, p50=1.0, mean=1.1),
            _row("vecdb", "json", 1, 2, 1000.0, p50=0.9, mean=1.0),
            _row("chroma", "json", 1, 1, 400.0), _row("chroma", "json", 1, 2, 450.0),
            _row("vecdb", "json", 8, 1, 1500.0, p99=30.0), _row("chroma", "json", 8, 1, 400.0),
            _row("vecdb x2", "json", 8, 1, 2700.0),
            # Through another HTTP client: compared only with Chroma through that client.
            _row("vecdb", "json", 1, 1, 100.0, http_client="httpx"),
            _row("chroma", "json", 1, 1, 80.0, http_client="httpx")]
    best = best_rows(runs)
    vecdb_one = next(row for row in best if (row["system"], row["clients"], row["http_client"]) == ("vecdb", 1, "raw"))
    assert vecdb_one["round"] == 2 and vecdb_one["qps_rounds"] == [900.0, 1000.0]
    assert qps_ratios(best) == {("vecdb", "httpx", "json"): {1: pytest.approx(1.25)},
                                ("vecdb", "raw", "json"): {1: pytest.approx(1000 / 450), 8: pytest.approx(3.75)},
                                ("vecdb x2", "raw", "json"): {8: pytest.approx(6.75)}}
    assert qps_ratios_by_round(runs)[("vecdb", "raw", "json")] == {
        1: [pytest.approx(900 / 400), pytest.approx(1000 / 450)], 8: [pytest.approx(3.75)]}
    verdicts = {(goal["system"], goal["goal"].split()[0], goal["goal"].split()[2]): goal
                for goal in goals(runs, {"latency_ms_p50": 0.5, "latency_ms_mean": 0.4})
                if goal["http_client"] == "raw"}
    chroma = verdicts["vecdb", "QPS", "3x"]
    assert chroma["met"] is True and chroma["measured"] == "3.75x (rounds 3.75x)" and chroma["rounds_met"] == "1 of 1"
    added = verdicts["vecdb", "HTTP", "<="]
    assert added["met"] is False and added["measured"] == "+0.400 ms (p50 1.80x, mean 2.50x)"
    scaling = verdicts["vecdb x2", "QPS", "1.7x"]
    assert scaling["met"] is True and scaling["measured"] == "1.80x (rounds 1.80x)"
    assert verdicts["vecdb x2", "HTTP", "<="]["met"] is None  # not measured at 1 client
    assert ("vecdb", "QPS", "1.7x") not in verdicts  # one process is the reference


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    """A `vecdb serve --workers 2` holding 300 synthetic 16-d cosine vectors, started by the benchmark's helpers."""
    folder = tmp_path_factory.mktemp("server")
    dataset = make_synthetic(300, 16, "cosine", n_queries=20, seed=3)
    with vecdb_server(folder / "db", folder / "server.log", workers=2) as server:  # reads on either process
        ingest_vecdb(server, "tiny", dataset.base, dataset.metric, batch=128)
        yield server, dataset


@pytest.mark.parametrize("http_client", HTTP_CLIENTS)
@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_load_generator_stops_by_itself_and_answers_correctly(tiny_server, encoding, http_client):
    server, dataset = tiny_server
    target = vecdb_target("tiny", dataset.queries, k=5, ef=64, encoding=encoding)
    started = time.perf_counter()
    # A window long enough that some request finishes in it on a loaded 2-core machine (0.5 s once saw none).
    run = run_load(server.url, target, http_client, clients=3, warmup=0.2, duration=2.0, server_pid=server.pid)
    assert time.perf_counter() - started < 60  # the loop ended on its own
    assert (run.system, run.encoding, run.http_client, run.clients) == ("vecdb", encoding, http_client, 3)
    assert run.stats.requests > 0 and run.stats.errors == 0 and run.stats.seconds == pytest.approx(2.0)
    assert run.stats.latency_ms_p50 <= run.stats.latency_ms_p95 <= run.stats.latency_ms_p99 <= run.stats.latency_ms_max
    assert run.cpu.own >= 0 and run.cpu.processes[0] >= 0
    exact, _ = vecdb.knn(dataset.base, dataset.queries, 5, metric="cosine")
    for row, ids in run.answers.items():
        assert ids == exact[row].tolist()  # 300 points at ef=64: the graph search is exact


def test_answer_all_sends_every_query_once(tiny_server):
    server, dataset = tiny_server
    answers = answer_all(server.url, vecdb_target("tiny", dataset.queries, k=3, ef=64, encoding="json"),
                         concurrency=4)
    exact, _ = vecdb.knn(dataset.base, dataset.queries, 3, metric="cosine")
    assert answers == exact.tolist()


@pytest.mark.parametrize("http_client", HTTP_CLIENTS)
def test_a_failing_target_is_reported(tiny_server, http_client):
    server, dataset = tiny_server
    missing = vecdb_target("no-such-collection", dataset.queries, k=3, ef=64, encoding="json")
    with pytest.raises(RuntimeError, match="HTTP 404"):
        run_load(server.url, missing, http_client, clients=1, warmup=0.0, duration=0.2, server_pid=server.pid)


def test_raw_requests_are_whole_http_messages():
    (request,) = encode_requests("http://127.0.0.1:8123", "/v1/x", {"content-type": "application/json"}, [b'{"a":1}'])
    assert request == (b"POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:8123\r\ncontent-type: application/json\r\n"
                       b"content-length: 7\r\n\r\n{\"a\":1}")


def test_targets_encode_the_documented_bodies():
    queries = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    as_json = vecdb_target("docs", queries, k=10, ef=32, encoding="json")
    assert as_json.path == "/v1/collections/docs/search"
    assert json.loads(as_json.bodies[1]) == {"vector": [2.0, 0.25], "k": 10, "ef": 32, "with_payload": False}
    as_msgpack = vecdb_target("docs", queries, k=10, ef=32, encoding="msgpack")
    assert as_msgpack.headers["content-type"] == as_msgpack.headers["accept"] == "application/msgpack"
    assert decode_msgpack(as_msgpack.bodies[0])["vector"] == queries[0].astype("<f4").tobytes()
    chroma = chroma_target("c0ffee", queries, k=10)
    assert chroma.path == "/api/v2/tenants/default_tenant/databases/default_database/collections/c0ffee/query"
    assert json.loads(chroma.bodies[0])["query_embeddings"] == [[0.5, -1.0]]
    assert chroma.read_ids(b'{"ids": [["7", "3"]], "distances": [[0.1, 0.2]]}') == [7, 3]


def test_chroma_server_answers_the_query_route(tmp_path):
    pytest.importorskip("chromadb")
    from bench.server.ingest import ingest_chroma

    dataset = make_synthetic(200, 8, "cosine", n_queries=5, seed=4)
    with chroma_server(tmp_path / "chroma", tmp_path / "chroma.log") as server:
        ingested = ingest_chroma(server, "tiny", dataset.base, dataset.metric, batch=100, ef_search=64)
        answers = answer_all(server.url, chroma_target(ingested.collection_id, dataset.queries, k=3))
    exact, _ = vecdb.knn(dataset.base, dataset.queries, 3, metric="cosine")
    assert ingested.points == 200
    assert answers_recall(dict(enumerate(answers)), exact, dataset) == 1.0


def test_process_cpu_time_is_read_from_the_right_fields():
    own = os.times()
    assert process_cpu_seconds(os.getpid()) == pytest.approx(own.user + own.system, abs=0.1)


def _made_up_document() -> dict:
    runs = []
    for http_client in ("httpx", "raw"):
        for clients in (1, 8):
            for system, encoding, qps in (("vecdb", "json", 900.0), ("vecdb", "msgpack", 1000.0),
                                          ("chroma", "json", 400.0)):
                row = _row(system, encoding, clients, 1, qps / clients ** 0.5, p50=1.0 * clients, p99=3.0 * clients,
                           http_client=http_client)
                runs.append(dict(row, latency_ms_p95=2.0 * clients, latency_ms_max=4.0 * clients, requests=100,
                                 seconds=10.0, errors=0, recall=0.96, recall_queries=1000, client_cores=0.95,
                                 server_cores=0.5, idle_server_cores=0.05, other_load=0.2))
    embedded = {"ef": 32, "latency_ms_p50": 0.25, "latency_ms_mean": 0.3, "latency_ms_p99": 0.5, "qps": 4000.0,
                "other_load": 0.0, "index_source": "snapshot", "recall": 0.96}
    return {"format": "vecdb-server-bench", "version": 1, "command": "python -m bench.server",
            "measured_at": "2026-11-26T00:00:00+00:00", "machine": {"cpu_model": "test CPU", "usable_cores": 2},
            "dataset": {"name": "made-up", "n_base": 1000, "dim": 8, "metric": "cosine", "n_queries": 10},
            "params": {"k": 10, "batch": 100, "ef_candidates": [16, 32], "target_recall": 0.95,
                       "warmup_seconds": 1.0, "duration_seconds": 10.0, "rounds": 1,
                       "http_clients": ["httpx", "raw"], "workers": [1]},
            "ingest": {"vecdb": {"seconds": 1.0}, "chroma": {"seconds": 2.0}},
            "ef": {"vecdb": {"ef": 32, "recall": 0.96}, "chroma": {"ef": 32, "recall": 0.955}},
            "embedded": embedded, "runs": runs}


def test_report_renders_and_reads_back(tmp_path):
    render(tmp_path, _made_up_document())
    report = (tmp_path / "server.md").read_text()
    assert "## Results through raw (best round)" in report and (tmp_path / "server.png").is_file()
    # vecdb / chroma QPS per HTTP client and encoding: best rounds, then within each round (one here)
    assert "| 1 | 2.25x (2.25) | 2.50x (2.50) | 2.25x (2.25) | 2.50x (2.50) |" in report
    # HTTP p50 (1.0 ms) and mean (1.2 ms) against embedded
    assert "| vecdb | raw | msgpack | +0.750 ms | 4.00x | 4.00x |" in report
    assert "The load generator used 0.9 cores or more" in report and "Other load was above 0.1" in report
    saved = json.loads((tmp_path / "server.json").read_text())
    assert {"system": "vecdb", "http_client": "raw", "encoding": "json",
            "ratio_by_clients": {"1": 2.25, "8": 2.25}} in saved["summary"]["qps_ratio_vs_chroma"]
    main(["--report-only", "--out", str(tmp_path)])  # re-rendering from the JSON gives the same report
    assert (tmp_path / "server.md").read_text() == report
