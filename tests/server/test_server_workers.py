"""`vecdb serve --workers N` as real processes: one port, reads answered by
every process and seeing every acknowledged write, writes through the one
writer, readers started again when they die and gone with the writer.
(The API suite runs through a reader too: the `remote-reader` database of
tests/conftest.py.)"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import numpy as np
import psutil
import pytest
from click.testing import CliRunner

import vecdb
from vecdb.cli import main
from tests.support.servers import ServerProcess


def readers_of(server: ServerProcess) -> list:
    """The server's live reader processes."""
    readers = []
    for child in psutil.Process(server.process.pid).children():
        try:
            if "vecdb.server.workers" in " ".join(child.cmdline()):
                readers.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):  # one that died, not reaped yet
            pass
    return readers


def listening_on(port: int) -> set:
    """The processes listening on ``port``."""
    return {conn.pid for conn in psutil.net_connections("tcp")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port}


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_workers_go_without_a_cluster(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--path", str(tmp_path / "db"), "--workers", "2", "--cluster"])
    assert result.exit_code == 2 and "--workers goes without --cluster" in result.output
    assert "--workers" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_every_read_sees_every_write_acknowledged_before_it_began(tmp_path):
    """Writers and readers race over fresh connections, so the kernel hands
    them to either process: a count never misses a batch acknowledged
    before it was asked, and a search finds the newest acknowledged point."""
    with ServerProcess(tmp_path / "db", "--workers", "2") as server:
        (reader,) = readers_of(server)
        with vecdb.connect(server.url) as db:
            db.create_collection("c", dim=4)
        reader_cpu = sum(reader.cpu_times()[:2])
        acknowledged = [0]  # points in batches whose upsert returned
        failures = []
        done = threading.Event()

        def write() -> None:
            try:
                for batch in range(40):
                    with vecdb.connect(server.url) as db:  # a new connection each time
                        ids = list(range(batch * 25, batch * 25 + 25))
                        vectors = np.zeros((25, 4), np.float32)
                        vectors[:, 0] = 1
                        vectors[:, 1] = batch
                        db.get_collection("c").upsert(ids, vectors, [{"batch": batch}] * 25)
                    acknowledged[0] = (batch + 1) * 25
            except Exception as exc:
                failures.append(exc)
            finally:
                done.set()

        def read() -> None:
            try:
                while not done.is_set():
                    known = acknowledged[0]
                    with vecdb.connect(server.url) as db:
                        collection = db.get_collection("c")
                        count = collection.count()
                        assert count >= known, f"a count of {count} after {known} points were acknowledged"
                        if known:
                            newest = (known - 1) // 25
                            hits = collection.search([1, newest, 0, 0], k=1, filter={"batch": newest})
                            assert hits and hits[0].payload == {"batch": newest}
            except Exception as exc:
                failures.append(exc)

        threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures, failures
        with vecdb.connect(server.url) as db:
            assert db.get_collection("c").count() == 1000
        # The reader answered its share (the kernel spreads the connections):
        # answering, it used 0.5-0.8 s of CPU in this test; idle, 0.02 s in 10 s.
        assert sum(reader.cpu_times()[:2]) - reader_cpu > 0.2


def test_a_reader_that_dies_is_replaced_and_all_stop_with_the_writer(tmp_path):
    with ServerProcess(tmp_path / "db", "--workers", "3") as server:
        readers = readers_of(server)
        assert len(readers) == 2
        with vecdb.connect(server.url) as db:
            db.create_collection("c", dim=2).upsert(["a"], [[1, 0]])
        readers[0].send_signal(signal.SIGKILL)
        wait_for(lambda: len(readers_of(server)) == 2 and readers[0].pid not in
                 {reader.pid for reader in readers_of(server)})
        for _ in range(20):  # whichever process answers
            assert httpx.post(f"{server.url}/v1/collections/c/points/count", json={}).json() == {"count": 1}
        # The supervisor's line reaches the captured output a moment after the new reader runs.
        wait_for(lambda: "exited (killed by SIGKILL); starting another" in server.output())
        survivors = readers_of(server)
        assert server.stop(signal.SIGTERM, timeout=120) in (0, -signal.SIGTERM)
        for reader in survivors:
            wait_for(lambda: not reader.is_running() or reader.status() == psutil.STATUS_ZOMBIE)
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("c").count() == 1


def test_readers_exit_when_the_writer_is_killed(tmp_path):
    server = ServerProcess(tmp_path / "db", "--workers", "2").wait_ready()
    try:
        readers = readers_of(server)
        assert len(readers) == 1
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(60)
    wait_for(lambda: not readers[0].is_running() or readers[0].status() == psutil.STATUS_ZOMBIE)


@pytest.mark.parametrize("workers", ["2"])
def test_bad_writes_get_the_writers_4xx_through_a_reader(tmp_path, workers):
    with ServerProcess(tmp_path / "db", "--workers", workers, "--api-key", "k" * 16,
                       "--read-only-key", "r" * 16) as server:
        write = {"x-api-key": "k" * 16}
        read = {"x-api-key": "r" * 16}
        for _ in range(10):  # fresh connections: either process
            created = httpx.post(f"{server.url}/v1/collections", headers=write,
                                 json={"name": "c", "dim": 2, "exist_ok": True})
            assert created.status_code == 201, created.text
            refused = httpx.post(f"{server.url}/v1/collections/c/points", headers=read,
                                 json={"ids": ["a"], "vectors": [[1, 0]]})
            assert refused.status_code == 403 and refused.json()["error"]["type"] == "PermissionDeniedError"
            wrong = httpx.post(f"{server.url}/v1/collections/c/points", headers=write,
                               json={"ids": ["a"], "vectors": [[1, 0, 0]]})
            assert wrong.status_code == 400 and wrong.json()["error"]["type"] == "DimensionMismatchError"
            assert httpx.post(f"{server.url}/v1/collections/c/points/count", headers=read,
                              json={}).json() == {"count": 0}


def test_a_second_server_cannot_join_the_port(tmp_path):
    """Each process listens on its own socket (SO_REUSEPORT, on Linux): a
    second server on the same port must still be refused, not share it."""
    with ServerProcess(tmp_path / "one", "--workers", "2") as server:
        # Ready is the writer's answer; its reader listens once it has started (later on a busy machine).
        wait_for(lambda: len(listening_on(server.port)) == 2)
        first = listening_on(server.port)
        assert first == {server.process.pid, *(reader.pid for reader in readers_of(server))}
        second = ServerProcess(tmp_path / "two", "--workers", "2", port=server.port)
        assert second.process.wait(60) == 1
        assert f"cannot listen on 127.0.0.1:{server.port}" in second.output()
        assert listening_on(server.port) == first
