"""Databases in storage format 1 (vecdb 0.1, values without checksums; the
archive in tests/data was written by that version): the first writable open
upgrades them in place to the current format, all or nothing, keeping every point;
read-only opens refuse them with what to do; a format-1 backup restores."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb import _core, errors
from vecdb.transfer.backup import restore_backup
from vecdb.storage import upgrade
from vecdb.storage.format import FORMAT_KEY, FORMAT_VERSION
from tests.data.make_format1 import points

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "tests" / "data" / "format1-backup.tar"


def expected_docs():
    """id -> (vector, payload) of collection docs, as make_format1.py wrote it."""
    vectors, payloads = points(300, 16)
    docs = {f"d{i}": (vectors[i], payloads[i]) for i in range(300) if i % 10}
    vectors, payloads = points(20, 16, offset=5000)
    docs.update({f"d{2 * k + 1}": (vectors[k], payloads[k]) for k in range(20)})
    return docs


@pytest.fixture
def format1(tmp_path) -> Path:
    folder = tmp_path / "old"
    folder.mkdir()
    with tarfile.open(ARCHIVE) as archive:
        (folder / "data.mdb").write_bytes(archive.extractfile("data.mdb").read())
    return folder


def stored_format(folder: Path) -> bytes:
    return _core.check_lmdb_file(str(folder / "data.mdb"), "main")["main_values"][FORMAT_KEY]


def assert_upgraded_keeps_everything(folder: Path) -> None:
    assert stored_format(folder) == FORMAT_VERSION
    with vecdb.open(folder, read_only=True) as db:
        assert db.list_collections() == ["docs", "empty", "pq"]
        docs = db.get_collection("docs")
        expected = expected_docs()
        records = docs.get(sorted(expected), with_vector=True)
        assert len(records) == docs.count() == 270
        for record in records:
            vector, payload = expected[record.id]
            np.testing.assert_array_equal(record.vector, vector)
            assert record.payload == payload
        assert docs.count(filter={"lang": "fr"}) == sum(p["lang"] == "fr" for _, p in expected.values())
        assert docs.count(filter={"year": {"$gte": 2020}}) == sum(p["year"] >= 2020 for _, p in expected.values())
        for user_id in ("d1", "d7", "d299"):
            assert docs.search(expected[user_id][0], k=1)[0].id == user_id
        pq = db.get_collection("pq")
        stats = pq.stats()
        assert stats["quantization"]["trained"] and stats["mrl"]["rotation_trained"] and stats["mrl"]["prefix_memory_bytes"]
        vectors, payloads = points(1100, 16, offset=9000)
        assert pq.search(vectors[123], k=1)[0].id == 123 and pq.get([123])[0].payload == payloads[123]
        assert db.get_collection("empty").count() == 0
        assert len(db._environment.database_id) == 32
    assert _core.check_lmdb_file(str(folder / "data.mdb"), "full")["problems"] == []


def test_read_only_opens_refuse_format_1_and_say_what_to_do(format1):
    with pytest.raises(errors.ReadOnlyError, match="storage format 1.*open it once for writing"):
        vecdb.open(format1, read_only=True)
    assert stored_format(format1) == b"1"


def test_the_first_writable_open_upgrades_in_place(format1):
    with pytest.warns(RuntimeWarning, match="format 1: upgrading it once to format 3"):
        vecdb.open(format1).close()
    assert not (format1 / upgrade.STAGING).exists()
    assert_upgraded_keeps_everything(format1)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*format 1")  # the upgrade happens once only
        with vecdb.open(format1) as db:
            docs = db.get_collection("docs")
            docs.upsert(["new"], np.ones(16), [{"lang": "fr"}])
            assert docs.count() == 271


def test_an_upgrade_that_fails_leaves_format_1_as_it_was(format1, monkeypatch):
    before = (format1 / "data.mdb").read_bytes()
    calls = []

    def fail_on_second(self, config):
        calls.append(config.name)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return original(self, config)

    original = upgrade._FromFormat1._collection
    monkeypatch.setattr(upgrade._FromFormat1, "_collection", fail_on_second)
    with pytest.warns(RuntimeWarning), pytest.raises(OSError, match="simulated"):
        vecdb.open(format1)
    assert (format1 / "data.mdb").read_bytes() == before and not (format1 / upgrade.STAGING).exists()
    monkeypatch.setattr(upgrade._FromFormat1, "_collection", original)
    with pytest.warns(RuntimeWarning, match="upgrading"):
        vecdb.open(format1).close()
    assert_upgraded_keeps_everything(format1)


def test_no_upgrade_while_another_process_has_the_folder_open(format1):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, lmdb\n"
                               "env = lmdb.open(sys.argv[1], readonly=True)\nprint('open', flush=True)\n"
                               "sys.stdin.read()", str(format1)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(errors.StorageLockedError, match="upgrading its storage format"):
            vecdb.open(format1)
        assert stored_format(format1) == b"1"
    finally:
        holder.communicate("")
    with pytest.warns(RuntimeWarning):
        vecdb.open(format1).close()
    assert stored_format(format1) == FORMAT_VERSION


def test_a_format_1_backup_restores_upgraded(tmp_path):
    with pytest.warns(RuntimeWarning, match="upgrading"):
        manifest = restore_backup(ARCHIVE, tmp_path / "restored")
    assert manifest.storage_format == "1" and manifest.points == 1370
    assert_upgraded_keeps_everything(tmp_path / "restored")


def test_a_damaged_format_1_file_is_refused_before_the_upgrade_reads_it(format1):
    data = format1 / "data.mdb"
    (entry,) = [d for d in _core.check_lmdb_file(str(data), "structure")["databases"]
                if d["name"].endswith(b":vectors") and d["entries"] == 1100]
    with open(data, "r+b") as handle:  # a zeroed page: LMDB would abort reading it
        handle.seek(entry["root"] * 4096)
        handle.write(bytes(4096))
    with pytest.raises(errors.CorruptDatabaseError, match=":vectors"):
        vecdb.open(format1)
    assert stored_format(format1) == b"1" and not (format1 / upgrade.STAGING).exists()
