"""A damaged LMDB data file is refused with CorruptDatabaseError instead of
killing the process (SIGBUS on a file cut short, abort() in an LMDB
assertion on a damaged page): the native checker of LMDB's layout
(vecdb._core.check_lmdb_file), its levels, and opening damaged files in a
child process, where a crash would show as a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb import _core, errors

ROOT = Path(__file__).resolve().parents[2]
PAGE = 4096

# Opens the database and reads everything it can; prints one outcome line.
_OPEN_AND_READ = """
import sys, numpy as np, vecdb
from vecdb import errors
try:
    with vecdb.open(sys.argv[1], read_only=sys.argv[2] == "ro") as db:
        for name in db.list_collections():
            col = db.get_collection(name)
            col.count(); col.scroll(limit=100_000); col.get(list(range(50)))
            col.search(np.ones(col.dim, dtype=np.float32), k=5, filter={"g": "a"})
    print("ok")
except errors.CorruptDatabaseError as exc:
    print("refused:", exc)
"""


def make_database(path: Path, points: int = 3000, dim: int = 16) -> None:
    rng = np.random.default_rng(0)
    with vecdb.open(path) as db:
        col = db.create_collection("c", dim=dim, metric="l2")
        col.upsert(list(range(points)), rng.standard_normal((points, dim)).astype(np.float32),
                   [{"g": "ab"[i % 2], "i": i} for i in range(points)])
        col.create_payload_index("g", "keyword")


def open_in_child(path: Path, read_only: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _OPEN_AND_READ, str(path), "ro" if read_only else "rw"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def assert_refused(result: subprocess.CompletedProcess, path: Path) -> str:
    assert result.returncode >= 0, f"killed by {signal.Signals(-result.returncode).name}: {result.stderr[-500:]}"
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("refused:"), result.stdout
    assert str(path / "data.mdb") in result.stdout and "backup" in result.stdout
    return result.stdout


def page_of(report: dict, database_suffix: bytes) -> int:
    (entry,) = [d for d in report["databases"] if d["name"].endswith(database_suffix)]
    return entry["root"]


def test_clean_databases_of_every_shape_pass_the_full_check(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "db"
    with vecdb.open(path) as db:
        big = db.create_collection("big", dim=800, metric="l2", index=vecdb.Flat())  # values on overflow pages
        big.upsert(list(range(300)), rng.standard_normal((300, 800)), [{"t": "x", "n": i % 3} for i in range(300)])
        big.create_payload_index("t", "keyword")
        big.delete(ids=list(range(0, 300, 3)))
        big.upsert(list(range(0, 300, 7)), rng.standard_normal((43, 800)), [{"t": "y"}] * 43)
        pq = db.create_collection("pq", dim=8, quantization=vecdb.PQ(m=2, train_size=300), mrl_dims=[4])
        for batch in range(12):
            pq.upsert([f"k{batch}-{i}" for i in range(100)], rng.standard_normal((100, 8)),
                      [{"b": batch, "tags": ["a", "b", str(i % 5)]} for i in range(100)])
        pq.create_payload_index("tags", "keyword")
        pq.delete(filter={"b": {"$lt": 4}})
        crowded = db.create_collection("crowded", dim=4, index=vecdb.Flat())  # duplicates in sub-databases
        crowded.create_payload_index("t", "keyword")
        crowded.upsert(list(range(30_000)), rng.standard_normal((30_000, 4)), [{"t": "same"}] * 30_000)
        crowded.delete(ids=list(range(0, 30_000, 2)))  # a large free list
        db.drop_collection("pq")
        report = _core.check_lmdb_file(str(path / "data.mdb"), "full")
        assert report["problems"] == [] and report["pages_read"] > 100
    for level in ("meta", "structure", "full"):
        assert _core.check_lmdb_file(str(path / "data.mdb"), level)["problems"] == []


def test_a_file_cut_short_is_refused_not_a_sigbus(tmp_path):
    make_database(tmp_path / "db")
    data = tmp_path / "db" / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)
    for read_only in (False, True):
        message = assert_refused(open_in_child(tmp_path / "db", read_only), tmp_path / "db")
        assert "cut short" in message


@pytest.mark.parametrize("size", [0, 100, PAGE, PAGE + 200])
def test_a_file_too_short_for_its_meta_pages_is_refused(tmp_path, size):
    make_database(tmp_path / "db", points=10)
    os.truncate(tmp_path / "db" / "data.mdb", size)
    with pytest.raises(errors.CorruptDatabaseError, match="too few"):
        vecdb.open(tmp_path / "db")
    assert (tmp_path / "db" / "data.mdb").stat().st_size == size  # not recreated as an empty database


@pytest.mark.parametrize("database", [b":vectors", b":labels", b":payloads", b":payload-index", b":ids"])
def test_a_zeroed_page_is_refused_not_an_abort(tmp_path, database):
    make_database(tmp_path / "db")
    data = tmp_path / "db" / "data.mdb"
    report = _core.check_lmdb_file(str(data), "structure")
    page = page_of(report, database)
    with open(data, "r+b") as handle:
        handle.seek(page * PAGE)
        handle.write(bytes(PAGE))
    message = assert_refused(open_in_child(tmp_path / "db"), tmp_path / "db")
    assert database.decode() in message and f"page {page}" in message


def test_damaged_page_headers_are_named(tmp_path):
    make_database(tmp_path / "db")
    data = tmp_path / "db" / "data.mdb"
    page = page_of(_core.check_lmdb_file(str(data), "structure"), b":labels")
    original = data.read_bytes()

    def damaged(offset: int, value: bytes) -> str:
        data.write_bytes(original[:page * PAGE + offset] + value + original[page * PAGE + offset + len(value):])
        (problem,) = _core.check_lmdb_file(str(data), "structure")["problems"][:1]
        return problem[2]

    assert "says it is page" in damaged(0, (page + 1).to_bytes(8, "little"))  # the page number
    assert "where a branch page belongs" in damaged(10, (0x02).to_bytes(2, "little"))  # branch -> leaf
    assert "impossible bounds" in damaged(12, (9000).to_bytes(2, "little"))  # lower past the page


def test_damaged_meta_pages_are_refused(tmp_path):
    make_database(tmp_path / "db", points=10)
    data = tmp_path / "db" / "data.mdb"
    original = data.read_bytes()
    for offset, value, expected in [(16, b"\0\0\0\0", "magic"), (PAGE + 16, b"\1\2\3\4", "magic"),
                                    (40, (3000).to_bytes(4, "little"), "page size"),
                                    (PAGE + 10, b"\0\0", "not a meta page")]:
        data.write_bytes(original[:offset] + value + original[offset + len(value):])
        with pytest.raises(errors.CorruptDatabaseError, match=expected):
            vecdb.open(tmp_path / "db", read_only=True)
    data.write_bytes(original)
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("c").count() == 10


def test_the_refused_file_leaves_the_folder_usable_by_a_restore(tmp_path):
    make_database(tmp_path / "db", points=50)
    with vecdb.open(tmp_path / "db") as db:
        archive = db.backup(tmp_path / "backup.tar")
    os.truncate(tmp_path / "db" / "data.mdb", PAGE * 3)
    with pytest.raises(errors.CorruptDatabaseError):
        vecdb.open(tmp_path / "db")
    from vecdb.transfer.backup import restore_backup
    restore_backup(archive, tmp_path / "db", force=True)  # no lock or handle was left behind
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("c").count() == 50


def test_the_checker_survives_garbage(tmp_path):
    """Random bytes behind valid meta pages: problems are reported, the
    checker itself never reads outside the file."""
    make_database(tmp_path / "db", points=2000)
    data = tmp_path / "db" / "data.mdb"
    original = bytearray(data.read_bytes())
    rng = np.random.default_rng(5)
    refused = 0
    for trial in range(300):
        damaged = bytearray(original)
        start = int(rng.integers(2 * PAGE, len(damaged) - 64))
        length = int(rng.choice([1, 8, 64, PAGE]))
        damaged[start:start + length] = rng.integers(0, 256, min(length, len(damaged) - start), dtype=np.uint8).tobytes()
        data.write_bytes(bytes(damaged))
        for level in ("structure", "full"):
            refused += bool(_core.check_lmdb_file(str(data), level)["problems"])
    assert refused > 100


def test_read_only_opens_beside_a_busy_writer_are_never_refused(tmp_path):
    """The page walk runs in a read transaction, so a writer committing in
    another process meanwhile cannot make a healthy file look damaged."""
    make_database(tmp_path / "db", points=200)
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, numpy as np, vecdb\n"
         "db = vecdb.open(sys.argv[1]); col = db.get_collection('c'); rng = np.random.default_rng(0)\n"
         "print('ready', flush=True)\n"
         "for i in range(100_000):\n"
         "    col.upsert([i % 5000], rng.standard_normal((1, 16)), [{'g': 'a'}])\n"
         "    if i % 7 == 0: col.delete(ids=[(i * 13) % 5000])\n",
         str(tmp_path / "db")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 8
        opened = 0
        while time.monotonic() < deadline:
            with vecdb.open(tmp_path / "db", read_only=True) as db:
                db.get_collection("c").count()
            opened += 1
        assert writer.poll() is None and opened > 5
    finally:
        writer.kill()
        writer.wait()
