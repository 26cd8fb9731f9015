"""Databases in storage format 2 (one LMDB record per vector, label ->
sealed row): the first writable open regroups the vectors into blocks
(format 3), all or nothing, keeping every point, the database id and the
index snapshots; a kill at any moment of it leaves one format whole;
read-only opens refuse format 2 with what to do; a format-2 backup
restores upgraded.

The format-2 folders are written here the way format 2 stored vectors,
from a database made by this version."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import lmdb
import numpy as np
import pytest

import vecdb
from vecdb import _core, errors
from vecdb.integrity import check_database
from vecdb.storage import upgrade
from vecdb.storage.catalog import list_configs, part_names
from vecdb.storage.codec import ValueCodec
from vecdb.storage.format import FORMAT_2, FORMAT_KEY, FORMAT_VERSION, MAX_NAMED_DATABASES
from vecdb.storage.keys import label_key
from vecdb.storage.vector_blocks import VectorBlocks
from vecdb.transfer import backup

ROOT = Path(__file__).resolve().parents[2]
WIDE = 4096  # four vectors a block


def make(folder: Path) -> None:
    rng = np.random.default_rng(5)
    with vecdb.open(folder) as db:
        docs = db.create_collection("docs", dim=16, metric="cosine", index=vecdb.HNSW(M=8, ef_construction=40))
        docs.create_payload_index("g", "keyword")
        docs.upsert([f"d{i}" for i in range(300)], rng.standard_normal((300, 16)),
                    [{"g": "ab"[i % 2], "n": i} for i in range(300)])
        docs.delete(ids=[f"d{i}" for i in range(0, 300, 7)])
        docs.upsert([f"d{i}" for i in range(1, 50, 5)], rng.standard_normal((10, 16)))
        docs.wait_indexed()
        wide = db.create_collection("wide", dim=WIDE, metric="l2", index=vecdb.Flat())
        wide.upsert(list(range(23)), rng.standard_normal((23, WIDE)))
        wide.delete(ids=[4, 5, 6, 7, 21])  # block 1 emptied, block 5 partly
        db.create_collection("empty", dim=3)


def contents(folder: Path):
    """Everything a reader sees: each collection's points, payloads and vectors."""
    with vecdb.open(folder, read_only=True) as db:
        seen = {}
        for name in db.list_collections():
            col = db.get_collection(name)
            records, _ = col.scroll(limit=10_000, with_vector=True)
            seen[name] = {r.id: (r.payload, r.vector.tobytes()) for r in records}
        return seen, db._environment.database_id


def to_format_2(folder: Path) -> None:
    """Store every collection's vectors one record per vector, as format 2
    did (each row keeps its seal), and stamp format 2."""
    env = lmdb.open(str(folder), max_dbs=MAX_NAMED_DATABASES)
    try:
        with env.begin() as txn:
            configs = list_configs(txn)
        for config in configs:
            name = part_names(config.key)["vectors"]
            database = env.open_db(name, create=False)
            blocks = VectorBlocks(ValueCodec(name), config.dim)
            with env.begin(write=True) as txn:
                rows = []
                for key, value in txn.cursor(db=database):
                    labels, sealed = blocks.open_block(key, value)
                    rows += [(label_key(label), row.tobytes()) for label, row in zip(labels.tolist(), sealed)]
                txn.drop(database, delete=False)
                txn.cursor(db=database).putmulti(rows, append=True)
                txn.put(FORMAT_KEY, FORMAT_2)
    finally:
        env.close()


def stored_format(folder: Path) -> bytes:
    return _core.check_lmdb_file(str(folder / "data.mdb"), "main")["main_values"][FORMAT_KEY]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A format-2 folder and what a reader saw before it was turned into one."""
    folder = tmp_path_factory.mktemp("format2") / "db"
    make(folder)
    expected = contents(folder)
    to_format_2(folder)
    return folder, expected


@pytest.fixture
def format2(made, tmp_path) -> Path:
    folder = tmp_path / "db"
    folder.mkdir()
    for path in made[0].rglob("*"):
        if path.is_file() and path.name != "lock.mdb":
            (folder / path.relative_to(made[0])).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(made[0])).write_bytes(path.read_bytes())
    return folder


def test_the_fixture_is_in_format_2(format2):
    assert stored_format(format2) == b"2"
    entries = [d["entries"] for d in _core.check_lmdb_file(str(format2 / "data.mdb"), "structure")["databases"]
               if d["name"].endswith(b":vectors")]
    assert sorted(entries) == [0, 18, 258]  # a record per stored vector


def test_read_only_opens_refuse_format_2_and_say_what_to_do(format2):
    with pytest.raises(errors.ReadOnlyError, match="storage format 2, .*open it once for writing.*format 3"):
        vecdb.open(format2, read_only=True)
    report = check_database(format2)
    assert report.ok and any("storage format 2" in note for note in report.notes)
    assert stored_format(format2) == b"2"


def test_the_first_writable_open_upgrades_keeping_everything_and_the_snapshots(made, format2):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vecdb.open(format2).close()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == [
        f"{format2} is in vecdb storage format 2: upgrading it once to format 3 (vectors stored in blocks, a "
        "third less space)"]  # and no index rebuilt: the fingerprints and the database id are unchanged
    assert stored_format(format2) == FORMAT_VERSION and not (format2 / upgrade.STAGING).exists()
    assert contents(format2) == made[1]
    assert check_database(format2).ok
    with vecdb.open(format2) as db:
        wide = db.get_collection("wide")
        wide.upsert([4, 100], np.ones((2, WIDE)))
        assert wide.count() == 20 and wide.search(np.ones(WIDE), k=1)[0].id in (4, 100)


KILLER = textwrap.dedent("""
    import os, signal, sys
    import vecdb
    from vecdb.storage import upgrade

    folder, moment, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if moment == "rewriting":
        put = upgrade._Rewrite._put
        def dying_put(self, *args, **kwargs):
            calls.append(1)
            if len(calls) > after:
                die()
            return put(self, *args, **kwargs)
        upgrade._Rewrite._put = dying_put
    else:
        swap = upgrade.swap_in_if_alone
        def dying_swap(*args):
            if moment == "after rename":
                swap(*args)
            die()
        upgrade.swap_in_if_alone = dying_swap
    vecdb.open(folder)
""")


@pytest.mark.parametrize("moment, after", [("rewriting", 0), ("rewriting", 1), ("rewriting", 3),
                                           ("before rename", 0), ("after rename", 0)])
def test_a_kill_during_the_upgrade_leaves_one_format_whole(made, format2, moment, after):
    before = (format2 / "data.mdb").read_bytes()
    killed = subprocess.run([sys.executable, "-c", KILLER, str(format2), moment, str(after)], cwd=ROOT,
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    if moment == "after rename":
        assert stored_format(format2) == FORMAT_VERSION
    else:
        assert (format2 / "data.mdb").read_bytes() == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vecdb.open(format2).close()  # finishes the upgrade, or has nothing to do
    assert stored_format(format2) == FORMAT_VERSION and not (format2 / upgrade.STAGING).exists()
    assert contents(format2) == made[1]


def _rewrite_vector(folder: Path, collection: str, label: int, change) -> None:
    env = lmdb.open(str(folder), max_dbs=MAX_NAMED_DATABASES)
    try:
        with env.begin() as txn:
            (config,) = [c for c in list_configs(txn) if c.name == collection]
        database = env.open_db(part_names(config.key)["vectors"], create=False)
        with env.begin(write=True) as txn:
            txn.put(label_key(label), change(txn.get(label_key(label), db=database)), db=database)
    finally:
        env.close()


def test_a_damaged_format_2_vector_stays_reported_by_its_point(format2):
    _rewrite_vector(format2, "docs", 8, lambda row: row[:5] + bytes([row[5] ^ 0x10]) + row[6:])
    with pytest.warns(RuntimeWarning, match="upgrading"):
        db = vecdb.open(format2)
    with db:
        # Loading the graph reads every vector (its snapshot holds links, not vectors).
        with pytest.raises(errors.CorruptRecordError, match=r"the stored vector of point 'd8' \(label 8\) is "
                                                            r"damaged"):
            db.get_collection("docs")
    report = check_database(format2)
    (docs_report,) = [c for c in report.collections if c.name == "docs"]
    assert [(p["id"], p["damaged"]) for p in docs_report.damaged_points()] == [("d8", ["vector"])]


def test_a_vector_of_the_wrong_size_stops_the_upgrade_and_changes_nothing(format2):
    _rewrite_vector(format2, "wide", 9, lambda row: row[:-8])
    before = (format2 / "data.mdb").read_bytes()
    with pytest.warns(RuntimeWarning, match="upgrading"), \
            pytest.raises(errors.CorruptRecordError, match=r"collection 'wide': the stored vector of label 9 holds "
                                                           r"16380 bytes, not 16388; it cannot be upgraded"):
        vecdb.open(format2)
    assert (format2 / "data.mdb").read_bytes() == before and not (format2 / upgrade.STAGING).exists()


def test_a_format_2_backup_restores_upgraded(made, format2, tmp_path):
    data = format2 / "data.mdb"
    manifest = backup.BackupManifest(vecdb_version="0.2", storage_format="2", created="2026-12-01T00:00:00Z",
                                     data_bytes=data.stat().st_size, data_sha256=backup._sha256_of(data),
                                     collections=({"name": "docs", "count": 258, "dim": 16, "metric": "cosine"},
                                                  {"name": "empty", "count": 0, "dim": 3, "metric": "cosine"},
                                                  {"name": "wide", "count": 18, "dim": WIDE, "metric": "l2"}),
                                     database_id=made[1][1])
    archive = tmp_path / "old.tar"
    with open(archive, "wb") as handle:
        backup._write_archive(handle, manifest, data)
    with pytest.warns(RuntimeWarning, match="format 2: upgrading"):
        restored = backup.restore_backup(archive, tmp_path / "restored")
    assert restored.storage_format == "2"
    assert stored_format(tmp_path / "restored") == FORMAT_VERSION
    assert contents(tmp_path / "restored") == made[1]
