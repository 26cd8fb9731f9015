"""The durable benchmark's other embedded databases (Qdrant's local mode, LanceDB, Chroma)
on a tiny synthetic set: each is filled, reopened and searched through the harness, finds
the exact neighbours, and has its rows in the report; a database whose package is missing is
skipped with a message. Correctness only: no test asserts a speed. Each database's test is
skipped where its optional package is not installed."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench.durable.__main__ import main
from bench.durable.databases import DATABASES
from bench.optional import Requirement

# A few hundred points: every database's sweep reaches recall@10 >= 0.95 on them within its
# first settings (Qdrant's local mode scans exactly; LanceDB's graph is over 8-bit vectors).
TINY_DATASET = "synthetic:400:16:cosine"


def run(tmp_path, systems):
    main(["--dataset", TINY_DATASET, "--systems", systems, "--rounds", "1", "--queries", "30",
          "--ef-search", "64", "--selectivity", "100", "--out", str(tmp_path / "out"),
          "--work-dir", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache")])
    return (json.loads((tmp_path / "out" / "durable.json").read_text()),
            (tmp_path / "out" / "durable.md").read_text())


@pytest.mark.parametrize("system, module", [("qdrant", "qdrant_client"), ("lancedb", "lancedb"),
                                            ("chroma", "chromadb")])
def test_database_is_ingested_reopened_and_finds_the_exact_neighbours(tmp_path, system, module):
    pytest.importorskip(module)
    document, report = run(tmp_path, system)
    results = {r["job"]: r for r in document["results"] if r["system"] == system}
    assert set(results) == {"ingest", "reopen", "search"}
    assert results["ingest"]["points"] == 400 and results["ingest"]["disk_bytes"] > 0
    search = results["search"]
    assert search["queries"] == 30
    assert search["recall"] >= 0.95  # the sweep stopped at its first setting reaching the target
    ingest = results["ingest"]
    assert 0 < ingest["durable_seconds"] <= ingest["indexed_seconds"] <= ingest["seconds"]
    for section_row in (f"| {system} | {ingest['durable_points_per_second']:,.0f} |",
                        f"| {system} | {results['reopen']['open_seconds']:.3f} |",
                        f"| {system} | {DATABASES[system].knob} |"):
        assert section_row in report


def test_database_without_its_package_is_skipped_with_a_message(tmp_path, monkeypatch, capsys):
    missing = Requirement("bench_module_that_is_not_installed", "package-that-is-not-installed")
    monkeypatch.setitem(DATABASES, "qdrant", dataclasses.replace(DATABASES["qdrant"], requirement=missing))
    document, report = run(tmp_path, "vecdb-native,qdrant")
    printed = capsys.readouterr().out
    assert "skipping qdrant: the Python package 'package-that-is-not-installed' is not installed" in printed
    assert set(document["skipped"]) == {"qdrant"} and document["systems"] == ["vecdb-native"]
    assert {r["system"] for r in document["results"]} == {"vecdb-native"}
    assert "Skipped qdrant: the Python package 'package-that-is-not-installed'" in report
