"""vecdb check PATH (vecdb.integrity.check_database): every page, every
value's checksum and the agreement of a collection's structures; damaged
points named by collection and id; exit status 1 on damage, 2 when the
check cannot run."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import vecdb
from vecdb.cli import main
from vecdb.integrity import check_database
from vecdb.storage.codec import ValueCodec
from vecdb.storage.keys import label_key, user_id_key

ROOT = Path(__file__).resolve().parents[2]
DIM = 8


def vectors(n: int, offset: int = 0) -> np.ndarray:
    return np.cos(np.arange(offset, offset + n * DIM) * 0.3).reshape(n, DIM).astype(np.float32) + 0.02


def make(path: Path) -> None:
    with vecdb.open(path) as db:
        docs = db.create_collection("docs", dim=DIM, metric="l2", index=vecdb.HNSW(M=8, ef_construction=32))
        docs.create_payload_index("g", "keyword")
        docs.upsert([f"p{i}" for i in range(300)], vectors(300),
                    [{"g": "abc"[i % 3], "note": f"payload {i:04d}"} for i in range(300)])
        docs.delete(ids=["p5", "p6"])
        pq = db.create_collection("pq", dim=DIM, quantization=vecdb.PQ(m=2, train_size=256), index=vecdb.Flat())
        pq.upsert(list(range(400)), vectors(400, 9999))
        db.create_collection("empty", dim=3)
    with vecdb.open(path) as db:
        db.compact()  # each value below is stored once (no stale copies in free pages)


def run(*args: str):
    return CliRunner().invoke(main, ["check", *args])


def flip(path: Path, needle: bytes, at: int) -> None:
    data = bytearray((path / "data.mdb").read_bytes())
    position = data.find(needle)
    assert position >= 0 and data.find(needle, position + 1) < 0
    data[position + at] ^= 0x08
    (path / "data.mdb").write_bytes(bytes(data))


def raw_write(path: Path, collection: str, part: str, body) -> None:
    """Write through LMDB behind vecdb's back (correctly sealed values), to
    make structures disagree."""
    with vecdb.open(path) as db:
        store = db.get_collection(collection)._store
        db._environment.write(lambda txn: body(txn, store, store._database(part), ValueCodec(store._names[part])))


def test_a_clean_database_passes(tmp_path):
    make(tmp_path / "db")
    result = run(str(tmp_path / "db"))
    assert result.exit_code == 0, result.output
    assert "collection 'docs': 298 points" in result.output and "no damage found" in result.output
    document = json.loads(run(str(tmp_path / "db"), "--json").output)
    assert document["ok"] and document["storage_format"] == "3" and len(document["database_id"]) == 32
    assert [c["name"] for c in document["collections"]] == ["docs", "empty", "pq"]
    assert all(c["damaged_points"] == [] for c in document["collections"]) and document["pages_checked"] > 5


def test_damaged_values_are_listed_by_point(tmp_path):
    make(tmp_path / "db")
    flip(tmp_path / "db", vectors(1, 17 * DIM).tobytes(), at=6)
    flip(tmp_path / "db", b"payload 0042", at=10)
    flip(tmp_path / "db", label_key(120) + b"\x01sp120", at=12)  # the label -> id entry of p120
    result = run(str(tmp_path / "db"))
    assert result.exit_code == 1, result.output
    assert "point 'p17' (label 17): vector: checksum mismatch" in result.output
    assert "point 'p42' (label 42): payload: checksum mismatch" in result.output
    assert "the point with label 120: id: checksum mismatch" in result.output
    assert "3 damaged point(s)" in result.output and "vecdb restore" in result.output
    report = check_database(tmp_path / "db")
    (docs,) = [c for c in report.collections if c.name == "docs"]
    assert {(p["label"], p["id"]) for p in docs.damaged_points()} == {(17, "p17"), (42, "p42"), (120, None)}


def test_structures_that_disagree(tmp_path):
    make(tmp_path / "db")

    def drop_id(txn, store, database, codec):
        txn.delete(user_id_key("p7"), db=database)

    def stray_index_entry(txn, store, database, codec):
        txn.put(b"g\x00kz", codec.seal(b"g\x00kz", label_key(8)), db=database)

    def orphan_vector(txn, store, database, codec):
        store._blocks.put_rows(txn, database, np.array([5]), codec.seal_rows(label_key(5), vectors(1)))

    def lost_vector(txn, store, database, codec):
        store._blocks.delete_rows(txn, database, np.array([9]))

    raw_write(tmp_path / "db", "docs", "ids", drop_id)
    raw_write(tmp_path / "db", "docs", "payload-index", stray_index_entry)
    raw_write(tmp_path / "db", "docs", "vectors", orphan_vector)
    raw_write(tmp_path / "db", "docs", "vectors", lost_vector)
    result = run(str(tmp_path / "db"))
    assert result.exit_code == 1
    assert "point 'p7' (label 7): id map: its id has no entry in the id -> label map" in result.output
    assert "entry b'g\\x00kz' for label 8 that no payload calls for" in result.output
    assert "a vector is stored under label 5, which holds no point" in result.output
    assert "point 'p9' (label 9): vector: it has no stored vector" in result.output


def test_a_vector_block_whose_header_is_damaged_names_its_points(tmp_path):
    """A block's header says which of its rows are stored: damaged, none of
    them can be trusted, and each point the block may hold is reported."""
    make(tmp_path / "db")
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        store = db.get_collection("pq")._store
        with db._environment.read() as txn:
            (block,) = [bytes(value) for _, value in txn.cursor(db=store.vectors)]
    flip(tmp_path / "db", block[:64], at=2)  # in the present-rows bitmap (one block: 400 rows of 36 bytes)
    result = run(str(tmp_path / "db"), "--json")
    assert result.exit_code == 1
    problems = [p["text"] for p in json.loads(result.output)["problems"] if p["where"] == "pq"]
    assert "the header of the stored vectors of labels 0..1023 is damaged (checksum mismatch)" in problems
    assert "point 399 (label 399): vector: the header of its vectors' block is damaged" in problems
    assert len(problems) == 401  # the header, and each point


def test_a_vector_block_whose_length_disagrees_with_its_header(tmp_path):
    make(tmp_path / "db")

    def cut_short(txn, store, database, codec):
        key, value = next(iter(txn.cursor(db=database)))
        txn.put(key, value[:-3 * DIM], db=database)

    raw_write(tmp_path / "db", "docs", "vectors", cut_short)
    result = run(str(tmp_path / "db"), "--json")
    assert result.exit_code == 1
    problems = [p["text"] for p in json.loads(result.output)["problems"]]
    assert "the header of the stored vectors of labels 0..1023 is damaged (its length disagrees with its header)" \
        in problems
    assert "point 'p299' (label 299): vector: the header of its vectors' block is damaged" in problems


def test_damaged_pages_are_reported_and_their_values_left_unread(tmp_path):
    make(tmp_path / "db")
    from vecdb import _core

    data = tmp_path / "db" / "data.mdb"
    (entry,) = [d for d in _core.check_lmdb_file(str(data), "structure")["databases"]
                if d["name"].endswith(b":payloads") and d["entries"] > 100]
    with open(data, "r+b") as handle:
        handle.seek(entry["root"] * 4096)
        handle.write(bytes(4096))
    result = run(str(tmp_path / "db"))
    assert result.exit_code == 1
    assert ":payloads, page" in result.output and "blank (zeroed?)" in result.output
    assert "collection 'docs': its values were not checked" in result.output
    assert "collection 'pq': 400 points" in result.output  # its trees are intact: checked


def test_progress_is_reported(tmp_path):
    make(tmp_path / "db")
    seen = []
    check_database(tmp_path / "db", lambda stage, done, total: seen.append((stage, done, total)))
    values = [entry for entry in seen if entry[0] == "values"]
    assert values and values[-1][1] == values[-1][2] > 700


def test_it_runs_beside_a_writer(tmp_path):
    make(tmp_path / "db")
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, numpy as np, vecdb\n"
         "db = vecdb.open(sys.argv[1]); col = db.get_collection('docs')\nprint('ready', flush=True)\n"
         "for i in range(100_000): col.upsert([f'w{i % 500}'], np.ones((1, 8)), [{'g': 'a'}])\n",
         str(tmp_path / "db")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        for _ in range(3):
            result = run(str(tmp_path / "db"))
            assert result.exit_code == 0, result.output
        assert writer.poll() is None
    finally:
        writer.kill()
        writer.wait()


def test_format_1_and_missing_databases(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    with tarfile.open(ROOT / "tests" / "data" / "format1-backup.tar") as archive:
        (folder / "data.mdb").write_bytes(archive.extractfile("data.mdb").read())
    result = run(str(folder))
    assert result.exit_code == 0 and "storage format 1" in result.output and "only pages were checked" in result.output
    missing = run(str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "no vecdb database" in missing.output


def test_help_says_what_it_checks_and_what_the_exit_status_means():
    result = CliRunner().invoke(main, ["check", "--help"])
    assert result.exit_code == 0
    for text in ("checksum", "ids <-> labels", "Exit status: 0 nothing damaged, 1 damage found, 2 could not",
                 "vecdb restore"):
        assert text in result.output
    assert "check" in CliRunner().invoke(main, ["--help"]).output


def test_a_folder_open_in_this_process_is_refused(tmp_path):
    """LMDB allows one environment per folder per process: closing a second
    one would drop the first's locks."""
    from vecdb import errors

    make(tmp_path / "db")
    with vecdb.open(tmp_path / "db", read_only=True):
        with pytest.raises(errors.StorageLockedError, match="from another process"):
            check_database(tmp_path / "db")
    assert check_database(tmp_path / "db").ok
