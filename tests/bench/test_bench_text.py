"""The text benchmark (python -m bench.text) runs end to end on a tiny synthetic corpus, writes
its results and report, and vecdb's BM25 answers agree with bm25s's on every query; its
agreement rule allows only what ties allow. Correctness only: no test asserts a speed.
bm25s (a test dependency) is the reference; tantivy is measured where it is installed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.text import __main__ as text_main
from bench.text.agreement import exact_agreement, overlap, pack, query_agrees
from bench.text.corpus import analyze, load_corpus
from bench.text.systems import SYSTEMS

# Enough texts for every engine (bm25s needs at least k), few enough for seconds.
TINY = "synthetic:300:30"


def run(tmp_path, *arguments):
    text_main.main(["--dataset", TINY, "--rounds", "2", "--min-time", "0.01", "--repeats", "1",
                    "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"), *arguments])
    return (json.loads((tmp_path / "out" / "text.json").read_text()),
            (tmp_path / "out" / "text.md").read_text())


def test_every_system_is_measured_in_rounds_and_vecdb_agrees_with_bm25s(tmp_path, capsys):
    pytest.importorskip("bm25s")
    document, report = run(tmp_path)
    printed = capsys.readouterr().out
    expected = [name for name in SYSTEMS if name not in document["skipped"]]
    assert document["systems"] == expected and {"vecdb-index", "vecdb-index-terms", "bm25s"} <= set(expected)
    assert document["corpus"]["texts"] == 300 and document["corpus"]["queries"] == 30
    assert 0 < document["corpus"]["indexed"] < 300  # texts without terms are left out
    assert document["nondeterministic"] == []
    for name in expected:
        row = document["rows"][name]
        assert [r["round"] for r in row["rounds"]] == [1, 2]
        assert row["qps"] == row["qps_max"] >= row["qps_min"] > 0
        assert 0 < row["latency_ms_p50"] <= row["latency_ms_p99"]
        assert row["build_seconds"] == min(r["build_seconds"] for r in row["rounds"]) > 0
        assert row["calls_timed"] % 30 == 0  # whole passes over the queries
        assert f"| {name} | " in report and f"| {name} | " in printed
    agreement = {(e["system"], e["reference"]): e for e in document["agreement"]}
    for name in ("vecdb-index", "vecdb-index-terms"):
        entry = agreement[name, "bm25s"]
        assert entry["agreeing"] == entry["queries"] == 30 and entry["disagreements"] == []
        assert entry["max_score_difference"] < 1e-4
    for name in ("vecdb-collection", "vecdb-collection-index-first"):
        if name in expected:
            assert agreement[name, "bm25s"]["agreeing"] == 30
            assert agreement[name, "vecdb-index"]["max_score_difference"] == 0
            assert {"open_seconds", "upsert_seconds", "text_index_seconds"} == set(document["rows"][name]["phases"])
    if "tantivy" in expected:
        assert agreement["tantivy", "bm25s"]["mean_overlap"] > 0.8
        assert "| tantivy | " in report and "1.00x" in report  # the baseline's own ratios
    assert "## Agreement of the top 10" in report and "30 of 30 queries agree exactly" in report


def test_report_is_rendered_again_from_the_json(tmp_path, capsys):
    document, report = run(tmp_path, "--systems", "vecdb-index")
    (tmp_path / "out" / "text.md").unlink()
    text_main.main(["--report-only", "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "text.md").read_text() == report
    assert "| vecdb-index | " in capsys.readouterr().out


def test_a_missing_package_or_collection_text_search_is_skipped_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(text_main, "collection_text_search_available", lambda: False)
    missing = type("Missing", (SYSTEMS["tantivy"],), {"requirement": text_main.Requirement(
        "bench_module_that_is_not_installed", "package-that-is-not-installed")})
    monkeypatch.setitem(text_main.SYSTEMS, "tantivy", missing)
    document, report = run(tmp_path, "--systems", "vecdb-index,vecdb-collection,tantivy")
    printed = capsys.readouterr().out
    assert "skipping vecdb-collection: not available in this build" in printed
    assert "skipping tantivy: the Python package 'package-that-is-not-installed' is not installed" in printed
    assert document["systems"] == ["vecdb-index"] and set(document["skipped"]) == {"vecdb-collection", "tantivy"}
    assert "Skipped vecdb-collection: not available in this build" in report


def test_synthetic_corpus_keeps_rows_of_texts_with_terms():
    corpus = load_corpus(TINY, seed=3)
    analyzed = analyze(corpus)
    assert analyzed.rows.tolist() == [row for row, text in enumerate(corpus.texts)
                                      if any(ch.isalpha() for ch in text) and text != "The and of the."]
    assert analyzed.query_terms[0] == []  # stop words alone
    labels, offsets, terms, weights = analyzed.postings_input()
    assert len(offsets) == len(labels) + 1 and offsets[-1] == len(terms) == len(weights)
    assert weights.sum() == sum(len(tokens) for tokens in analyzed.documents)


def test_agreement_allows_differences_only_among_ties_at_the_cut():
    reference = {1: 3.0, 2: 2.0, 3: 1.0}
    assert query_agrees({1: 3.0, 2: 2.0, 3: 1.0}, reference)
    assert query_agrees({1: 3.0, 2: 2.00005, 4: 1.00003}, reference)  # 4 ties 3 at the 10th place
    assert not query_agrees({1: 3.0, 4: 2.0, 3: 1.0}, reference)  # 4 replaces 2, not tied at the cut
    assert not query_agrees({1: 3.0, 2: 2.0, 3: 1.001}, reference)  # a score off by 1e-3
    assert not query_agrees({1: 3.0, 2: 2.0}, reference)
    assert query_agrees({}, {})
    found = pack([(np.array([1, 2, 3]), np.array([3.0, 2.0, 1.0])), (np.array([5]), np.array([1.0]))], k=3)
    expected = pack([(np.array([1, 2, 4]), np.array([3.0, 2.0, 1.0])), (np.array([6]), np.array([2.0]))], k=3)
    measured = exact_agreement(found, expected, ["first", "second"])
    assert measured["agreeing"] == 1 and measured["same_ids"] == 0.0
    assert measured["disagreements"] == [{"query": 1, "text": "second", "found": [[5, 1.0]],
                                          "reference": [[6, 2.0]]}]
    assert overlap(found, expected) == {"kind": "overlap", "queries": 2, "mean_overlap": pytest.approx(1 / 3),
                                        "same_ids": 0.0}
