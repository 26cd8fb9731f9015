"""The vecdb-engine wheel's smoke test. .ci/wheel-smoke runs it with the
python of a fresh virtualenv the wheel was installed into, with no compiler
on PATH: the installed package (not this checkout) is what runs; its native
core has every SIMD level this CPU can run, each finding numpy's nearest
neighbours; a database opens, takes points, finds them, and finds them again
when reopened; ``vecdb serve`` serves a database that ``vecdb.connect``
writes to and searches, and what it acknowledged is there after it stops.

    python .ci/engine_smoke.py
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

import vecdb
from vecdb.errors import ServerError

DIM = 16
POINTS = 500
SERVER_START_SECONDS = 60
SERVER_STOP_SECONDS = 60


def nearest(vectors: np.ndarray, query: np.ndarray, k: int, rows: Optional[np.ndarray] = None) -> List[int]:
    """The oracle: the ``k`` rows (of ``rows``, default all) closest to ``query`` in L2, in float64."""
    rows = np.arange(len(vectors)) if rows is None else rows
    distances = ((vectors[rows].astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1)
    return rows[np.argsort(distances, kind="stable")[:k]].tolist()


def check_installed() -> None:
    installed = Path(sysconfig.get_paths()["platlib"]).resolve()
    package = Path(vecdb.__file__).resolve().parent
    assert package.parent == installed, f"vecdb imported from {package}, not from the virtualenv's {installed}"
    core = next(package.glob("_core.*.so"), None)
    assert core is not None, f"no native core in {package}"
    print(f"installed: {package} (version {vecdb.__version__}, native core {core.name})")


def check_simd_levels(vectors: np.ndarray, queries: np.ndarray) -> None:
    """Each level the CPU can run is in the wheel (none is compiled out) and
    finds what numpy finds; the default is the fastest."""
    features = vecdb.cpu_features()
    runnable = ["portable"]
    if features["avx2"] and features["fma"] and features["f16c"]:
        runnable.append("avx2")
        if features["avx512f"]:
            runnable.append("avx512")
    print(f"cpu features: {features}")
    assert vecdb.simd_levels() == runnable, f"the wheel runs {vecdb.simd_levels()}, this CPU can run {runnable}"
    assert vecdb.simd_level() == runnable[-1]
    expected = [nearest(vectors, query, 10) for query in queries]
    try:
        for level in runnable:
            vecdb.set_simd_level(level)
            ids, _ = vecdb.knn(vectors, queries, k=10, metric="l2")
            assert ids.tolist() == expected, f"{level} kernels disagree with numpy"
    finally:
        vecdb.set_simd_level(runnable[-1])


def check_embedded(folder: Path, vectors: np.ndarray, queries: np.ndarray) -> None:
    even = np.arange(0, POINTS, 2)
    with vecdb.open(folder) as db:
        points = db.create_collection("smoke", dim=DIM, metric="l2", index=vecdb.Flat())
        points.upsert(list(range(POINTS)), vectors, [{"parity": i % 2} for i in range(POINTS)])
        for query in queries:
            assert [hit.id for hit in points.search(query, k=10)] == nearest(vectors, query, 10)
    with vecdb.open(folder) as db:
        points = db.get_collection("smoke")
        assert points.count() == POINTS
        for query in queries:
            assert [hit.id for hit in points.search(query, k=10)] == nearest(vectors, query, 10)
            hits = points.search(query, k=10, filter={"parity": 0})
            assert [hit.id for hit in hits] == nearest(vectors, query, 10, rows=even)
            assert all(hit.payload == {"parity": 0} for hit in hits)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        try:
            with vecdb.connect(url) as db:
                db.list_collections()
            return
        except ServerError:
            if server.poll() is not None:
                raise SystemExit(f"vecdb serve exited with {server.returncode} while starting")
            if time.monotonic() > deadline:
                raise SystemExit(f"vecdb serve did not answer at {url} within {SERVER_START_SECONDS} s")
            time.sleep(0.2)


def check_served(folder: Path, vectors: np.ndarray, queries: np.ndarray) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "vecdb"), "serve", "--path", str(folder), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command)
    try:
        wait_until_serving(url, server)
        with vecdb.connect(url) as db:
            points = db.create_collection("served", dim=DIM, metric="l2", index=vecdb.Flat())
            points.upsert(list(range(POINTS)), vectors)
            for query in queries:
                assert [hit.id for hit in points.search(query, k=10)] == nearest(vectors, query, 10)
    finally:
        server.terminate()
        server.wait(timeout=SERVER_STOP_SECONDS)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again
    # so the process ends the way a terminated one does.
    assert server.returncode in (0, -signal.SIGTERM), f"vecdb serve exited with {server.returncode} on SIGTERM"
    with vecdb.open(folder) as db:  # the server let go of the folder, and kept what it acknowledged
        points = db.get_collection("served")
        assert points.count() == POINTS
        assert [hit.id for hit in points.search(queries[0], k=10)] == nearest(vectors, queries[0], 10)


def main() -> None:
    rng = np.random.default_rng(20)
    vectors = rng.standard_normal((POINTS, DIM)).astype(np.float32)
    queries = rng.standard_normal((8, DIM)).astype(np.float32)
    check_installed()
    check_simd_levels(vectors, queries)
    with tempfile.TemporaryDirectory(prefix="vecdb-smoke-") as folder:
        check_embedded(Path(folder) / "embedded", vectors, queries)
        print("embedded: open, upsert, search, reopen, filtered search: ok")
        check_served(Path(folder) / "served", vectors, queries)
        print("served: vecdb serve, vecdb.connect upsert and search, stop, reopen: ok")


if __name__ == "__main__":
    main()
