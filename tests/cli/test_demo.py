"""`make demo` runs vecdb.cli.demo: it must work without the shared sample data,
and a second run must reuse the stored collection."""

from __future__ import annotations

import re

from vecdb.cli import demo


def test_demo_runs_on_synthetic_data_and_reuses_its_database(tmp_path, capsys):
    args = ["--data", str(tmp_path / "absent"), "--db", str(tmp_path / "db"), "--queries", "1", "-k", "3"]
    demo.main(args)
    out = capsys.readouterr().out
    assert "synthetic clusters (sample data not found)" in out
    assert "ingested 20,000 points durably" in out and "exact search (FlatIndex), k=10:" in out
    recalls = [float(r) for r in re.findall(r"recall@10 ([0-9.]+)", out)]
    assert len(recalls) == 2 and recalls[1] >= 0.9
    demo.main(args)
    out = capsys.readouterr().out
    assert "already holds 20,000 points" in out and "index from: snapshot" in out
