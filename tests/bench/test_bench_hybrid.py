"""The hybrid benchmark (python -m bench.hybrid) runs end to end on a small synthetic dataset
(and on a slice of the shared data when it is there), writes its results and report, and
every answer it timed is valid: ids of stored points, at most k, hybrid hits found by one of
the branches, the points' own payloads. Correctness only: no test asserts a speed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vecdb.records import Hit

from bench.hybrid import __main__ as hybrid_main
from bench.hybrid.data import exact_cosine_top_k, load
from bench.hybrid.jobs import check_answers
from bench.hybrid.modes import modes_for, parts_of
from bench.paths import SHARED_DATA_DIR

TINY = "synthetic:600:20"
K = 10


def run(tmp_path, *arguments):
    hybrid_main.main(["--rounds", "2", "--repeats", "1", "--min-time", "0.01", "--out", str(tmp_path / "out"),
                      "--work-dir", str(tmp_path / "work"), *arguments])
    return (json.loads((tmp_path / "out" / "hybrid.json").read_text()),
            (tmp_path / "out" / "hybrid.md").read_text())


def assert_valid(document, queries):
    assert document["problems"] == []
    for name in document["modes"]:
        row = document["rows"][name]
        assert [r["round"] for r in row["rounds"]] == [1, 2]
        assert row["qps"] == row["qps_max"] >= row["qps_min"] > 0
        assert 0 < row["p50_us"] <= row["p99_us"] and row["mean_us"] > 0
        assert row["calls_timed"] % queries == 0  # whole passes over the queries
        assert all(r["invalid"] == 0 and r["queries"] == queries for r in row["rounds"])
        assert len({r["digest"] for r in row["rounds"]}) == 1  # the same answers in both rounds
        assert 0 <= row["agreement_with_exact_dense"] <= 1
        width = int(name.split("-k")[1]) if name.startswith(("dense-k", "text-k")) else K
        assert 0 < row["hits_mean"] <= width
        assert len(row["ratios"]) == 2 and row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"]
    assert document["rows"]["dense"]["ratio_median"] == 1.0


def test_every_mode_is_timed_in_rounds_with_valid_answers(tmp_path, capsys):
    document, report = run(tmp_path, "--dataset", TINY)
    printed = capsys.readouterr().out
    assert document["modes"] == [mode.name for mode in modes_for(K)]
    assert document["data"] == {"name": "synthetic-600-q20-seed0", "points": 600, "dim": 16, "queries": 20,
                                "truth": "brute force (float32)"}
    assert_valid(document, 20)
    rows = document["rows"]
    assert rows["dense"]["agreement_with_exact_dense"] > 0.9  # HNSW on 600 points: nearly exact
    assert rows["hybrid-rrf"]["parts"]["modes"] == ["dense-k20", "text-k20"]
    assert rows["hybrid-rrf-c10"]["parts"]["modes"] == ["dense", "text"]
    assert "parts" not in rows["dense"]
    hybrids = [name for name in document["modes"] if rows[name]["role"] == "hybrid"]
    assert set(document["split"]) == set(hybrids) and document["split_unavailable"] is None
    for measured in document["split"].values():
        assert min(measured["dense_branch"], measured["text_branch"], measured["fusion"]) > 0
        assert measured["text_analysis"] <= measured["text_branch"]
    assert set(document["build"]["phases"]) == {"open_seconds", "upsert_seconds", "text_index_seconds",
                                                "wait_indexed_seconds", "close_seconds"}
    for name in document["modes"]:
        assert f"| {name} | " in report and f"| {name} | " in printed
    assert "not a relevance judgement" in report and "not a relevance judgement" in printed
    assert "## Where a hybrid's time goes" in report and "goal <= 1.5x" in report
    (tmp_path / "out" / "hybrid.md").unlink()
    hybrid_main.main(["--report-only", "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "hybrid.md").read_text() == report


def test_modes_can_be_chosen_and_the_split_left_out(tmp_path):
    document, report = run(tmp_path, "--dataset", "synthetic:300:10", "--modes", "hybrid-dbsf", "--no-payload",
                           "--split-passes", "0")
    assert document["modes"] == ["dense", "hybrid-dbsf"]
    assert document["split"] == {} and "parts" not in document["rows"]["hybrid-dbsf"]  # its parts were not timed
    assert "Hybrid split not measured" in report
    with pytest.raises(SystemExit, match="unknown modes"):
        run(tmp_path, "--dataset", "synthetic:300:10", "--modes", "hybrid-nope")


@pytest.mark.skipif(not (SHARED_DATA_DIR / "npm-minilm-384" / "base.npy").is_file(),
                    reason="needs ../shared/data/npm-minilm-384")
def test_a_slice_of_the_shared_data(tmp_path):
    document, _ = run(tmp_path, "--points", "2000", "--queries", "20", "--modes", "hybrid-rrf,hybrid-rrf+payload",
                      "--split-passes", "0")
    assert document["data"]["points"] == 2000 and document["data"]["dim"] == 384
    assert document["data"]["truth"] == "brute force (float32)"  # neighbors.npy is over all 50k points
    assert_valid(document, 20)


def test_answers_are_checked():
    data = load(TINY, K, queries=3)
    mode = next(m for m in modes_for(K) if m.name == "hybrid-rrf+payload")
    exact = [[Hit(id=int(i), score=1.0, payload={"body": data.texts[int(i)]}) for i in row] for row in data.truth]
    good = exact[0]
    branches = ([row.tolist() for row in data.truth], [[]] * 3)
    answers = [good,
               [Hit(id=600, score=1.0, payload={"body": ""})],  # no such point
               exact[2][:2] + [Hit(id=exact[2][0].id, score=0.5, payload=exact[2][0].payload)]]  # an id twice
    checked = check_answers(mode, answers, data, branches)
    assert checked["invalid"] == 2 and checked["queries"] == 3
    assert checked["invalid_examples"][0].startswith("query 1: ids that are no point")
    assert checked["invalid_examples"][1] == "query 2: an id twice"
    assert checked["agreement_with_exact_dense"] == pytest.approx((1.0 + 0.0 + 0.2) / 3)
    wrong_payload = [[Hit(id=good[0].id, score=1.0, payload={"body": "another text"})]]
    assert check_answers(mode, wrong_payload, data, None)["invalid_examples"] == [
        "query 0: a payload that is not the point's"]
    outside = [[Hit(id=int(data.truth[0][0]), score=1.0, payload=good[0].payload)]]
    assert check_answers(mode, outside, data, ([[]], [[]]))["invalid_examples"] == [
        "query 0: ids found by neither branch alone"]
    too_many = [good + good[:1]]
    assert check_answers(mode, too_many, data, None)["invalid_examples"] == ["query 0: 11 hits for k=10"]


def test_parts_and_exact_neighbours():
    by_name = {mode.name: mode for mode in modes_for(K)}
    assert parts_of(by_name["hybrid-rrf-c50"], by_name) == ("dense-k50", "text-k50")
    assert parts_of(by_name["dense"], by_name) is None
    rng = np.random.default_rng(1)
    vectors, queries = rng.standard_normal((50, 7)), rng.standard_normal((4, 7))
    top = exact_cosine_top_k(vectors, queries, 5)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = np.argsort(-(queries @ unit.T), axis=1)[:, :5]
    assert np.array_equal(top, expected)
