"""The vecdb command (click's test runner; no subprocess needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import vecdb
from vecdb.cli import main


def test_info_lists_collections_without_loading_indexes(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        docs = db.create_collection("docs", dim=8, metric="l2", mrl_dims=[4], quantization=vecdb.PQ(m=2),
                                    sparse=["splade", "bm42"])
        docs.upsert([1, 2, 3], np.ones((3, 8)), [{"lang": "en"}, None, {"lang": "fr"}])
        docs.create_payload_index("lang", "keyword")
        docs.create_text_index("lang", language="french", stopwords=["le", "la"], k1=1.5)
        docs.create_text_index("title", language=None, stopwords=False)
        db.create_collection("empty", dim=3, index=vecdb.Flat())
    result = CliRunner().invoke(main, ["info", str(tmp_path / "db")])
    assert result.exit_code == 0, result.output
    assert "2 collection(s)" in result.output
    assert "docs: 3 points, dim 8, l2, hnsw (M=16" in result.output
    assert "PQ: m=2" in result.output and "MRL prefixes: [4]" in result.output
    assert "lang (keyword)" in result.output and "empty: 0 points, dim 3, cosine, flat" in result.output
    assert "text index: lang (language=french, 2 stop words, k1=1.5, b=0.75)" in result.output
    assert "text index: title (language=none, 0 stop words, k1=1.2, b=0.75)" in result.output
    assert "text index" not in result.output.split("empty:")[1]
    assert "sparse vectors: splade, bm42" in result.output and "sparse" not in result.output.split("empty:")[1]
    document = json.loads(CliRunner().invoke(main, ["info", "--json", str(tmp_path / "db")]).output)
    assert [c["name"] for c in document["collections"]] == ["docs", "empty"]
    assert len(document["database_id"]) == 32 and document["database_id"] in result.output
    assert document["collections"][0]["count"] == 3 and document["bytes_on_disk"] > 0
    assert document["collections"][0]["text_indexes"] == {
        "lang": {"language": "french", "stopwords": ["la", "le"], "k1": 1.5, "b": 0.75},
        "title": {"language": None, "stopwords": [], "k1": 1.2, "b": 0.75}}
    assert document["collections"][1]["text_indexes"] == {}
    assert [c["sparse"] for c in document["collections"]] == [["splade", "bm42"], []]


def test_info_runs_beside_a_writer(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("c", dim=2).upsert([1], np.ones((1, 2)))
        result = CliRunner().invoke(main, ["info", str(tmp_path / "db")])
        assert result.exit_code == 0 and "c: 1 points" in result.output


def test_info_refuses_what_is_not_a_database(tmp_path):
    missing = CliRunner().invoke(main, ["info", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "plain").mkdir()
    not_vecdb = CliRunner().invoke(main, ["info", str(tmp_path / "plain")])
    assert not_vecdb.exit_code == 1 and "no vecdb database" in not_vecdb.output
    assert not (tmp_path / "plain" / "data.mdb").exists()  # read-only: nothing created


def test_help_on_every_command():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "info" in top.output
    assert runner.invoke(main, ["info", "--help"]).exit_code == 0
    assert vecdb.__version__ in runner.invoke(main, ["--version"]).output


@pytest.mark.parametrize("suite, module", [([], "bench"), (["--suite", "calibration"], "bench.planner.calibration")])
def test_bench_runs_the_checkout_harness(capfd, suite, module):
    with pytest.raises(SystemExit) as stopped:
        main(["bench", *suite, "--", "--help"], standalone_mode=False)
    assert stopped.value.code == 0
    assert f"usage: python -m {module}" in capfd.readouterr().out
    unknown = CliRunner().invoke(main, ["bench", "--suite", "nothing"])
    assert unknown.exit_code == 2 and "'indexes'" in unknown.output


def test_every_command_has_help():
    for command in main.commands:
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0 and len(result.output.splitlines()) > 5, command


def test_info_lists_each_named_vector(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        docs = db.create_collection("docs", vectors={"text": vecdb.VectorSpec(8, mrl_dims=[4]),
                                                     "image": vecdb.VectorSpec(16, "l2", index=vecdb.Flat(),
                                                                               quantization=vecdb.PQ(m=4))})
        docs.upsert([1, 2], {"text": np.ones((2, 8))})
        docs.create_payload_index("tag", "keyword")
    result = CliRunner().invoke(main, ["info", str(tmp_path / "db")])
    assert result.exit_code == 0, result.output
    assert "1 collection(s)" in result.output and "docs: 2 points, named vectors:" in result.output
    assert "    text: dim 8, cosine, hnsw (M=16" in result.output and "      MRL prefixes: [4]" in result.output
    assert "    image: dim 16, l2, flat" in result.output and "      PQ: m=4" in result.output
    assert "    payload indexes: tag (keyword)" in result.output
    document = json.loads(CliRunner().invoke(main, ["info", "--json", str(tmp_path / "db")]).output)
    assert list(document["collections"][0]["vectors"]) == ["text", "image"]
