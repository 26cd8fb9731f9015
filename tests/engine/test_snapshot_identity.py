"""An index snapshot is used only by the database and the state it was made
from: it carries the database's id (drawn at creation) and the collection's
fingerprint at its sequence (a hash chained over every committed batch).
Before, a snapshot from a copy of the folder that had diverged was adopted
whenever sequence and count matched (10 of 10 swaps), and searches answered
with the other copy's vectors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import vecdb
from vecdb.index.snapshot import SNAPSHOT_FOLDER
from vecdb.storage.codec import MAIN
from vecdb.storage.format import DATABASE_ID_KEY

DIM = 16


def snapshot_files(folder):
    return sorted((folder / SNAPSHOT_FOLDER).glob("*.hnsw"))


def swap_snapshots(a, b) -> None:
    for first, second in zip(snapshot_files(a), snapshot_files(b)):
        assert first.name == second.name
        data = first.read_bytes()
        first.write_bytes(second.read_bytes())
        second.write_bytes(data)


def diverged_copies(tmp_path, seed: int, mrl: bool):
    """A database and a copy of its folder, each then given different data
    of the same count in the same number of batches."""
    rng = np.random.default_rng(seed)
    a, b = tmp_path / "a", tmp_path / "b"
    with vecdb.open(a) as db:
        col = db.create_collection("c", dim=DIM, index=vecdb.HNSW(M=8, ef_construction=40),
                                   mrl_dims=[8] if mrl else None)
        col.upsert(list(range(200)), rng.standard_normal((200, DIM)))
    shutil.copytree(a, b)
    written = {}
    for folder in (a, b):
        vectors = rng.standard_normal((100, DIM)).astype(np.float32)
        with vecdb.open(folder) as db:
            col = db.get_collection("c")
            col.upsert(list(range(200, 300)), vectors)  # a new batch: same sequence, same count
            col.delete(ids=[int(rng.integers(200))])
            sequence = col.stats()["sequence"]
        written[folder] = (vectors, sequence)
    assert written[a][1] == written[b][1]  # same sequence: what the header used to compare
    return a, b, written


@pytest.mark.parametrize("seed", range(10))
def test_a_diverged_copys_snapshot_is_never_adopted(tmp_path, seed):
    a, b, written = diverged_copies(tmp_path, seed, mrl=seed % 2 == 1)
    swap_snapshots(a, b)
    for folder in (a, b):
        with vecdb.open(folder) as db:
            col = db.get_collection("c")
            assert col.stats()["index_source"] == "rebuild"
            vectors = written[folder][0]
            hits = col.search(vectors[:20], k=1, ef=100, with_payload=False)
            assert sum(row[0].id == 200 + i for i, row in enumerate(hits)) >= 19  # its own vectors
            if col.stats()["mrl"]:
                prefix = col.search(vectors[:20], k=1, dims=8, ef=100, with_payload=False)
                assert sum(row[0].id == 200 + i for i, row in enumerate(prefix)) >= 15
        with vecdb.open(folder) as db:  # the rebuilt index was saved: next time it is used
            assert db.get_collection("c").stats()["index_source"] == "snapshot"


def test_an_unchanged_copy_shares_its_snapshots(tmp_path):
    """A copy that has not diverged is the same state: its snapshots serve it."""
    with vecdb.open(tmp_path / "a") as db:
        db.create_collection("c", dim=DIM).upsert(list(range(100)), np.random.default_rng(0).standard_normal((100, DIM)))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with vecdb.open(tmp_path / "b") as db, vecdb.open(tmp_path / "a", read_only=True) as original:
        assert db.get_collection("c").stats()["index_source"] == "snapshot"
        assert db._environment.database_id == original._environment.database_id


def test_the_fingerprint_follows_the_change_log_back_to_older_snapshots(tmp_path, monkeypatch):
    """A snapshot older than the last batch is still used (and caught up)
    when its fingerprint matches the log's entry for its sequence."""
    monkeypatch.setattr(vecdb.collection, "SNAPSHOT_MIN_CHANGES", 100)
    db = vecdb.open(tmp_path / "db")
    col = db.create_collection("c", dim=DIM, index=vecdb.HNSW(M=8, ef_construction=40))
    rng = np.random.default_rng(1)
    col.upsert(list(range(150)), rng.standard_normal((150, DIM)))  # snapshot at sequence 1
    col.upsert([500, 501], rng.standard_normal((2, DIM)))
    col.delete(ids=[3])
    col._changes_since_snapshot = 0  # as if killed: no snapshot on close
    db.close()
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        assert col.stats()["index_source"] == "snapshot+replay" and col.count() == 151
        assert col.get([3]) == [] and {h.id for h in col.search(np.zeros(DIM), k=200)} >= {500, 501}


def test_a_snapshot_of_another_database_is_refused(tmp_path):
    """Same collection key and identical data, but another database id."""
    with vecdb.open(tmp_path / "a") as db:
        db.create_collection("c", dim=DIM).upsert(list(range(100)), np.random.default_rng(0).standard_normal((100, DIM)))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with vecdb.open(tmp_path / "b") as db:  # give the copy an identity of its own
        db._environment.write(lambda txn: txn.put(DATABASE_ID_KEY, MAIN.seal(DATABASE_ID_KEY, bytes(16))))
    with vecdb.open(tmp_path / "b") as db:
        assert db._environment.database_id == "0" * 32
        assert db.get_collection("c").stats()["index_source"] == "rebuild"


def test_format_1_snapshots_are_not_used(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("c", dim=DIM).upsert(list(range(50)), np.ones((50, DIM)) * np.arange(50)[:, None])
    (snapshot,) = snapshot_files(tmp_path / "db")
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[:8] + (1).to_bytes(4, "little") + data[12:])  # version 1
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("c").stats()["index_source"] == "rebuild"


def test_backups_name_the_database(tmp_path):
    from vecdb.transfer.backup import read_manifest, restore_backup

    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("c", dim=DIM).upsert([1], np.ones((1, DIM)))
        archive = db.backup(tmp_path / "b.tar")
        identity = db._environment.database_id
    assert read_manifest(archive).database_id == identity
    restore_backup(archive, tmp_path / "restored")
    with vecdb.open(tmp_path / "restored", read_only=True) as db:
        assert db._environment.database_id == identity  # a restored copy is that database
