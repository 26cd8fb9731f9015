"""`make demo` runs vecdb.demo: it must work without the shared sample data."""

from __future__ import annotations

import re

from vecdb import demo


def test_demo_runs_on_synthetic_data(tmp_path, capsys):
    demo.main(["--data", str(tmp_path / "absent"), "--queries", "1", "-k", "3"])
    out = capsys.readouterr().out
    assert "synthetic clusters (sample data not found)" in out
    assert "exact search, k=10:" in out and "HNSW graph (M=16, ef_construction=100) built" in out
    recalls = [float(r) for r in re.findall(r"recall@10 ([0-9.]+)", out)]
    assert len(recalls) == 2 and recalls[1] >= 0.9
