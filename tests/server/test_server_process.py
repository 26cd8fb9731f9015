"""`vecdb serve` as a real process: what it refuses to start with, the one
port it listens on, graceful shutdown on SIGTERM, and no acknowledged write
lost to kill -9."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import psutil
import pytest
from click.testing import CliRunner

import vecdb
from vecdb.cli import main
from tests.support.servers import ServerProcess

KEY = "process-test-key-0123456789"


def test_refuses_to_bind_beyond_loopback_without_a_key(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--path", str(tmp_path / "db"), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "without an API key" in result.output and "--insecure" in result.output
    assert not (tmp_path / "db").exists()  # refused before anything was opened
    short = CliRunner().invoke(main, ["serve", "--path", str(tmp_path / "db"), "--api-key", "short"])
    assert short.exit_code == 1 and "at least 16 characters" in short.output


def test_serve_help_explains_the_options():
    text = CliRunner().invoke(main, ["serve", "--help"]).output
    for words in ("--path", "--api-key", "VECDB_API_KEY", "--read-only-key", "--insecure", "--max-body-bytes",
                  "--max-k", "--max-batch", "--max-payload-bytes", "SIGTERM", "vecdb.connect"):
        assert words in text, words


def test_a_second_server_on_the_same_folder_is_refused(tmp_path):
    with ServerProcess(tmp_path / "db") as first:
        second = ServerProcess(tmp_path / "db")
        assert second.process.wait(60) == 1
        # The refusal names the holder and the way around it.
        output = " ".join(second.output().split())
        assert f"open for writing by process {first.process.pid} (" in output
        assert "serve" in output and "through its server" in output


def test_listens_on_one_port_only_and_every_route_there_needs_the_key(tmp_path):
    with ServerProcess(tmp_path / "db", "--api-key", KEY) as server:
        listening = {conn.laddr.port for conn in psutil.Process(server.process.pid).net_connections()
                     if conn.status == psutil.CONN_LISTEN}
        assert listening == {server.port}
        import httpx

        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/metrics", headers={"x-api-key": KEY}).status_code == 200


def test_sigterm_finishes_the_request_in_flight_snapshots_and_closes(tmp_path):
    # Fewer points than the 20,000 changes that trigger a snapshot while
    # serving: only the shutdown can write one. Sized so the graph takes
    # seconds to build (3.5 s on a 2-core dev machine): the signal must reach
    # the server while wait_indexed is in flight.
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((19_000, 128)).astype(np.float32)
    with ServerProcess(tmp_path / "db") as server:
        with vecdb.connect(server.url) as db:
            db.create_collection("c", dim=128, index=vecdb.HNSW(M=16, ef_construction=600))
        outcome = {}
        upserted = threading.Event()

        def upsert():
            with vecdb.connect(server.url, timeout=300) as db:
                try:
                    collection = db.get_collection("c")
                    collection.upsert(list(range(19_000)), vectors)  # returns before the graph holds them
                    upserted.set()
                    outcome["ok"] = collection.wait_indexed()  # the request in flight
                except Exception as exc:  # reported by the assertion below
                    outcome["error"] = exc
                    upserted.set()

        writer = threading.Thread(target=upsert)
        writer.start()
        assert upserted.wait(120)
        time.sleep(0.3)  # for wait_indexed to reach the server
        assert writer.is_alive(), "indexing finished before the signal: make it bigger"
        assert not list((tmp_path / "db" / "snapshots").glob("*.hnsw"))
        # uvicorn re-raises the signal once it has shut down cleanly, so the
        # exit status still says what stopped the process.
        assert server.stop(signal.SIGTERM, timeout=300) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.output()
        writer.join(60)
        assert outcome == {"ok": True}
    assert list((tmp_path / "db" / "snapshots").glob("*.hnsw")), "indexes were not snapshotted on shutdown"
    with vecdb.open(tmp_path / "db") as db:
        collection = db.get_collection("c")
        assert collection.count() == 19_000 and collection.stats()["index_source"] == "snapshot"
        assert collection.search(vectors[123], k=1)[0].id == 123


@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_loses_no_acknowledged_write(tmp_path, seed):
    rng = np.random.default_rng(seed)
    acknowledged = []
    server = ServerProcess(tmp_path / "db").wait_ready()
    try:
        with vecdb.connect(server.url) as db:
            collection = db.create_collection("c", dim=8)
            stop_at = time.monotonic() + rng.uniform(1.0, 2.5)
            batch = 0
            while time.monotonic() < stop_at:
                ids = list(range(batch * 50, batch * 50 + 50))
                collection.upsert(ids, np.full((50, 8), batch, dtype=np.float32), [{"batch": batch}] * 50)
                acknowledged.append(batch)
                batch += 1
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(60)
    assert len(acknowledged) > 3
    with vecdb.open(tmp_path / "db") as db:
        collection = db.get_collection("c")
        for batch in acknowledged:
            records = collection.get(list(range(batch * 50, batch * 50 + 50)), with_vector=True)
            assert len(records) == 50 and records[0].payload == {"batch": batch}
            assert np.all(np.stack([record.vector for record in records]) == batch)
        assert collection.count() in (50 * len(acknowledged), 50 * len(acknowledged) + 50)
