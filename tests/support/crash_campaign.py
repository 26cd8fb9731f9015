"""The writer of the kill -9 campaign (tests/engine/test_crash_campaign.py): runs a
seeded random script of operations covering every write path over a
database of several collections, reporting each operation before it starts
and after it returned, until it is killed.

    python -m tests.support.crash_campaign zygote
    python -m tests.support.crash_campaign run PATH BACKUPS SEED RUN FIRST_OP REPORT [--focus KIND]
                                       [--crash-at N] [--crash-at-commit N] [--max-ops N]
    python -m tests.support.crash_campaign observe PATH

``run`` writes JSON lines to the REPORT file, each with one ``os.write``
(nothing is lost or torn by a kill once the call returned):

- ``["opened"]`` once the database and every collection's index are loaded;
- ``["begin", number, op]`` before operation ``number`` starts;
- ``["ack", number, result]`` after it returned (what the campaign
  checks is durable);
- ``["crash", probe]`` just before ``--crash-at`` kills the process;
- ``["error", traceback]`` and ``["done"]``: it stopped by itself.

``--focus KIND`` makes most operations of that kind (driving the database
to where the kind can run: enough vectors for training, a collection to
create...). ``--crash-at N`` makes the process SIGKILL itself at the Nth
probe reached inside operations of the focus kind (before and after each
LMDB write transaction, fsync, rename, data-file copy and swap, snapshot
write, training, rotation, index build...): kills at exact points inside
the slow operations, and deterministic, so a seed replays.
``--crash-at-commit N`` kills it right after the Nth LMDB commit inside
operations of the focus kind made its meta page durable, before LMDB
published the commit in lock.mdb and released the write lock (with
:data:`META_WRITE_KILLER` preloaded).

``zygote`` imports everything once and then forks a ``run`` per request
(one JSON line on stdin: ``{"argv": [...], "stderr": path}``), answering
``pid N`` then ``exit STATUS`` on stdout: a run starts in milliseconds,
not the half second of a fresh interpreter, so a campaign affords more
kills. A forked run never inherits an LMDB environment (the zygote opens
none).

``observe`` is a read-only process that stays open across kills: on each
``check`` line on stdin it opens the database (or refreshes its handle),
checks that its indexes agree with what it reads and that an exact search
equals brute force over it, and answers the state it read as one JSON
line; ``close`` closes its handle (while it is open, Database.compact must
refuse: another process has the folder open).

Everything a run writes is a function of the seed, the run number and the
operation number, so the campaign's model can say what must be stored:
vectors come from :func:`vector_of` and payloads from :func:`payload_of`
of (collection, slot, operation number).
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import sys
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import vecdb
from vecdb import collection as collection_module
from vecdb.storage import environment as environment_module
from vecdb.storage import folder_locks

# ---- the database the campaign writes ----


@dataclass(frozen=True)
class Spec:
    """A collection's settings and the slots its ids come from."""

    dim: int
    metric: str
    index: Any
    slots: int
    quantization: Optional[vecdb.PQ] = None
    mrl_dims: Tuple[int, ...] = ()
    rotate: Optional[str] = None

    def create(self, db: vecdb.Database, name: str) -> vecdb.Collection:
        return db.create_collection(name, self.dim, self.metric, index=self.index, quantization=self.quantization,
                                    mrl_dims=list(self.mrl_dims) or None, rotate=self.rotate)


_GRAPH = vecdb.HNSW(M=8, ef_construction=48)
# train_size at its minimum and a PCA rotation at max(1024, 2 * 16) vectors:
# both are learned again and again as the campaign drops and refills them.
_PQ = vecdb.PQ(m=4, rerank=64, train_size=256, iterations=6)
SPECS: Dict[str, Spec] = {
    "hnsw32": Spec(16, "l2", _GRAPH, 900),
    "hnsw16": Spec(12, "cosine", vecdb.HNSW(M=8, ef_construction=48, dtype="float16"), 700),
    "flat": Spec(8, "ip", vecdb.Flat(), 600),
    "pq": Spec(16, "l2", _GRAPH, 600, quantization=_PQ),
    "mrl": Spec(16, "cosine", _GRAPH, 1500, mrl_dims=(4, 8), rotate="pca"),
}
# "scratch" is dropped and created again often, each time as one of these.
SCRATCH = "scratch"
SCRATCH_SPECS = (
    Spec(6, "l2", vecdb.Flat(), 400),
    Spec(6, "ip", vecdb.HNSW(M=6, ef_construction=32, dtype="float16"), 400),
    Spec(6, "l2", vecdb.Flat(), 400, quantization=vecdb.PQ(m=2, rerank=32, train_size=256, iterations=4)),
)
NAMES = (*SPECS, SCRATCH)

PAYLOAD_FIELDS = (("g", "keyword"), ("n", "integer"), ("x", "float"), ("b", "bool"), ("meta.lang", "keyword"),
                  ("tags", "keyword"))
# Narrow filters: a delete by filter removes a few points, not a collection.
DELETE_FILTERS = (
    {"n": {"$lt": 3}},
    {"g": "a", "n": {"$gte": 95}},
    {"tags": "t4", "b": True, "n": {"$lt": 20}},
    {"meta.lang": "de", "x": {"$lt": 10.0}},
)


def spec_of(name: str, variant: int) -> Spec:
    return SCRATCH_SPECS[variant] if name == SCRATCH else SPECS[name]


def user_id(slot: int) -> Any:
    """Ids are integers and strings (``1`` and ``"1"`` would be different)."""
    return slot if slot % 3 else f"s{slot}"


def slot_of(user: Any) -> int:
    return user if isinstance(user, int) else int(user[1:])


def vector_of(name: str, dim: int, slot: int, version: int) -> np.ndarray:
    rng = np.random.default_rng([zlib.crc32(name.encode()), slot, version])
    return rng.standard_normal(dim).astype(np.float32)


def payload_of(slot: int, version: int) -> Dict[str, Any]:
    """The payload a point gets from the upsert numbered ``version``: every
    payload-indexed field always has its index's type."""
    h = zlib.crc32(f"{slot}/{version}".encode())
    payload = {"slot": slot, "v": version, "g": "abcd"[h % 4], "n": (h >> 2) % 100, "b": bool((h >> 9) & 1),
               "meta": {"lang": ("en", "fr", "de")[(h >> 10) % 3]},
               "tags": [f"t{(h >> 12) % 5}", f"t{(h >> 15) % 5}"]}
    if (h >> 20) % 4:
        payload["x"] = ((h >> 22) % 1000) / 7.0
    return payload


# ---- reporting and probes ----


class Reporter:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, *fields: Any) -> None:
        os.write(self._fd, (json.dumps(list(fields)) + "\n").encode())


# An LD_PRELOAD library that counts the process's writes of LMDB meta pages
# (pwrite to the first two pages of a data.mdb: the moment a commit becomes
# durable) and kills it with SIGKILL right after the Nth from the moment
# campaign_arm(N) is called: the commit is on disk, but LMDB has neither
# published it in lock.mdb nor released the write lock.
META_WRITE_KILLER = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static long left, seen;

void campaign_arm(long writes) { left = writes; }
long campaign_meta_writes(void) { return seen; }

static void after_write(int fd, off_t offset) {
    char link[64], target[4096];
    ssize_t n;
    if (offset >= 8192) return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof target - 1);
    if (n < 9) return;
    target[n] = 0;  /* readlink does not terminate it */
    if (strcmp(target + n - 9, "/data.mdb") != 0) return;
    seen++;
    if (left > 0 && --left == 0) kill(getpid(), SIGKILL);
}

#define WRAP(name)                                                              \
    ssize_t name(int fd, const void *buf, size_t count, off_t offset) {         \
        static ssize_t (*real)(int, const void *, size_t, off_t);               \
        if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))       \
            dlsym(RTLD_NEXT, #name);                                            \
        ssize_t written = real(fd, buf, count, offset);                         \
        after_write(fd, offset);                                                \
        return written;                                                         \
    }
WRAP(pwrite)
WRAP(pwrite64)
"""


def build_meta_write_killer(folder: Path) -> Optional[Path]:
    """Compile :data:`META_WRITE_KILLER` in ``folder``; None where it cannot
    work (no C compiler, no /proc)."""
    import shutil
    import subprocess

    if shutil.which("cc") is None or not sys.platform.startswith("linux"):
        return None
    source, library = folder / "meta_write_killer.c", folder / "meta_write_killer.so"
    source.write_text(META_WRITE_KILLER)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True)
    return library


class Probes:
    """Wrap functions on the write paths so that, while an operation of the
    armed kind runs, the Nth call (before or after one of them) kills the
    process with SIGKILL; or, with ``crash_at_commit``, the Nth durable LMDB
    commit (:data:`META_WRITE_KILLER`, preloaded)."""

    def __init__(self, report: Reporter, crash_at: Optional[int], crash_at_commit: Optional[int]) -> None:
        self._report = report
        self._crash_at = crash_at
        self._crash_at_commit = crash_at_commit
        self._killer = ctypes.CDLL(None) if crash_at_commit is not None else None
        self.armed = False
        self.hits = self.commits = 0
        self._commits_before = 0
        if crash_at is not None:
            self._install()

    def arm(self, armed: bool) -> None:
        """Count (and kill) inside what runs until the next disarm()."""
        self.armed = armed
        if armed and self._killer is not None:
            self._commits_before = self._killer.campaign_meta_writes()
            self._killer.campaign_arm(ctypes.c_long(self._crash_at_commit - self.commits))

    def disarm(self) -> None:
        if self.armed and self._killer is not None:
            self._killer.campaign_arm(ctypes.c_long(0))
            self.commits += self._killer.campaign_meta_writes() - self._commits_before
        self.armed = False

    def hit(self, probe: str) -> None:
        if not self.armed:
            return
        self.hits += 1
        if self.hits == self._crash_at:
            self._report("crash", probe)
            os.kill(os.getpid(), signal.SIGKILL)

    def _install(self) -> None:
        import pathlib
        import shutil
        import tempfile

        from vecdb.index import loader as index_loader, prefix_index
        from vecdb.native import pq
        from vecdb.transfer import backup

        targets = [
            (environment_module.Environment, "write", "lmdb write"),
            (environment_module.Environment, "_copy_into", "lmdb copy"),
            (environment_module.Environment, "_grow", "map growth"),
            (folder_locks, "swap_in_if_alone", "data file swap"),
            (os, "fsync", "fsync"),
            (os, "replace", "rename"),
            (tempfile, "mkstemp", "temp file"),
            (tempfile, "mkdtemp", "temp folder"),
            (shutil, "rmtree", "rmtree"),
            (pathlib.Path, "unlink", "unlink"),
            (pq.ProductQuantizer, "train", "pq training"),
            (collection_module, "learn_pca_rotation", "pca rotation"),
            (collection_module, "build_main_index", "main index build"),
            (collection_module, "build_prefix_indexes", "prefix index build"),
            (index_loader, "write_snapshot", "snapshot write"),
            (index_loader, "_fill", "index fill"),
            (prefix_index.IndexSet, "add", "index add"),
            (prefix_index.IndexSet, "delete", "index delete"),
            (prefix_index.IndexSet, "compact", "index compact"),
            (backup, "_describe_copy", "backup manifest"),
            (backup, "_write_archive", "backup archive"),
        ]
        for owner, attribute, probe in targets:
            setattr(owner, attribute, self._wrap(getattr(owner, attribute), probe))

    def _wrap(self, function: Callable, probe: str) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.hit(f"{probe} (before)")
            result = function(*args, **kwargs)
            self.hit(f"{probe} (after)")
            return result
        return wrapper


# ---- the script ----

# Operation kinds, as the campaign counts kills: the write paths.
KINDS = ("open", "upsert", "upsert+train", "upsert+rotation", "delete_ids", "delete_filter", "create_payload_index",
         "drop_payload_index", "train_quantizer", "learn_rotation", "compact", "db_compact", "backup",
         "drop_collection", "create_collection", "reopen")
_WEIGHTS = {"upsert": 30, "delete_ids": 8, "delete_filter": 5, "create_payload_index": 4, "drop_payload_index": 3,
            "train_quantizer": 2, "learn_rotation": 2, "compact": 3, "db_compact": 2, "backup": 2,
            "drop_collection": 2, "create_collection": 3, "reopen": 1}


@dataclass
class Shape:
    """What the script needs to know of a collection to choose operations."""

    count: int
    quantizer_version: int
    rotation_version: int
    prefixes: bool
    payload_indexes: Dict[str, str]
    spec: Spec


@dataclass
class Writer:
    path: str
    backups: str
    rng: random.Random
    focus: Optional[str]
    db: Optional[vecdb.Database] = None
    shapes: Dict[str, Shape] = field(default_factory=dict)

    def open(self) -> None:
        self.db = vecdb.open(self.path)
        for name in self.db.list_collections():
            self.shapes[name] = self.shape(name)

    def shape(self, name: str) -> Shape:
        col = self.db.get_collection(name)
        stats = col.stats()
        variant = next((i for i, spec in enumerate(SCRATCH_SPECS) if has_spec(spec, col)), 0)
        return Shape(stats["count"], (stats["quantization"] or {}).get("quantizer_version", 0),
                     (stats["mrl"] or {}).get("rotation_version", 0), bool(col._indexes.prefixes),
                     dict(stats["payload_indexes"]), spec_of(name, variant))

    # -- choosing --

    def choose(self) -> Dict[str, Any]:
        rng = self.rng
        if self.focus is not None and self.focus != "open" and rng.random() < 0.7:
            op = self._towards(self.focus)
            if op is not None:
                return op
        missing = [name for name in SPECS if name not in self.shapes]
        if missing and rng.random() < 0.7:
            return self._create(rng.choice(missing))
        while True:
            kind = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
            op = self._make(kind)
            if op is not None:
                return op

    def _towards(self, kind: str) -> Optional[Dict[str, Any]]:
        """An operation of ``kind``, or one that brings the database closer
        to where one can run."""
        rng, shapes = self.rng, self.shapes
        if kind in ("upsert+train", "train_quantizer"):
            shape = shapes.get("pq")
            if shape is None:
                return self._create("pq")
            if kind == "upsert+train" and shape.quantizer_version:
                return {"kind": "drop_collection", "c": "pq"}
            if kind == "train_quantizer" and shape.count >= 256:
                return {"kind": "train_quantizer", "c": "pq"}
            return self._upsert("pq", fresh=True, size=rng.randint(40, 120))
        if kind in ("upsert+rotation", "learn_rotation"):
            shape = shapes.get("mrl")
            if shape is None:
                return self._create("mrl")
            if kind == "upsert+rotation" and shape.rotation_version:
                return {"kind": "drop_collection", "c": "mrl"}
            if kind == "learn_rotation" and shape.count >= 16:
                return {"kind": "learn_rotation", "c": "mrl"}
            return self._upsert("mrl", fresh=True, size=rng.randint(100, 260))
        if kind == "create_collection" and all(name in shapes for name in NAMES):
            return {"kind": "drop_collection", "c": rng.choice([SCRATCH, SCRATCH, *SPECS])}
        if kind == "drop_payload_index":
            indexed = [(name, f) for name, shape in shapes.items() for f in shape.payload_indexes]
            if indexed:
                name, indexed_field = rng.choice(indexed)
                return {"kind": "drop_payload_index", "c": name, "field": indexed_field}
            return self._make("create_payload_index")
        if kind in ("upsert", "delete_ids", "delete_filter", "compact") and not shapes:
            return self._create(rng.choice(NAMES))
        return self._make(kind)

    def _make(self, kind: str) -> Optional[Dict[str, Any]]:
        rng, shapes = self.rng, self.shapes
        names = sorted(shapes)
        if kind == "create_collection":
            missing = [name for name in NAMES if name not in shapes]
            return self._create(rng.choice(missing)) if missing else None
        if kind == "db_compact":
            return {"kind": "db_compact"}
        if kind == "reopen":
            return {"kind": "reopen"}
        if kind == "backup":
            return {"kind": "backup"}
        if not names:
            return None
        name = rng.choice(names)
        shape = shapes[name]
        if kind == "upsert":
            return self._upsert(name, fresh=rng.random() < 0.5, size=rng.randint(1, 120))
        if kind == "delete_ids":
            return {"kind": "delete_ids", "c": name, "slots": rng.sample(range(shape.spec.slots), rng.randint(1, 40))}
        if kind == "delete_filter":
            return {"kind": "delete_filter", "c": name, "filter": rng.randrange(len(DELETE_FILTERS))}
        if kind == "create_payload_index":
            indexed_field, index_kind = rng.choice(PAYLOAD_FIELDS)
            return {"kind": kind, "c": name, "field": indexed_field, "index_kind": index_kind}
        if kind == "drop_payload_index":
            candidates = list(shape.payload_indexes) or [rng.choice(PAYLOAD_FIELDS)[0]]
            return {"kind": kind, "c": name, "field": rng.choice(candidates)}
        if kind == "train_quantizer":
            trainable = [n for n in names if shapes[n].spec.quantization and shapes[n].count >= 256]
            return {"kind": kind, "c": rng.choice(trainable)} if trainable else None
        if kind == "learn_rotation":
            rotatable = [n for n in names if shapes[n].spec.rotate and shapes[n].count >= shapes[n].spec.dim]
            return {"kind": kind, "c": rng.choice(rotatable)} if rotatable else None
        if kind == "compact":
            return {"kind": kind, "c": name}
        if kind == "drop_collection":
            return {"kind": kind, "c": SCRATCH if SCRATCH in shapes and rng.random() < 0.6 else name}
        raise AssertionError(kind)

    def _create(self, name: str) -> Dict[str, Any]:
        return {"kind": "create_collection", "c": name,
                "variant": self.rng.randrange(len(SCRATCH_SPECS)) if name == SCRATCH else 0}

    def _upsert(self, name: str, fresh: bool, size: int) -> Dict[str, Any]:
        """An upsert of ``size`` slots (``fresh``: preferring slots not
        stored, so the collection grows), named ``upsert+train`` or
        ``upsert+rotation`` when it will train codebooks or learn the
        rotation on its own."""
        shape, rng = self.shapes[name], self.rng
        slots = rng.sample(range(shape.spec.slots), min(size, shape.spec.slots))
        if fresh:
            col = self.db.get_collection(name)
            stored = {slot_of(record.id) for record in col.get([user_id(s) for s in slots], with_payload=False)}
            slots = [s for s in slots if s not in stored] or slots
        col = self.db.get_collection(name)
        after = shape.count + len(slots) - len(col.get([user_id(s) for s in slots], with_payload=False))
        kind = "upsert"
        spec = shape.spec
        if spec.quantization and not shape.quantizer_version and after >= spec.quantization.train_size:
            kind = "upsert+train"
        if spec.rotate and not shape.prefixes and after >= max(1024, 2 * spec.dim):
            kind = "upsert+rotation"
        return {"kind": kind, "c": name, "slots": slots}

    # -- running --

    def execute(self, op: Dict[str, Any], number: int) -> Dict[str, Any]:
        kind, name = op["kind"], op.get("c")
        db = self.db
        result: Dict[str, Any] = {}
        if kind.startswith("upsert"):
            col = db.get_collection(name)
            col.upsert([user_id(s) for s in op["slots"]],
                       np.stack([vector_of(name, col.dim, s, number) for s in op["slots"]]),
                       [payload_of(s, number) for s in op["slots"]])
            # A graph's points and the training they bring are indexed in the background: wait, so the
            # versions each op reports are its own (a kill may land while the indexer lags, or in its commits).
            col.wait_indexed()
        elif kind == "delete_ids":
            result["deleted"] = db.get_collection(name).delete(ids=[user_id(s) for s in op["slots"]])
        elif kind == "delete_filter":
            result["deleted"] = db.get_collection(name).delete(filter=DELETE_FILTERS[op["filter"]])
        elif kind == "create_payload_index":
            db.get_collection(name).create_payload_index(op["field"], op["index_kind"])
        elif kind == "drop_payload_index":
            db.get_collection(name).drop_payload_index(op["field"])
        elif kind == "train_quantizer":
            db.get_collection(name).train_quantizer()
        elif kind == "learn_rotation":
            db.get_collection(name).learn_rotation()
        elif kind == "compact":
            result["reclaimed"] = db.get_collection(name).compact()
        elif kind == "db_compact":
            try:
                result["saved"] = db.compact()
            except vecdb.errors.StorageLockedError:  # the campaign's observer has the folder open
                result["refused"] = True
        elif kind == "backup":
            result["archive"] = str(db.backup(Path(self.backups) / f"b{number}.tar"))
        elif kind == "drop_collection":
            db.drop_collection(name)
        elif kind == "create_collection":
            spec_of(name, op["variant"]).create(db, name)
        elif kind == "reopen":
            db.close()
            self.db = None
            self.open()
        else:
            raise AssertionError(kind)
        self.shapes.pop(name, None)
        if name is not None and name in self.db.list_collections():
            self.shapes[name] = self.shape(name)
            result["quantizer_version"] = self.shapes[name].quantizer_version
            result["rotation_version"] = self.shapes[name].rotation_version
        return result


def has_spec(spec: Spec, col: vecdb.Collection) -> bool:
    return (spec.dim, spec.metric, spec.index, spec.quantization) == (col.dim, col.metric, col.index,
                                                                      col.quantization)


def run(argv: List[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.support.crash_campaign run")
    for name in ("path", "backups", "seed", "run", "first_op", "report"):
        parser.add_argument(name)
    parser.add_argument("--focus", choices=KINDS)
    parser.add_argument("--crash-at", type=int)
    parser.add_argument("--crash-at-commit", type=int)
    parser.add_argument("--max-ops", type=int)
    args = parser.parse_args(argv)
    report = Reporter(args.report)
    rng = random.Random(f"{args.seed}/{args.run}")
    # Snapshots every few hundred changes, so kills land in them and reopening
    # replays logs; a small first map, so it grows (MapFullError, retry) too.
    collection_module.SNAPSHOT_MIN_CHANGES = rng.choice([60, 200, 600])
    collection_module.SNAPSHOT_SHARE = 0.0
    environment_module.INITIAL_MAP_SIZE = 1 << 20
    probes = Probes(report, args.crash_at, args.crash_at_commit)
    writer = Writer(args.path, args.backups, rng, args.focus)
    try:
        probes.arm(args.focus == "open")
        writer.open()
        probes.disarm()
        report("opened")
        number = int(args.first_op)
        while args.max_ops is None or number < int(args.first_op) + args.max_ops:
            op = writer.choose()
            report("begin", number, op)
            hits_before, commits_before = probes.hits, probes.commits
            probes.arm(op["kind"] == args.focus)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = writer.execute(op, number)
            probes.disarm()
            result["probes"] = probes.hits - hits_before
            result["commits"] = probes.commits - commits_before
            result["warnings"] = [str(warning.message) for warning in caught
                                  if "rebuilding its index" not in str(warning.message)]
            report("ack", number, result)
            number += 1
        writer.db.close()
        report("done")
    except BaseException:
        report("error", traceback.format_exc())
        raise


def true_scores(vectors: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """Scores as hits report them, in float64."""
    rows, q = vectors.astype(np.float64), query.astype(np.float64)
    if metric == "l2":
        return np.sqrt(((rows - q) ** 2).sum(axis=1))
    if metric == "ip":
        return rows @ q
    return (rows @ q) / (np.linalg.norm(rows, axis=1) * np.linalg.norm(q))


def scroll_all(col: vecdb.Collection, **options: Any) -> List[vecdb.Record]:
    """Every record ``col.scroll(**options)`` pages through."""
    records, cursor = [], None
    while True:
        page, cursor = col.scroll(limit=97, cursor=cursor, **options)
        records += page
        if cursor is None:
            return records


def observed_state(db: vecdb.Database) -> Dict[str, Any]:
    """What a read-only handle sees, checked on its own: each collection's
    points (slot -> version), model versions and payload indexes; its
    indexes hold exactly the stored labels and an exact search finds what
    brute force over the stored vectors finds."""
    state = {}
    for name in db.list_collections():
        col = db.get_collection(name)
        records = scroll_all(col, with_vector=True)
        with col._environment.read() as txn:
            stored = set(col._store.all_labels(txn).tolist())
        for part in col._indexes.parts:
            assert set(part.labels().tolist()) == stored, f"{name}: a refreshed index disagrees with LMDB"
        exact = not (col.quantization and col._indexes.quantizer_version) and not (
            isinstance(col.index, vecdb.HNSW) and col.index.dtype == "float16")
        if records and exact:
            matrix = np.stack([record.vector for record in records])
            query = matrix[len(records) // 2] + np.float32(0.01)
            scores = true_scores(matrix, query, col.metric)
            best = np.sort(scores if col.metric == "l2" else -scores)[:10]
            hits = col.search(query, k=10, plan=vecdb.plans.Scan(), with_payload=False)
            got = np.sort([h.score if col.metric == "l2" else -h.score for h in hits])
            assert np.allclose(got, best, atol=2e-4, rtol=2e-4), f"{name}: a refreshed Scan is not exact"
        stats = col.stats()
        state[name] = {"points": {str(slot_of(r.id)): r.payload["v"] for r in records},
                       "quantizer_version": (stats["quantization"] or {}).get("quantizer_version", 0),
                       "rotation_version": (stats["mrl"] or {}).get("rotation_version", 0),
                       "payload_indexes": stats["payload_indexes"], "index_source": stats["index_source"]}
    return state


def observe(path: str) -> None:
    """The read-only observer (see the module docstring)."""
    db = None
    for line in sys.stdin:
        try:
            if line.strip() == "close":
                if db is not None:
                    db.close()
                db, answer = None, {}
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if db is None:
                        db = vecdb.open(path, read_only=True)
                    else:
                        db.refresh()
                    answer = {"state": observed_state(db)}
        except Exception:  # noqa: BLE001 - answered to the campaign
            answer = {"error": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


def zygote() -> None:
    """Fork a run per request line on stdin (see the module docstring)."""
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                null = os.open(os.devnull, os.O_RDWR)
                errors = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(errors, 2)
                sys.stdout = sys.stderr = os.fdopen(2, "w", buffering=1)
                run(request["argv"])
            except BaseException:  # noqa: BLE001 - reported by run() and the exit status
                traceback.print_exc()
                status = 1
            finally:
                os._exit(status)
        print("pid", pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print("exit", os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["zygote"]:
        zygote()
    elif sys.argv[1:2] == ["run"]:
        run(sys.argv[2:])
    elif sys.argv[1:2] == ["observe"]:
        observe(sys.argv[2])
    else:
        sys.exit(__doc__)
