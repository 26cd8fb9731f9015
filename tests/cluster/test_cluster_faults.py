"""Faults: a shard's process killed (``kill -9``) while writes and searches
stream in, and the driver itself killed. Ray restarts a shard's actor, which
reopens its folder; nothing acknowledged may be lost, a write in flight to
the dead shard names the shard and the ids whose outcome is unknown, and a
search either fails the same way or (``allow_partial``) says which shards
it lacks."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import vecdb
from vecdb.errors import ShardUnavailableError

DIM = 16


@pytest.fixture
def open_cluster(ray_cluster):
    from vecdb.cluster import open as open_cluster

    return open_cluster


def pid_of_shard(database, shard, timeout=120.0):
    """The process serving ``shard``, once it serves (Ray may be restarting it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return database._shard_set.call({shard: ("pid", (), {})})[shard]
        except ShardUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def vectors_of(ids):
    """Each id's own vector, so a stored point can be checked against it."""
    return np.stack([np.random.default_rng(abs(hash(point_id)) % 2**32).standard_normal(DIM) for point_id in ids]
                    ).astype(np.float32)


# Each kill is the same event at another moment of the stream, and each costs
# a shard restart (~2 s): make test runs a few on each shard, make test-slow
# the long campaign.
@pytest.mark.parametrize("kills", [6, pytest.param(20, marks=pytest.mark.slow)])
def test_kill_9_of_shards_during_acknowledged_upserts_loses_nothing(open_cluster, tmp_path, kills):
    database = open_cluster(tmp_path / "db", shards=2)
    collection = database.create_collection("stream", DIM, "l2", index=vecdb.HNSW(M=8, ef_construction=32))
    acknowledged, unknown, failures = [], [], []
    stop = threading.Event()

    def write():
        batch = 0
        while not stop.is_set():
            ids = [f"b{batch}-{i}" for i in range(25)]
            try:
                collection.upsert(ids, vectors_of(ids), [{"batch": batch}] * len(ids))
                acknowledged.extend(ids)
            except ShardUnavailableError as exc:
                if exc.shard not in (0, 1) or not set(exc.ids) <= set(ids):
                    failures.append(f"error names shard {exc.shard} and ids {exc.ids}")
                unknown.append(exc)
            except BaseException as exc:  # anything else is a defect
                failures.append(repr(exc))
            batch += 1

    writer = threading.Thread(target=write)
    writer.start()
    rng = random.Random(17)
    try:
        for kill in range(kills):
            time.sleep(rng.uniform(0.05, 0.4))
            os.kill(pid_of_shard(database, kill % 2), signal.SIGKILL)
        before = len(acknowledged)
        deadline = time.monotonic() + 60
        while len(acknowledged) < before + 100 and time.monotonic() < deadline:  # writes go on after the kills
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join(timeout=120)
    try:
        assert not failures, failures
        assert len(acknowledged) > 100
        stored = collection.get(acknowledged, with_vector=True)
        assert [record.id for record in stored] == acknowledged
        np.testing.assert_array_equal(np.stack([record.vector for record in stored]), vectors_of(acknowledged))
        # Points of a batch that failed were upserted on the shards that answered: idempotent to send again.
        for exc in unknown:
            collection.upsert(exc.ids, vectors_of(exc.ids))
            assert [record.id for record in collection.get(exc.ids)] == exc.ids
        assert collection.count() >= len(acknowledged)
        hits = collection.search(vectors_of(acknowledged[:5]), 1, ef=64)
        assert [row[0].id for row in hits] == acknowledged[:5]
    finally:
        database.close()


def test_a_write_in_flight_to_a_killed_shard_names_it_and_its_ids(open_cluster, tmp_path):
    # No backlog: each shard's upsert builds its graph before it returns, so the kill lands in it.
    database = open_cluster(tmp_path / "db", shards=2, index_backlog=0)
    collection = database.create_collection("slow", DIM, "l2", index=vecdb.HNSW(M=16, ef_construction=400))
    ids = list(range(40_000))
    vectors = np.random.default_rng(3).standard_normal((len(ids), DIM)).astype(np.float32)
    raised = []

    def write():
        try:
            collection.upsert(ids, vectors)
        except ShardUnavailableError as exc:
            raised.append(exc)

    try:
        victim = pid_of_shard(database, 1)
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(1.0)  # the shards are building their graphs
        os.kill(victim, signal.SIGKILL)
        writer.join(timeout=300)
        assert len(raised) == 1, "the upsert returned although a shard died under it"
        error = raised[0]
        assert error.shard == 1 and "shard 1" in str(error) and "unknown" in str(error)
        from vecdb.cluster.routing import group_by_shard

        assert error.ids == [ids[row] for row in group_by_shard(ids, 2)[1]]
        collection.upsert(ids, vectors)  # again, once the shard is back: idempotent
        assert collection.count() == len(ids)
    finally:
        database.close()


def test_searches_while_a_shard_restarts_fail_or_say_what_they_lack(open_cluster, tmp_path):
    database = open_cluster(tmp_path / "db", shards=2)
    collection = database.create_collection("reads", DIM, "l2", index=vecdb.Flat())
    ids = list(range(200))
    collection.upsert(ids, vectors_of(ids))
    query = vectors_of([0])[0]
    complete, everything = collection.search(query, 10), collection.search(query, len(ids))
    try:
        os.kill(pid_of_shard(database, 1), signal.SIGKILL)
        with pytest.raises(ShardUnavailableError, match="shard 1") as raised:
            collection.search(query, 10)
        assert raised.value.shard == 1
        database.allow_partial = True
        pid_of_shard(database, 1)  # back
        os.kill(pid_of_shard(database, 1), signal.SIGKILL)
        partial = collection.search(query, 10)
        assert partial.missing_shards == (1,)
        from vecdb.cluster.routing import group_by_shard

        on_shard_0 = {ids[row] for row in group_by_shard(ids, 2)[0]}
        assert [hit.id for hit in partial] == [hit.id for hit in everything if hit.id in on_shard_0][:10]
        pid_of_shard(database, 1)
        again = collection.search(query, 10)
        assert again.missing_shards == () and [hit.id for hit in again] == [hit.id for hit in complete]
    finally:
        database.close()


DRIVER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import ray
    sys.path.insert(0, {root!r})
    import vecdb.cluster
    ray.init(address={address!r}, namespace="vecdb", logging_level="ERROR", log_to_driver=False)
    database = vecdb.cluster.open({path!r}, shards=3)
    collection = database.create_collection("kept", 4, "l2")
    collection.upsert(list(range(300)), np.arange(1200, dtype=np.float32).reshape(300, 4))
    print("acknowledged", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_new_driver_reopens_the_cluster_a_killed_driver_left(open_cluster, ray_cluster, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = DRIVER.format(root=root, address=ray_cluster.address, path=str(tmp_path / "db"))
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "acknowledged" in finished.stdout and finished.returncode == -signal.SIGKILL, finished.stderr[-2000:]
    database = open_cluster(tmp_path / "db")
    try:
        assert database.shards == 3
        collection = database.get_collection("kept")
        assert collection.count() == 300
        assert collection.search(np.array([4, 5, 6, 7], dtype=np.float32), 1)[0].id == 1
    finally:
        database.close()


def test_a_backup_restores_into_a_cluster_with_the_same_answers(open_cluster, tmp_path):
    from vecdb.cluster import restore
    from vecdb.errors import BackupExistsError

    ids = list(range(500))
    with open_cluster(tmp_path / "db", shards=3) as database:
        collection = database.create_collection("kept", DIM, "l2", index=vecdb.Flat())
        collection.upsert(ids, vectors_of(ids), [{"n": i} for i in ids])
        collection.create_payload_index("n", "integer")
        queries = vectors_of(ids[:5])
        before = collection.search(queries, 10, filter={"n": {"$lt": 300}})
        folder = database.backup(tmp_path / "backups/")
        assert sorted(path.name for path in folder.iterdir()) == ["cluster.json", "shard-000.tar", "shard-001.tar",
                                                                   "shard-002.tar"]
        (tmp_path / "taken").write_text("a file")
        with pytest.raises(BackupExistsError):  # never overwritten
            database.backup(tmp_path / "taken")
    restored = restore(folder, tmp_path / "restored")
    with open_cluster(restored) as database:
        assert database.shards == 3
        collection = database.get_collection("kept")
        assert collection.count() == 500 and collection.payload_indexes == {"n": "integer"}
        after = collection.search(queries, 10, filter={"n": {"$lt": 300}})
        assert [[(h.id, h.score, h.payload) for h in row] for row in after] == \
            [[(h.id, h.score, h.payload) for h in row] for row in before]
        assert [r.id for r in collection.scroll(limit=500)[0]] == ids
