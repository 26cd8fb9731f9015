"""Long work reports to the Progress callback passed to vecdb.open (the
library draws nothing): an index rebuilt from LMDB on load and the upgrade
of a format-1 folder report monotone progress from 0 to their total; the
renderers draw bars (the CLI, vecdb.open's default on a terminal) or log
lines (the server)."""

from __future__ import annotations

import logging
import shutil
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb.index.snapshot import SNAPSHOT_FOLDER
from vecdb.progress import ProgressBars, ProgressLog, Task

ARCHIVE = Path(__file__).resolve().parents[1] / "data" / "format1-backup.tar"
COUNT = 5_000  # more than two read chunks of a rebuild


class Recorder:
    def __init__(self) -> None:
        self.calls = []

    def __call__(self, task: Task, done: int, total: int) -> None:
        self.calls.append((task, done, total))

    def of(self, description: str):
        return [(done, total) for task, done, total in self.calls if task.description == description]


def assert_monotone_to_the_total(reports, total: int) -> None:
    assert reports, "nothing was reported"
    assert reports[0][0] == 0 and reports[-1] == (total, total)
    assert all(reported_total == total for _, reported_total in reports)
    done = [done for done, _ in reports]
    assert done == sorted(done) and len(done) > 2


@pytest.mark.parametrize("index", [vecdb.HNSW(M=8, ef_construction=32), vecdb.Flat()])
def test_an_index_build_on_load_reports_monotone_progress_to_its_total(tmp_path, index):
    rng = np.random.default_rng(3)
    with vecdb.open(tmp_path / "db") as db:
        docs = db.create_collection("docs", dim=8, index=index)
        docs.upsert(list(range(COUNT)), rng.standard_normal((COUNT, 8)).astype(np.float32))
    shutil.rmtree(tmp_path / "db" / SNAPSHOT_FOLDER, ignore_errors=True)  # so the index is rebuilt from LMDB
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "rebuilding its index": expected here
        with vecdb.open(tmp_path / "db", read_only=True, progress=recorder) as db:
            assert db.get_collection("docs").count() == COUNT
    assert_monotone_to_the_total(recorder.of("building the index of 'docs'"), COUNT)
    assert {task.unit for task, _, _ in recorder.calls} == {"vectors"}


def test_a_format_upgrade_reports_monotone_progress_to_its_total(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    with tarfile.open(ARCHIVE) as archive:
        (folder / "data.mdb").write_bytes(archive.extractfile("data.mdb").read())
    recorder = Recorder()
    with pytest.warns(RuntimeWarning, match="storage format 1"):
        vecdb.open(folder, progress=recorder).close()
    reports = recorder.of("upgrading to storage format 3")
    assert_monotone_to_the_total(reports, reports[-1][1])


def test_bars_draw_each_task_until_its_end(capsys):
    bars = ProgressBars(show=True, delay=0)
    task = Task("copying", "points")
    for done in (0, 40, 100):
        bars(task, done, 100)
    assert "copying: 100%" in capsys.readouterr().err
    bars(task, 50, 100)  # a task begun again gets a new bar
    bars.close()
    assert "copying:  50%" in capsys.readouterr().err


def test_the_log_says_when_a_task_starts_and_ends(caplog):
    log = ProgressLog(logging.getLogger("vecdb.test"), interval=0)
    task = Task("building the index of 'docs'", "vectors")
    with caplog.at_level(logging.INFO, logger="vecdb.test"):
        for done in (0, 1_000, 2_000):
            log(task, done, 2_000)
    assert [record.getMessage().split(" in ")[0] for record in caplog.records] == [
        "building the index of 'docs': 2,000 vectors to do",
        "building the index of 'docs': 1,000 of 2,000 vectors (50%)",
        "building the index of 'docs': 2,000 vectors done"]
