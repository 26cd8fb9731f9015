"""Helper processes for the file-damage campaign (tests/engine/test_damage_campaign.py).

    python -m tests.support.damage_probe build FOLDER ARCHIVE   # the reference database and its backup
    python -m tests.support.damage_probe zygote                 # forks one probe per request line on stdin

A probe opens a (possibly damaged) database, or restores a (possibly
damaged) backup archive first, and runs every kind of read on every
collection, recording for each one its answer or the exception it raised.
The zygote has imported vecdb and numpy but opened nothing, so forking it
costs nothing and breaks no rule (an LMDB environment must not cross a
fork); it reports how each probe ended: an exit status, a signal (a crash),
or a hang (killed after the timeout).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # a forked child must not wait on a parent's BLAS threads

import hashlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Dict, List  # noqa: E402

import numpy as np  # noqa: E402

import vecdb  # noqa: E402
from vecdb import errors  # noqa: E402
from vecdb.plans import Scan  # noqa: E402

DIM = 16
QUERIES = np.random.default_rng(99).standard_normal((4, DIM)).astype(np.float32)


def build(folder: Path, archive: Path) -> None:
    """Collections that use every stored structure: HNSW with payload
    indexes, deletes and replaced points; PQ codebooks and a PCA rotation
    (stored in LMDB) with prefix indexes; a Flat collection."""
    rng = np.random.default_rng(7)
    with vecdb.open(folder) as db:
        docs = db.create_collection("docs", dim=DIM, metric="l2", index=vecdb.HNSW(M=8, ef_construction=40),
                                    mrl_dims=[8])
        docs.create_payload_index("g", "keyword")
        docs.upsert([f"d{i}" for i in range(600)], rng.standard_normal((600, DIM)),
                    [{"g": "abc"[i % 3], "n": i, "text": f"point {i}"} for i in range(600)])
        docs.delete(ids=[f"d{i}" for i in range(0, 600, 17)])
        docs.upsert([f"d{i}" for i in range(1, 60, 4)], rng.standard_normal((15, DIM)),
                    [{"g": "b", "n": -i} for i in range(15)])
        pq = db.create_collection("pq", dim=DIM, metric="cosine", quantization=vecdb.PQ(m=4, train_size=256),
                                  mrl_dims=[8], rotate="pca")
        pq.upsert(list(range(1100)), rng.standard_normal((1100, DIM)), [{"n": i} for i in range(1100)])
        pq.wait_indexed()  # trains its codebooks and rotation
        flat = db.create_collection("flat", dim=DIM, metric="ip", index=vecdb.Flat())
        flat.upsert(list(range(300)), rng.standard_normal((300, DIM)), [{"g": "ab"[i % 2]} for i in range(300)])
        flat.create_payload_index("g", "keyword")
        db.backup(archive)
    with vecdb.open(folder) as db:
        db.compact()  # no stale copies of values in free pages: the campaign finds stored models by their bytes


def stored_models(folder: Path) -> Dict[str, bytes]:
    """The stored (sealed) PQ codebooks and PCA rotation of collection pq."""
    with vecdb.open(folder, read_only=True) as db:
        store = db.get_collection("pq")._store
        with db._environment.read() as txn:
            return {name: txn.get(name.encode(), db=store.quantizer) for name in ("codebooks", "rotation")}


def _vector_digest(vector: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()[:16]


def _hits(hits: List[Any]) -> List[Dict[str, Any]]:
    return [{"id": hit.id, "score": round(float(hit.score), 4), "payload": hit.payload,
             "vector": None if hit.vector is None else hit.vector.tolist()} for hit in hits]


def _records(records: List[Any]) -> List[Any]:
    return [[record.id, record.payload, None if record.vector is None else _vector_digest(record.vector)]
            for record in records]


def _scroll_all(col: Any) -> List[Any]:
    records, cursor, pages = [], None, 0
    while True:
        page, cursor = col.scroll(limit=97, cursor=cursor, with_vector=True)
        records += _records(page)
        pages += 1
        if cursor is None or pages > 1000:
            return records


def _operations(db: Any) -> Dict[str, Callable[[], Any]]:
    """Every read, by name; the exact ones (Scan plans, counts, gets,
    scrolls) must answer as the undamaged database does; the approximate
    ones (graph searches) must answer with true records and scores."""
    operations: Dict[str, Callable[[], Any]] = {"list": lambda: db.list_collections()}
    for name in ("docs", "pq", "flat"):
        col = lambda name=name: db.get_collection(name)  # noqa: E731 - loaded lazily, inside each operation
        exact_plan = None if name == "pq" else Scan()  # a PQ scan is exact only in its re-rank
        operations.update({
            f"{name}.count": lambda col=col: col().count(),
            f"{name}.count_indexed": lambda col=col: col().count(filter={"g": "b"}),
            f"{name}.count_scanned": lambda col=col: col().count(filter={"n": {"$lt": 300}}),
            f"{name}.get": lambda col=col: _records(col().get(list(range(1100)) + [f"d{i}" for i in range(600)],
                                                                with_vector=True)),
            f"{name}.scroll": lambda col=col: _scroll_all(col()),
            f"{name}.graph": lambda col=col: [_hits(row) for row in col().search(QUERIES, k=8, with_vector=True)],
            f"{name}.filtered": lambda col=col: [_hits(row) for row in col().search(QUERIES, k=8, filter={"g": "b"},
                                                                                    with_vector=True)],
        })
        if exact_plan is not None:
            operations[f"{name}.exact"] = lambda col=col, plan=exact_plan: [
                _hits(row) for row in col().search(QUERIES, k=8, plan=plan)]
        if name != "flat":
            operations[f"{name}.prefix"] = lambda col=col: [_hits(row) for row in col().search(QUERIES, k=5, dims=8,
                                                                                               with_vector=True)]
    return operations


def _run(operation: Callable[[], Any]) -> Dict[str, Any]:
    try:
        return {"outcome": "ok", "value": operation()}
    except errors.VecdbError as exc:
        return {"outcome": "vecdb", "error": type(exc).__name__}
    except BaseException as exc:  # noqa: BLE001 - a foreign exception is what the campaign looks for
        return {"outcome": "foreign", "error": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:300],
                "trace": traceback.format_exc()[-1500:]}


def probe(request: Dict[str, Any]) -> Dict[str, Any]:
    folder = Path(request["folder"])
    results: Dict[str, Any] = {}
    if request.get("archive"):
        from vecdb.transfer.backup import restore_backup

        results["restore"] = _run(lambda: restore_backup(request["archive"], folder) and None)
        if results["restore"]["outcome"] != "ok":
            return results
    opened = _run(lambda: vecdb.open(folder, read_only=request["read_only"]))
    results["open"] = {key: value for key, value in opened.items() if key != "value"}
    if opened["outcome"] != "ok":
        return results
    db = opened["value"]
    for name, operation in _operations(db).items():
        results[name] = _run(operation)
    results["close"] = _run(lambda: db.close())
    return results


def zygote() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                result = probe(request)
                Path(request["out"]).write_text(json.dumps(result, default=repr))
                code = 0
            except BaseException:  # noqa: BLE001 - reported by the exit status
                traceback.print_exc()
                code = 3
            os._exit(code)
        print(json.dumps(_wait(pid, request["timeout"])), flush=True)


def _wait(pid: int, timeout: float) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                return {"ended": "signal", "signal": os.WTERMSIG(status)}
            return {"ended": "exit", "code": os.WEXITSTATUS(status)}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"ended": "hang"}
        time.sleep(0.01)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        zygote()
