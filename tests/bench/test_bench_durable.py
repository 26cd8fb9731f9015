"""The durable benchmark runs end to end on a tiny synthetic set (vecdb
systems only: the other databases are optional bench dependencies, see
test_bench_durable_peers.py) and reports what it ran."""

from __future__ import annotations

import json

from bench.durable.__main__ import main


def test_durable_benchmark_runs_and_reports(tmp_path):
    main(["--dataset", "synthetic:600:16:cosine", "--systems", "vecdb,vecdb-native", "--rounds", "1",
          "--queries", "20", "--ef-search", "64", "--selectivity", "1,100",
          "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache")])
    document = json.loads((tmp_path / "out" / "durable.json").read_text())
    jobs = {(r["job"], r["system"]) for r in document["results"]}
    assert jobs == {("ingest", "vecdb"), ("ingest", "vecdb-native"), ("reopen", "vecdb"), ("search", "vecdb"),
                    ("filtered", "vecdb"), ("ingest_search", "vecdb")}
    searches = [r for r in document["results"] if r["job"] == "search"]
    assert searches[-1]["recall"] >= 0.95 and all(r["recall"] < 0.95 for r in searches[:-1])
    ingest = next(r for r in document["results"] if r["job"] == "ingest" and r["system"] == "vecdb")
    assert ingest["points"] == 600 and ingest["points_per_second"] > 0
    # Durable (every upsert returned) before indexed (wait_indexed returned), before done (closed).
    assert 0 < ingest["durable_seconds"] <= ingest["indexed_seconds"] <= ingest["seconds"]
    native = next(r for r in document["results"] if r["job"] == "ingest" and r["system"] == "vecdb-native")
    assert "durable_seconds" not in native  # in memory only
    searched = next(r for r in document["results"] if r["job"] == "ingest_search")
    assert searched["milestones"]["durable"] <= searched["milestones"]["indexed"]
    assert sum(phase["searches"] for phase in searched["phases"].values()) > 0
    reopen = next(r for r in document["results"] if r["job"] == "reopen")
    assert reopen["index_source"] == "snapshot"
    filtered = next(r for r in document["results"] if r["job"] == "filtered")["rows"]
    assert [row["selectivity_percent"] for row in filtered] == [1, 100]
    assert filtered[0]["recall"] == 1.0  # 1% of 600 points: answered by an exact scan
    report = (tmp_path / "out" / "durable.md").read_text()
    assert "| vecdb-native | - |" in report and "| 1% | 64 | 1.0000 |" in report
    assert "## Search during a sustained ingest" in report


def test_pq_collection_benchmark_runs_and_reports(tmp_path):
    from bench.durable.pq import main as pq_main

    pq_main(["--dataset", "synthetic:1500:16:cosine", "--pq-m", "4", "--rerank", "50", "--train-size", "500",
             "--queries", "20", "--ef-search", "64", "--selectivity", "10,100",
             "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work")])
    document = json.loads((tmp_path / "out" / "pq_collections.json").read_text())
    memory = {r["system"]: r for r in document["results"] if r["job"] == "memory"}
    assert set(memory) == {"vecdb", "vecdb-pq", "vecdb-flat-pq"}
    # 4-byte codes against 64-byte vectors: the code scan's index is several times smaller.
    assert memory["vecdb-flat-pq"]["index_bytes_per_vector"] * 4 < memory["vecdb"]["index_bytes_per_vector"]
    for result in document["results"]:
        if result["job"] == "filtered":
            assert all(row["recall"] > 0.5 and row["qps"] > 0 for row in result["rows"])
    report = (tmp_path / "out" / "pq_collections.md").read_text()
    assert "| vecdb-flat-pq |" in report and "| vecdb-pq | 10% | 64 |" in report
