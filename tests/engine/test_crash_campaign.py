"""The kill -9 campaign: a writer (tests/support/crash_campaign.py) runs a seeded
random script over every write path of a database with several kinds of
collections, and is killed with SIGKILL at random moments, at random
moments inside chosen operations, at exact probe points inside them, and
right after one of their LMDB commits became durable but before LMDB
published it (an LD_PRELOAD library counting meta-page writes).
After each kill the database is reopened (read-only, then as the writer)
and checked against a model of what the writer acknowledged:

- every acknowledged operation's effect is there: points with their exact
  vectors and payloads, deleted ones gone (and delete's count right),
  payload indexes, codebooks and rotations as trained, collections dropped
  and created;
- the operation in flight is all or nothing: the state equals the model
  before it or after it (never half a batch);
- the in-memory indexes agree with LMDB (labels, codebooks, rotation),
  exact searches equal brute force over the stored points, graph and
  funnel searches reach a recall bound, filtered counts, scrolls and
  searches equal a brute-force filter over the stored payloads;
- an acknowledged backup restores to the state at its time, and an
  archive written but not acknowledged is complete too;
- nothing temporary is left in the database folder after the next open,
  and no named database or snapshot of a dropped collection;
- the next writer continues (the next run) and a last run ends cleanly;
- a read-only process that stays open across kills (half the cycles)
  refreshes to the same state, with indexes agreeing with LMDB, and
  meanwhile Database.compact refuses (another process has the folder open).

``make test`` runs a small campaign on a fixed seed; ``make test-slow``
one of 520 kills on the seed it prints (VECDB_TEST_SEED), with a table of
kills per operation in flight. A failure names the seed and the kill.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
import pytest

import vecdb
from vecdb.transfer.backup import restore_backup
from vecdb.payload_fields import MISSING, split_path, value_at
from vecdb.index.snapshot import SNAPSHOT_FOLDER
from vecdb.storage.catalog import database_names
from vecdb.storage.format import DATABASE_ID_KEY, FORMAT_KEY
from tests.support import crash_campaign as writer
from tests.support.crash_campaign import (DELETE_FILTERS, KINDS, SCRATCH, payload_of, scroll_all, slot_of, spec_of, true_scores,
                                  user_id)

ROOT = Path(__file__).resolve().parents[2]
K = 10
# Operations that always commit to LMDB (the others may not: a backup, a
# compaction or a reopen with nothing to snapshot).
COMMITTING = {"upsert", "upsert+train", "upsert+rotation", "delete_ids", "delete_filter", "create_payload_index",
              "drop_payload_index", "train_quantizer", "learn_rotation", "drop_collection", "create_collection"}
# Filters whose counts, scrolls and searches are checked against brute force.
CHECK_FILTERS = (
    {"g": "a"},
    {"n": {"$lt": 30}},
    {"$or": [{"g": "b"}, {"b": True}]},
    {"x": {"$exists": False}},
    {"x": {"$gte": 50.0}},
    {"tags": "t1"},
    {"meta.lang": "fr", "n": {"$gte": 50}},
    {"g": {"$in": ["c", "d"]}, "b": False},
    {"$not": {"n": {"$ne": 7}}},
    {"g": {"$nin": ["a", "b"]}, "meta.lang": {"$ne": "en"}},
    {"n": {"$gte": 200}},
    *DELETE_FILTERS,
)
# Recall@10 a check's graph and funnel searches must reach together (a few
# queries each; ef and candidates are generous for collections this small).
MIN_RECALL = {"graph": 0.9, "graph-pq": 0.8, "funnel": 0.8, "pq-scan": 0.8}


# ---- the oracle's filter evaluator (the README's semantics) ----


def matches(node: Dict[str, Any], payload: Dict[str, Any]) -> bool:
    for key, condition in node.items():
        if key == "$or":
            ok = any(matches(child, payload) for child in condition)
        elif key == "$and":
            ok = all(matches(child, payload) for child in condition)
        elif key == "$not":
            ok = not matches(condition, payload)
        else:
            ok = _field_matches(value_at(payload, split_path(key)), condition)
        if not ok:
            return False
    return True


def _field_matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, dict) and condition and all(key.startswith("$") for key in condition):
        return all(_operator(value, operator, argument) for operator, argument in condition.items())
    return _equals(value, condition)


def _equals(value: Any, target: Any) -> bool:
    if value is MISSING:
        return False
    if isinstance(value, list) and not isinstance(target, list):
        return any(_equals(element, target) for element in value)
    if isinstance(value, bool) or isinstance(target, bool):  # True is not 1 in a filter
        return type(value) is type(target) and value == target
    return value == target


def _operator(value: Any, operator: str, argument: Any) -> bool:
    if operator == "$eq":
        return _equals(value, argument)
    if operator == "$ne":
        return not _equals(value, argument)
    if operator == "$in":
        return any(_equals(value, choice) for choice in argument)
    if operator == "$nin":
        return not any(_equals(value, choice) for choice in argument)
    if operator == "$exists":
        return (value is not MISSING) == argument
    comparable = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and isinstance(argument, (int, float))) or (isinstance(value, str) and isinstance(argument, str))
    if not comparable:
        return False
    return {"$lt": value < argument, "$lte": value <= argument, "$gt": value > argument,
            "$gte": value >= argument}[operator]


# ---- the model ----


@dataclass
class CollectionModel:
    variant: int = 0
    points: Dict[int, int] = field(default_factory=dict)  # slot -> the number of the upsert that wrote it
    payload_indexes: Dict[str, str] = field(default_factory=dict)
    quantizer_version: int = 0
    rotation_version: int = 0

    def copy(self) -> "CollectionModel":
        return replace(self, points=dict(self.points), payload_indexes=dict(self.payload_indexes))


Model = Dict[str, CollectionModel]
# Per collection, the (quantizer, rotation) versions a state may have.
Versions = Dict[str, Tuple[Set[int], Set[int]]]


def copy_model(model: Model) -> Model:
    return {name: collection.copy() for name, collection in model.items()}


def exact_versions(model: Model) -> Versions:
    return {name: ({c.quantizer_version}, {c.rotation_version}) for name, c in model.items()}


def apply(model: Model, number: int, op: Dict[str, Any]) -> Tuple[Model, Versions, Dict[str, Any]]:
    """The state after operation ``number``: the model, the versions it
    allows (a training inside an upsert may not have committed) and what
    the operation returns."""
    after = copy_model(model)
    versions = exact_versions(model)
    kind, name = op["kind"], op.get("c")
    target = after.get(name)
    returns: Dict[str, Any] = {}
    if kind.startswith("upsert"):
        for slot in op["slots"]:
            target.points[slot] = number
        qv, rv = target.quantizer_version, target.rotation_version
        spec = spec_of(name, target.variant)
        versions[name] = ({qv, qv + 1} if spec.quantization and not qv else {qv},
                          {rv, rv + 1} if spec.rotate and not rv else {rv})
    elif kind in ("delete_ids", "delete_filter"):
        if kind == "delete_ids":
            gone = [slot for slot in op["slots"] if slot in target.points]
        else:
            condition = DELETE_FILTERS[op["filter"]]
            gone = [slot for slot, version in target.points.items() if matches(condition, payload_of(slot, version))]
        for slot in gone:
            del target.points[slot]
        returns["deleted"] = len(gone)
    elif kind == "create_payload_index":
        target.payload_indexes[op["field"]] = op["index_kind"]
    elif kind == "drop_payload_index":
        target.payload_indexes.pop(op["field"], None)
    elif kind == "train_quantizer":
        target.quantizer_version += 1
        versions[name] = ({target.quantizer_version}, {target.rotation_version})
    elif kind == "learn_rotation":
        target.rotation_version += 1
        versions[name] = ({target.quantizer_version}, {target.rotation_version})
    elif kind == "drop_collection":
        del after[name]
        del versions[name]
    elif kind == "create_collection":
        after[name] = CollectionModel(variant=op["variant"])
        versions[name] = ({0}, {0})
    else:
        assert kind in ("compact", "db_compact", "backup", "reopen"), kind
    return after, versions, returns


# ---- observing a database ----


@dataclass
class Observed:
    variant: int
    points: Dict[int, int]
    payload_indexes: Dict[str, str]
    quantizer_version: int
    rotation_version: int


class Vectors:
    """vector_of, remembered (most points outlive many checks)."""

    def __init__(self) -> None:
        self._cache: Dict[Tuple[str, int, int], np.ndarray] = {}

    def __call__(self, name: str, dim: int, slot: int, version: int) -> np.ndarray:
        key = (name, slot, version)
        vector = self._cache.get(key)
        if vector is None:
            if len(self._cache) > 400_000:
                self._cache.clear()
            vector = self._cache[key] = writer.vector_of(name, dim, slot, version)
        return vector


def observe(db: vecdb.Database, vectors: Vectors, checks: Counter) -> Dict[str, Observed]:
    """Every collection's points, read back and checked record by record:
    the id is its slot's, the payload and vector exactly what the upsert
    that wrote them (named in the payload) gave."""
    state = {}
    for description in db.describe():
        name = description["name"]
        assert name in writer.NAMES, f"unknown collection {name!r}"
        col = db.get_collection(name)
        variant = next((i for i, spec in enumerate(writer.SCRATCH_SPECS) if writer.has_spec(spec, col)), 0) \
            if name == SCRATCH else 0
        spec = spec_of(name, variant)
        assert writer.has_spec(spec, col), f"collection {name!r} has settings {col!r}, not {spec}"
        points: Dict[int, int] = {}
        for record in scroll_all(col, with_vector=True):
            slot, version = slot_of(record.id), record.payload.get("v")
            assert record.id == user_id(slot), f"{name}: unexpected id {record.id!r}"
            assert slot not in points, f"{name}: id {record.id!r} listed twice"
            assert record.payload == payload_of(slot, version), \
                f"{name}: point {record.id!r} has payload {record.payload}"
            assert np.array_equal(record.vector, vectors(name, spec.dim, slot, version)), \
                f"{name}: point {record.id!r} (written by op {version}) has another vector"
            points[slot] = version
        assert col.count() == len(points) == description["count"], f"{name}: count disagrees with a scroll"
        checks["records read back exactly"] += len(points)
        stats = col.stats()
        state[name] = Observed(variant, points, dict(description["payload_indexes"]),
                               (stats["quantization"] or {}).get("quantizer_version", 0),
                               (stats["mrl"] or {}).get("rotation_version", 0))
    return state


def differences(observed: Dict[str, Observed], model: Model, versions: Versions) -> List[str]:
    """How the observed state differs from the model ([] when it is that state)."""
    found = []
    if set(observed) != set(model):
        found.append(f"collections {sorted(observed)}, expected {sorted(model)}")
    for name in sorted(set(observed) & set(model)):
        seen, expected = observed[name], model[name]
        if seen.variant != expected.variant:
            found.append(f"{name}: created as variant {seen.variant}, expected {expected.variant}")
        if seen.points != expected.points:
            lost = sorted(set(expected.points) - set(seen.points))
            extra = sorted(set(seen.points) - set(expected.points))
            stale = sorted(slot for slot in set(seen.points) & set(expected.points)
                           if seen.points[slot] != expected.points[slot])
            found.append(f"{name}: {len(lost)} points missing (slots {lost[:8]}), {len(extra)} unexpected "
                         f"({extra[:8]}), {len(stale)} from another upsert "
                         f"({[(s, seen.points[s], expected.points[s]) for s in stale[:4]]} slot, stored, expected)")
        if seen.payload_indexes != expected.payload_indexes:
            found.append(f"{name}: payload indexes {seen.payload_indexes}, expected {expected.payload_indexes}")
        quantizer, rotation = versions[name]
        if seen.quantizer_version not in quantizer or seen.rotation_version not in rotation:
            found.append(f"{name}: quantizer/rotation versions {seen.quantizer_version}/{seen.rotation_version}, "
                         f"expected one of {sorted(quantizer)}/{sorted(rotation)}")
    return found


# ---- checks on an open writer ----


def check_collection(col: vecdb.Collection, name: str, model: CollectionModel, vectors: Vectors,
                     rng: random.Random, checks: Counter, recall: Counter) -> None:
    spec = spec_of(name, model.variant)
    # The indexes hold exactly the stored labels, made with the stored models.
    indexes = col._indexes
    with col._environment.read() as txn:
        stored = set(col._store.all_labels(txn).tolist())
        codebooks = col._store.codebooks(txn)
    for part in indexes.parts:
        assert set(part.labels().tolist()) == stored, f"{name}: an index disagrees with LMDB's labels"
    assert indexes.quantizer_version == model.quantizer_version
    assert indexes.rotation_version == (model.rotation_version if spec.rotate else 0)
    prefixes_ready = bool(spec.mrl_dims) and (spec.rotate is None or model.rotation_version > 0)
    assert sorted(indexes.prefixes) == (list(spec.mrl_dims) if prefixes_ready else []), \
        f"{name}: prefix indexes {sorted(indexes.prefixes)} with rotation version {model.rotation_version}"
    if model.quantizer_version:
        assert indexes.main.quantizer.to_bytes() == bytes(codebooks), f"{name}: the index's codebooks are not LMDB's"
    checks["index agrees with LMDB"] += 1

    points = StoredPoints(name, spec, model, vectors)
    query_rng = np.random.default_rng(rng.randrange(2**32))
    queries = query_rng.standard_normal((3, spec.dim)).astype(np.float32)
    if len(points.ids):
        queries = np.vstack([queries, points.matrix[rng.randrange(len(points.ids))]])
    approximate = bool(spec.quantization) and model.quantizer_version > 0
    half = isinstance(spec.index, vecdb.HNSW) and spec.index.dtype == "float16"
    # PQ searches re-rank with the stored float32 vectors: exact scores.
    tolerance = 5e-3 if half and not approximate else 2e-4

    for condition in [None, *rng.sample(CHECK_FILTERS, 3)]:
        allowed = points.allowed(condition)
        if condition is not None:
            assert col.count(filter=condition) == int(allowed.sum()), f"{name}: count(filter={condition})"
            checks["filtered counts equal brute force"] += 1
        rows = col.search(queries, k=K, filter=condition, plan=vecdb.plans.Scan())
        for query, row in zip(queries, rows):
            found = points.check_hits(row, query, allowed, tolerance, condition)
            want = min(K, int(allowed.sum()))
            if approximate:
                recall["pq-scan"] += len(found & points.best(query, allowed))
                recall["pq-scan total"] += want
            else:
                assert len(row) == want, f"{name}: Scan(filter={condition}) returned {len(row)} hits, not {want}"
                best = np.sort(_ordered(true_scores(points.matrix[allowed], query, spec.metric), spec.metric))[:want]
                got = np.sort(_ordered(np.array([h.score for h in row]), spec.metric))
                assert np.allclose(got, best, atol=tolerance, rtol=tolerance), \
                    f"{name}: Scan(filter={condition}) scores {got} are not the best {best}"
            checks["exact searches equal brute force" if not approximate else "PQ scans checked"] += 1
        # Whatever plan the planner picks, hits match the filter and carry their records.
        for query, row in zip(queries, col.search(queries, k=K, filter=condition)):
            points.check_hits(row, query, allowed, tolerance, condition)
            checks["planned searches consistent"] += 1

    condition = rng.choice(CHECK_FILTERS)
    listed = [record.id for record in scroll_all(col, filter=condition)]
    assert len(set(listed)) == len(listed), f"{name}: scroll(filter={condition}) listed a point twice"
    assert set(listed) == {points.ids[i] for i in np.flatnonzero(points.allowed(condition))}, \
        f"{name}: scroll(filter={condition})"
    checks["filtered scrolls equal brute force"] += 1

    plans = {}
    if isinstance(spec.index, vecdb.HNSW) and (not spec.quantization or approximate):
        plans["graph-pq" if approximate else "graph"] = vecdb.plans.Graph(ef=256)
    if prefixes_ready:
        # 400 candidates: on these random vectors (up to 1,500, no MRL structure) a
        # shortlist of 200 by 8 of 16 dimensions holds 93% of the top 10 on
        # average, and four queries fell below the bound in ~1% of checks
        # (numpy, the ideal funnel); 400 hold 99%, below it in ~0.004%.
        plans["funnel"] = vecdb.plans.Funnel(dims=spec.mrl_dims[-1], candidates=400)
    everything = np.ones(len(points.ids), dtype=bool)
    for label, plan in plans.items():
        for query, row in zip(queries, col.search(queries, k=K, plan=plan)):
            found = points.check_hits(row, query, everything, tolerance, None)
            recall[label] += len(found & points.best(query, everything))
            recall[label + " total"] += min(K, len(points.ids))
            checks[f"{label} searches checked"] += 1


class StoredPoints:
    """A collection's points as the model says they are stored, and the
    brute-force answers to searches over them."""

    def __init__(self, name: str, spec: writer.Spec, model: CollectionModel, vectors: Vectors) -> None:
        self.name, self.metric = name, spec.metric
        slots = sorted(model.points)
        self.ids = [user_id(slot) for slot in slots]
        self.payloads = [payload_of(slot, model.points[slot]) for slot in slots]
        self.matrix = np.stack([vectors(name, spec.dim, slot, model.points[slot]) for slot in slots]) if slots \
            else np.zeros((0, spec.dim), np.float32)
        self._position = {user: i for i, user in enumerate(self.ids)}

    def allowed(self, condition: Optional[Dict[str, Any]]) -> np.ndarray:
        return np.array([condition is None or matches(condition, p) for p in self.payloads], dtype=bool)

    def best(self, query: np.ndarray, allowed: np.ndarray) -> Set[int]:
        """Row numbers of the K best allowed rows."""
        rows = np.flatnonzero(allowed)
        order = np.argsort(_ordered(true_scores(self.matrix[rows], query, self.metric), self.metric), kind="stable")
        return set(rows[order[:K]].tolist())

    def check_hits(self, row: List[vecdb.Hit], query: np.ndarray, allowed: np.ndarray, tolerance: float,
                   condition: Optional[Dict[str, Any]]) -> Set[int]:
        """Every hit is a distinct stored point the filter allows, with its
        own payload and its true score; returns their row numbers."""
        name, found = self.name, set()
        for hit in row:
            i = self._position.get(hit.id)
            assert i is not None, f"{name}: hit {hit.id!r} is not a stored point"
            assert allowed[i], f"{name}: hit {hit.id!r} with payload {self.payloads[i]} does not match {condition}"
            assert i not in found, f"{name}: hit {hit.id!r} twice"
            assert hit.payload == self.payloads[i], \
                f"{name}: hit {hit.id!r} carries payload {hit.payload}, not {self.payloads[i]}"
            score = true_scores(self.matrix[i:i + 1], query, self.metric)[0]
            assert abs(hit.score - score) <= tolerance * max(1.0, abs(score)), \
                f"{name}: hit {hit.id!r} scored {hit.score}, its true score is {score}"
            found.add(i)
        return found


def _ordered(scores: np.ndarray, metric: str) -> np.ndarray:
    """Scores as distances: smaller is better."""
    return scores if metric == "l2" else -scores


def check_folder(db: vecdb.Database, path: Path, checks: Counter) -> None:
    """After a writer's open: nothing temporary left, no named database or
    snapshot that no collection owns."""
    leftovers = [p.name for p in path.iterdir() if p.name.startswith(".")]
    leftovers += [f"{SNAPSHOT_FOLDER}/{p.name}" for p in (path / SNAPSHOT_FOLDER).glob(".*")]
    assert not leftovers, f"temporary files left in the database folder after the next open: {leftovers}"
    keys = {db.get_collection(name)._store.key for name in db.list_collections()}
    orphans = [p.name for p in (path / SNAPSHOT_FOLDER).glob("*") if p.name.split(".")[0] not in keys]
    assert not orphans, f"snapshots of dropped collections left after the next open: {orphans}"
    expected = {FORMAT_KEY, DATABASE_ID_KEY} | {f"collection:{name}".encode() for name in db.list_collections()}
    expected |= {database for key in keys for database, _ in database_names(key)}
    assert set(db._environment.database_names()) == expected, "named databases no collection owns"
    checks["folder clean after open"] += 1


def check_restored(archive: Path, model: Model, scratch: Path, vectors: Vectors, checks: Counter) -> None:
    """The archive restores, and holds exactly the state ``model``."""
    restored = scratch / f"restored-{archive.stem}"
    shutil.rmtree(restored, ignore_errors=True)
    restore_backup(archive, restored)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*rebuilding its index.*")
            with vecdb.open(restored, read_only=True) as db:
                found = differences(observe(db, vectors, checks), model, exact_versions(model))
                assert not found, f"backup {archive.name} does not hold the state at its time: {found}"
                for name in db.list_collections():
                    col = db.get_collection(name)
                    with col._environment.read() as txn:
                        stored = set(col._store.all_labels(txn).tolist())
                    assert all(set(part.labels().tolist()) == stored for part in col._indexes.parts)
    finally:
        shutil.rmtree(restored, ignore_errors=True)
    checks["backups restored and equal to their time"] += 1


# ---- running the writer ----


def _preloading(library: Path, **variables: str) -> Dict[str, str]:
    """This process's environment with ``library`` preloaded after what it
    preloads already (make sanitize preloads the sanitizer runtimes, which
    must come first), and ``variables``."""
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD", ""), str(library)]))
    return dict(os.environ, **variables, LD_PRELOAD=preload)


def _helper(*argv: str, preload: Optional[Path] = None) -> subprocess.Popen:
    """A tests/support/crash_campaign.py process taking commands on stdin."""
    threads = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    environment = dict(os.environ, **threads) if preload is None else _preloading(preload, **threads)
    return subprocess.Popen([sys.executable, "-m", "tests.support.crash_campaign", *argv], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=environment)


class Observer:
    """tests/support/crash_campaign.py's read-only observer, open across kills."""

    def __init__(self, path: Path) -> None:
        self._process = _helper("observe", str(path))

    def ask(self, command: str) -> Dict[str, Any]:
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, "the read-only observer died"
        answer = json.loads(line)
        assert "error" not in answer, f"the read-only observer failed: {answer['error']}"
        return answer

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=60)


class Zygote:
    """tests/support/crash_campaign.py's zygote: forks writer runs on request."""

    def __init__(self, preload: Optional[Path]) -> None:
        self._process = _helper("zygote", preload=preload)

    def start(self, argv: List[str], stderr: Path) -> int:
        self._process.stdin.write(json.dumps({"argv": argv, "stderr": str(stderr)}) + "\n")
        self._process.stdin.flush()
        word, pid = self._process.stdout.readline().split()
        assert word == "pid"
        return int(pid)

    def exited(self, timeout: float) -> bool:
        return bool(select.select([self._process.stdout], [], [], timeout)[0])

    def exit_status(self) -> int:
        line = self._process.stdout.readline().split()
        assert line and line[0] == "exit", f"the zygote died ({line})"
        return int(line[1])

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=60)


@dataclass
class Run:
    """What one writer run reported."""

    lines: List[list] = field(default_factory=list)
    times: List[float] = field(default_factory=list)
    status: Optional[int] = None
    killed_by_us: bool = False

    def ops(self) -> Tuple[List[Tuple[int, dict, dict]], Optional[Tuple[int, dict]]]:
        """Acknowledged operations in order, and the one in flight."""
        begun: Dict[int, dict] = {}
        acked = []
        for line in self.lines:
            if line[0] == "begin":
                begun[line[1]] = line[2]
            elif line[0] == "ack":
                acked.append((line[1], begun.pop(line[1]), line[2]))
        assert len(begun) <= 1
        return acked, next(iter(begun.items()), None)

    def in_flight(self) -> str:
        acked, pending = self.ops()
        if pending is not None:
            return pending[1]["kind"]
        return "idle" if any(line[0] == "opened" for line in self.lines) else "open"


def _matching(observed: Dict[str, Observed], candidates: List[Tuple[Model, Versions, str]],
              pending: Optional[Tuple[int, dict]]) -> List[str]:
    """Which of the candidate states (before and after the operation in
    flight) the observed state is; at least one."""
    found = [(label, differences(observed, model, versions)) for model, versions, label in candidates]
    matching = [label for label, problems in found if not problems]
    assert matching, ("the reopened database is neither the state before the operation in flight nor "
                      f"after it: {found} (in flight: {pending})")
    return matching


class Campaign:
    """Kill, reopen, check; repeat. Figures are kept for the report."""

    def __init__(self, folder: Path, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.path = folder / "db"
        self.backups = folder / "backups"
        self.backups.mkdir(parents=True)
        self.scratch = folder / "scratch"
        self.scratch.mkdir()
        self.model: Model = {}
        self.next_op = 0
        self.vectors = Vectors()
        self.kills: Counter = Counter()  # (kind in flight, mode)
        self.probes: Counter = Counter()
        self.checks: Counter = Counter()
        self.recall: Counter = Counter()
        self.acked: Counter = Counter()
        self.backup_leftovers: List[str] = []
        self.max_probes: Dict[str, int] = {}
        self.max_commits: Dict[str, int] = {}
        self.durations: Dict[str, List[float]] = defaultdict(list)
        self.runs = 0
        self.killer = writer.build_meta_write_killer(self.scratch)
        self._zygote = Zygote(self.killer)
        self._observer = Observer(self.path)
        self.observing = False

    def close(self) -> None:
        self._zygote.close()
        self._observer.close()

    # -- one cycle --

    def cycle(self, mode: str, focus: Optional[str]) -> None:
        """Run the writer, kill it the ``mode`` way, check the database."""
        if mode == "commit" and (self.killer is None or focus not in COMMITTING):
            mode = "probe"  # no LD_PRELOAD here, or an operation that may commit nothing
        context = f"seed {self.seed}, kill {self.runs + 1} ({mode}, focus {focus})"
        try:
            self._attach_observer(self.rng.random() < 0.5)
        except AssertionError as exc:
            raise AssertionError(f"{context}: before the run: {exc}") from None
        run = self._run(mode, focus, max_ops=None)
        kind = run.in_flight()
        context += f", killed during {kind}" + (", observed" if self.observing else "")
        left = self.scratch / "as-the-kill-left-it"
        shutil.rmtree(left, ignore_errors=True)
        if self.path.exists():
            shutil.copytree(self.path, left)
        try:
            assert run.status == -signal.SIGKILL, f"the writer exited with {run.status}: {self._stderr()}"
            self.kills[kind, mode] += 1
            crash = [line[1] for line in run.lines if line[0] == "crash"]
            if crash:
                self.probes[f"{kind}: {crash[0]}"] += 1
            elif mode == "commit" and not run.killed_by_us:
                self.probes[f"{kind}: lmdb commit (meta page durable, unpublished)"] += 1
            self.check(run)
            if self.observing:
                self._compare_observed()
        except Exception as exc:  # noqa: BLE001 - anything unexpected fails the campaign, with its seed and kill
            raise AssertionError(f"{context}: {type(exc).__name__}: {exc}\n(replay: VECDB_TEST_SEED={self.seed}; "
                                 f"the database as the kill left it is in {left}, the writer's report in "
                                 f"{self.scratch / 'report'})") from None

    def finish(self) -> None:
        """A last run of a few operations that ends with close(), checked."""
        run = self._run("clean", None, max_ops=12)
        try:
            assert run.status == 0 and run.lines[-1] == ["done"], f"the last run failed: {self._stderr()}"
            self.check(run)
            with vecdb.open(self.path) as db:
                for name in db.list_collections():
                    source = db.get_collection(name).stats()["index_source"]
                    assert source in ("snapshot", "rebuild"), f"{name}: opened from {source} after a clean close"
        except AssertionError as exc:
            raise AssertionError(f"seed {self.seed}, the final clean run: {exc}") from None

    def _attach_observer(self, attach: bool) -> None:
        """Open (or refresh) the observer's read-only handle for the next
        run, checking what it sees; or close it."""
        was_observing, self.observing = self.observing, attach and (self.path / "data.mdb").exists()
        if self.observing and not was_observing:  # else it was compared after the last run
            self._compare_observed()
        elif not self.observing:
            self._observer.ask("close")

    def _compare_observed(self) -> None:
        state = self._observer.ask("check")["state"]
        observed = {name: Observed(self.model[name].variant if name in self.model else -1,
                                   {int(slot): version for slot, version in seen["points"].items()},
                                   seen["payload_indexes"], seen["quantizer_version"], seen["rotation_version"])
                    for name, seen in state.items()}
        found = differences(observed, self.model, exact_versions(self.model))
        assert not found, f"the read-only observer refreshed to another state: {found}"
        self.checks["observer refreshed to the same state across kills"] += 1

    def _stderr(self) -> str:
        text = (self.scratch / "stderr").read_text() if (self.scratch / "stderr").exists() else ""
        return text[-3000:]

    def _run(self, mode: str, focus: Optional[str], max_ops: Optional[int]) -> Run:
        self.runs += 1
        report, stderr = self.scratch / "report", self.scratch / "stderr"
        report.unlink(missing_ok=True)
        stderr.unlink(missing_ok=True)
        argv = [str(self.path), str(self.backups), str(self.seed), str(self.runs), str(self.next_op), str(report)]
        if focus is not None:
            argv += ["--focus", focus]
        if mode == "probe":
            argv += ["--crash-at", str(self.rng.randint(1, self.max_probes.get(focus, 12)))]
        if mode == "commit":
            argv += ["--crash-at-commit", str(self.rng.randint(1, self.max_commits.get(focus, 3)))]
        if max_ops is not None:
            argv += ["--max-ops", str(max_ops)]
        kill_at = {"early": self.rng.uniform(0.0, 0.3),
                   "timer": self.rng.choice([0.05, 0.3, 1.0, 3.0]) * self.rng.random()}.get(mode)
        started = time.monotonic()
        pid = self._zygote.start(argv, stderr)
        run, offset, opened_at, kill_time = Run(), 0, None, None
        deadline = started + (15 if mode in ("probe", "commit", "during") else 120)
        while True:
            exited = self._zygote.exited(0.002)
            offset = self._read(report, offset, run)
            now = time.monotonic()
            if exited:
                run.status = self._zygote.exit_status()
                self._read(report, offset, run)
                break
            if opened_at is None and any(line[0] == "opened" for line in run.lines):
                opened_at = now
            if kill_time is None:
                if mode == "early":
                    kill_time = started + kill_at
                elif mode == "timer" and opened_at is not None:
                    kill_time = opened_at + kill_at
                elif mode == "during":
                    acked, pending = run.ops()
                    if pending is not None and pending[1]["kind"] == focus:
                        typical = float(np.median(self.durations[focus])) if self.durations[focus] else 0.02
                        kill_time = run.times[-1] + self.rng.uniform(0.0, 1.2 * typical)
                if now > deadline:
                    kill_time = now  # the probe was not reached in time: kill anyway
            if kill_time is not None and now >= kill_time:
                os.kill(pid, signal.SIGKILL)
                kill_time = float("inf")
                run.killed_by_us = True
        self._learn(run)
        return run

    def _read(self, report: Path, offset: int, run: Run) -> int:
        if not report.exists():
            return offset
        with open(report, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        now = time.monotonic()
        for line in complete.splitlines():
            run.lines.append(json.loads(line))
            run.times.append(now)
        return offset + len(complete)

    def _learn(self, run: Run) -> None:
        """Remember how many probes each kind reaches and how long it takes."""
        begun = {}
        for line, when in zip(run.lines, run.times):
            if line[0] == "begin":
                begun[line[1]] = (line[2]["kind"], when)
            elif line[0] == "ack" and line[1] in begun:
                kind, start = begun.pop(line[1])
                self.durations[kind] = (self.durations[kind] + [when - start])[-50:]
                for counted, most in (("probes", self.max_probes), ("commits", self.max_commits)):
                    if line[2][counted]:
                        most[kind] = max(most.get(kind, 0), line[2][counted])

    # -- checking --

    def check(self, run: Run) -> None:
        acked, pending = run.ops()
        for number, op, result in acked:
            assert number == self.next_op, f"operation {number} reported, {self.next_op} expected"
            after, versions, returns = apply(self.model, number, op)
            assert not result["warnings"], f"op {number} {op['kind']} warned: {result['warnings']}"
            for key, value in returns.items():
                assert result[key] == value, f"op {number} {op} returned {key}={result[key]}, expected {value}"
            if op.get("c") in after:
                target = after[op["c"]]
                quantizer, rotation = versions[op["c"]]
                assert result["quantizer_version"] in quantizer and result["rotation_version"] in rotation, \
                    f"op {number} {op['kind']} left versions {result}, expected {versions[op['c']]}"
                if op["kind"] == "upsert+train":
                    assert result["quantizer_version"] == target.quantizer_version + 1, "the upsert did not train PQ"
                if op["kind"] == "upsert+rotation":
                    assert result["rotation_version"] == target.rotation_version + 1, "the upsert learned no rotation"
                target.quantizer_version = result["quantizer_version"]
                target.rotation_version = result["rotation_version"]
            if op["kind"] == "db_compact":
                assert result.get("refused", False) == self.observing, \
                    "Database.compact " + ("compacted while another process had the folder open" if self.observing
                                           else "refused with no other process open")
                self.checks["compactions refused while a reader is open" if self.observing
                            else "compactions done alone"] += 1
            if op["kind"] == "backup":
                check_restored(Path(result["archive"]), self.model, self.scratch, self.vectors, self.checks)
                Path(result["archive"]).unlink()
            self.model = after
            self.next_op = number + 1
            self.acked[op["kind"]] += 1
        self.checks["acknowledged operations found"] += len(acked)
        candidates = [(self.model, exact_versions(self.model), "before")]
        if pending is not None:
            number, op = pending
            after, versions, _ = apply(self.model, number, op)
            candidates.append((after, versions, "after"))
            if op["kind"] == "backup":
                archive = self.backups / f"b{number}.tar"
                if archive.exists():  # renamed into place before the kill: it must be whole
                    check_restored(archive, self.model, self.scratch, self.vectors, self.checks)
                    archive.unlink()
            self.next_op = number + 1  # its number is never used again, whether it happened or not
        leftovers = [p.name for p in self.backups.iterdir()]
        self.backup_leftovers += leftovers
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*rebuilding its index.*")
            if (self.path / "data.mdb").exists():
                with vecdb.open(self.path, read_only=True) as db:
                    observed = observe(db, self.vectors, self.checks)
                    if leftovers:  # the next backup into the folder removes what the killed one staged
                        archive = db.backup(self.backups)
                        assert list(self.backups.iterdir()) == [archive], \
                            f"a killed backup's staging outlived the next backup: {leftovers}"
                        archive.unlink()
                        self.checks["killed backups' staging removed by the next backup"] += 1
            else:
                observed = {}
            for leftover in self.backups.iterdir():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            matching = _matching(observed, candidates, pending)
            with vecdb.open(self.path) as db:
                if self.observing:
                    # The observer kept lock.mdb open across the kill: a commit the
                    # writer made durable but had not published when it died is
                    # unseen by readers until this writer's open adopts it.
                    observed = observe(db, self.vectors, self.checks)
                    published = _matching(observed, candidates, pending)
                    assert "after" in published or "after" not in matching, "the operation in flight was undone"
                    if published != matching:
                        self.checks["in-flight commits published by the next writer (a reader open across)"] += 1
                    matching = published
                model = next(model for model, _, label in candidates if label == matching[-1])
                self.model = copy_model(model)
                for name, seen in observed.items():
                    self.model[name].quantizer_version = seen.quantizer_version
                    self.model[name].rotation_version = seen.rotation_version
                self.checks["in-flight operation all or nothing"] += 1
                check_folder(db, self.path, self.checks)
                for name, collection_model in sorted(self.model.items()):
                    check_collection(db.get_collection(name), name, collection_model, self.vectors, self.rng,
                                     self.checks, self.recall)
                for label, bound in MIN_RECALL.items():
                    total = self.recall[label + " total"]
                    assert not total or self.recall[label] >= bound * total, \
                        f"{label} recall {self.recall[label] / total:.3f} below {bound}"
                if self.rng.random() < 0.5:
                    # Leave as a killed process would, without the closing
                    # snapshot, so the next run replays the change log too.
                    for collection in db._collections.values():
                        collection._changes_since_snapshot = 0

    # -- figures --

    def table(self) -> str:
        modes = ["probe", "commit", "during", "timer", "early"]
        lines = [f"kill -9 campaign, seed {self.seed}: {sum(self.kills.values())} kills, "
                 f"{self.next_op} operations ({sum(self.acked.values())} acknowledged)",
                 f"{'operation in flight':24}" + "".join(f"{mode:>8}" for mode in modes) + f"{'total':>8}{'acked':>8}"]
        for kind in [*KINDS, "idle"]:
            row = [self.kills[kind, mode] for mode in modes]
            lines.append(f"{kind:24}" + "".join(f"{n:8}" for n in row) + f"{sum(row):8}{self.acked[kind]:8}")
        lines.append("checks passed:")
        lines += [f"  {what}: {n}" for what, n in sorted(self.checks.items())]
        lines.append("recall@10 over the campaign: " + ", ".join(
            f"{label} {self.recall[label] / self.recall[label + ' total']:.3f}"
            for label in MIN_RECALL if self.recall[label + " total"]))
        lines.append(f"probes that killed: {len(self.probes)} distinct")
        lines += [f"  {probe}: {n}" for probe, n in sorted(self.probes.items())]
        if self.backup_leftovers:
            lines.append(f"staging entries killed backups left (each removed by the next backup): "
                         f"{len(self.backup_leftovers)}")
        return "\n".join(lines)

    def kills_in_flight(self, kind: str) -> int:
        return sum(n for (k, _), n in self.kills.items() if k == kind)


def campaign_seed(default: int) -> int:
    return int(os.environ.get("VECDB_TEST_SEED", default))


def run_campaign(folder: Path, seed: int, kills: int, modes: Dict[str, float], capsys) -> Campaign:
    """``kills`` cycles; probe and during kills cycle through every kind of
    operation in a seeded order, so each write path gets its share."""
    campaign = Campaign(folder, seed)
    try:
        order = list(KINDS)
        focus_cycle: List[str] = []
        for _ in range(kills):
            mode = campaign.rng.choices(list(modes), weights=list(modes.values()))[0]
            focus = None
            if mode in ("probe", "commit", "during"):
                if not focus_cycle:
                    focus_cycle = campaign.rng.sample(order, len(order))
                focus = focus_cycle.pop()
                if mode == "during" and focus == "open":
                    mode = "early"
            elif campaign.rng.random() < 0.3:
                focus = campaign.rng.choice(order[1:])
            campaign.cycle(mode, focus)
        campaign.finish()
    finally:
        campaign.close()
        with capsys.disabled():
            print("\n" + campaign.table())
    return campaign


def test_kill_9_campaign_small(tmp_path, capsys):
    """CI: a few kills at exact probe points in every kind of operation,
    and some at random moments."""
    campaign = run_campaign(tmp_path, campaign_seed(20260601), kills=len(KINDS) * 2 + 8,
                            modes={"probe": 0.5, "commit": 0.25, "during": 0.1, "timer": 0.1, "early": 0.05},
                            capsys=capsys)
    assert sum(campaign.kills.values()) >= len(KINDS) * 2 + 8


@pytest.mark.slow
def test_kill_9_campaign(tmp_path, capsys):
    """make test-slow: 520 kills across every write path (each at least 15
    times), at probe points, inside operations and at random moments."""
    campaign = run_campaign(tmp_path, campaign_seed(20260602), kills=520,
                            modes={"probe": 0.3, "commit": 0.2, "during": 0.2, "timer": 0.22, "early": 0.08},
                            capsys=capsys)
    assert sum(campaign.kills.values()) >= 500
    thin = {kind: campaign.kills_in_flight(kind) for kind in KINDS if campaign.kills_in_flight(kind) < 15}
    assert not thin, f"write paths with fewer than 15 kills in flight: {thin} (seed {campaign.seed})"


# ---- what the campaign found, kept as regression tests ----

_KILLED_MID_DROP = """
import os, signal, sys
import numpy as np
import vecdb
from vecdb import database
from vecdb.index import loader as index_loader

def kill(*args):
    os.kill(os.getpid(), signal.SIGKILL)

with vecdb.open(sys.argv[1]) as db:
    db.create_collection("gone", dim=4).upsert(list(range(50)), np.eye(4)[np.arange(50) % 4] + np.arange(50)[:, None])
    mrl = db.create_collection("mrl", dim=16, mrl_dims=[4], rotate="pca")
    mrl.upsert(list(range(1100)), np.random.default_rng(0).standard_normal((1100, 16)))  # learns rotation 1
db = vecdb.open(sys.argv[1])
if sys.argv[2] == "drop":
    database.collection_snapshot_paths = kill  # after the drop's commit, before its files go
    db.drop_collection("gone")
else:
    index_loader.prefix_snapshot_paths = kill  # rotation 2's snapshots written, rotation 1's not yet removed
    db.get_collection("mrl").learn_rotation()
"""


@pytest.mark.parametrize("killed_in", ["drop", "rotation"])
def test_the_next_open_removes_snapshots_a_kill_left(tmp_path, killed_in):
    """Found by the campaign (seed 1001, kill 8: killed in drop_collection
    after its commit): the dropped collection's snapshot files stayed
    forever (a graph's snapshot can be GBs); likewise the prefix snapshots
    of a rotation a kill kept learn_rotation from removing."""
    result = subprocess.run([sys.executable, "-c", _KILLED_MID_DROP, str(tmp_path / "db"), killed_in],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr
    snapshots = tmp_path / "db" / SNAPSHOT_FOLDER
    with vecdb.open(tmp_path / "db") as db:
        keys = {name: db.get_collection(name)._store.key for name in db.list_collections()}
        assert ("gone" in keys) == (killed_in == "rotation")
        left = sorted(path.name for path in snapshots.iterdir())
        mrl = keys["mrl"]
        assert left == sorted([f"{mrl}.hnsw", f"{mrl}.mrl4.r{2 if killed_in == 'rotation' else 1}.hnsw",
                               *([f"{keys['gone']}.hnsw"] if "gone" in keys else [])])
        assert db.get_collection("mrl").stats()["mrl"]["rotation_version"] == (2 if killed_in == "rotation" else 1)


_KILLED_MID_COMPACT = """
import os, signal, sys
import numpy as np
import vecdb
from vecdb.storage import folder_locks

def kill(*args):
    os.kill(os.getpid(), signal.SIGKILL)

db = vecdb.open(sys.argv[1])
col = db.create_collection("c", dim=8)
col.upsert(list(range(2000)), np.random.default_rng(0).standard_normal((2000, 8)))
col.delete(ids=list(range(1000)))
folder_locks.swap_in_if_alone = kill  # the compacted copy is written, not yet swapped in
db.compact()
"""


@pytest.mark.filterwarnings("ignore:.*rebuilding its index")
def test_the_next_open_removes_a_killed_compaction_copy(tmp_path):
    """Found by the campaign (seed 1001, kill 40: killed in db.compact):
    the compacted copy of the whole data file stayed in .compacting/ until
    the next compact()."""
    result = subprocess.run([sys.executable, "-c", _KILLED_MID_COMPACT, str(tmp_path / "db")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert (tmp_path / "db" / ".compacting" / "data.mdb").exists()
    with vecdb.open(tmp_path / "db", read_only=True) as db:  # a reader leaves it: a writer may be compacting
        assert db.get_collection("c").count() == 1000
    assert (tmp_path / "db" / ".compacting").exists()
    with vecdb.open(tmp_path / "db") as db:
        assert not (tmp_path / "db" / ".compacting").exists()
        assert db.get_collection("c").count() == 1000 and db.compact() > 0


_PAUSED_MID_BACKUP = """
import os, signal, sys
import numpy as np
import vecdb
from vecdb.transfer import backup

def pause(*args):  # at the step named on the command line: say so, then wait (or die) as told
    print("paused", flush=True)
    if sys.stdin.readline().strip() == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args)

with vecdb.open(sys.argv[1]) as db:
    db.create_collection("c", dim=8).upsert(list(range(500)), np.random.default_rng(0).standard_normal((500, 8)))
if sys.argv[3] == "restore":
    with vecdb.open(sys.argv[1], read_only=True) as db:
        archive = db.backup(sys.argv[1] + ".tar")
    original = backup._check_restored  # the archive is unpacked into its staging folder
    backup._check_restored = pause
    backup.restore_backup(archive, os.path.join(sys.argv[2], "restored"))
else:
    original = getattr(backup, sys.argv[3])
    setattr(backup, sys.argv[3], pause)
    with vecdb.open(sys.argv[1], read_only=True) as db:  # as `vecdb backup PATH FOLDER/` does
        db.backup(sys.argv[2])
print("done", flush=True)
"""


def _paused_backup(database: Path, folder: Path, step: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", _PAUSED_MID_BACKUP, str(database), str(folder), step],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "paused\n"
    return child


@pytest.mark.parametrize("step", ["_describe_copy", "_write_archive", "restore"])
def test_what_a_killed_backup_or_restore_stages_goes_with_the_next_one(tmp_path, step):
    """Found by the campaign (every seed: kills in db.backup after its copy
    began): a backup stages a copy of the whole data file in
    FOLDER/.vecdb-backup-*/ and the archive in .NAME.vecdb-partial-*.tmp, a
    restore unpacks into .NAME.restoring-*/, and a kill left them there for
    good. Each is now claimed (flock) while in use: the next backup into the
    folder (the next restore to that name) removes the unclaimed ones, and
    leaves alone those of a backup still running in another process."""
    folder = tmp_path / "backups"
    folder.mkdir()

    def staged() -> Set[str]:
        return {path.name for path in folder.iterdir() if path.name.startswith(".")}

    running = _paused_backup(tmp_path / "db", folder, step)  # stays paused while the others run
    claimed = staged()
    dying = _paused_backup(tmp_path / "db2", folder, step)
    dying.stdin.write("die\n")
    dying.stdin.flush()
    assert dying.wait(60) == -signal.SIGKILL
    assert claimed and staged() > claimed
    if step == "restore":
        restore_backup(tmp_path / "db.tar", folder / "restored")
        shutil.rmtree(folder / "restored")  # the running restore's destination must be free
    else:
        with vecdb.open(tmp_path / "db", read_only=True) as db:
            db.backup(folder)
    assert staged() == claimed  # the killed one's went, the running one's stayed
    running.stdin.write("go\n")
    running.stdin.flush()
    assert running.stdout.readline() == "done\n" and running.wait(60) == 0
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".")]
    if step != "restore":
        archives = sorted(folder.glob("vecdb-backup-*.tar"))
        assert len(archives) == 2
        for number, archive in enumerate(archives):
            assert restore_backup(archive, tmp_path / f"check{number}").collections[0]["count"] == 500


_READER = """
import sys, vecdb
with vecdb.open(sys.argv[1], read_only=True) as db:
    for line in sys.stdin:
        db.refresh()
        print(db.list_collections(), flush=True)
"""

_KILLED_AFTER_META_WRITE = """
import ctypes, sys, vecdb
db = vecdb.open(sys.argv[1])
ctypes.CDLL(None).campaign_arm(ctypes.c_long(2))  # create_collection commits its databases, then its config
db.create_collection("x", dim=4)
"""


@pytest.mark.skipif(shutil.which("cc") is None or not sys.platform.startswith("linux"),
                    reason="needs a C compiler and /proc (Linux)")
def test_a_commit_killed_before_lock_mdb_published_it_is_adopted_whole(tmp_path):
    """Found by the campaign (seed 3, kill 15, its read-only observer open
    across the kill). A writer killed after writing a commit's meta page
    but before publishing it in lock.mdb (the meta write is synchronous, so
    this window is milliseconds wide) leaves the commit durable but unseen
    by read transactions while another process keeps lock.mdb open; LMDB
    adopts it when the next writer takes the write lock. The next vecdb
    writer used to read before taking it: at open it found the databases
    of the collection whose config that commit wrote without a config,
    dropped them as orphans, and then saw the config: a listed collection
    that raised CollectionNotFoundError "was dropped" for good. The writer
    now takes the write lock before reading anything."""
    library = writer.build_meta_write_killer(tmp_path)
    path = tmp_path / "db"
    vecdb.open(path).close()
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        def listed_by_reader() -> str:
            reader.stdin.write("\n")
            reader.stdin.flush()
            return reader.stdout.readline().strip()

        assert listed_by_reader() == "[]"
        child = subprocess.run([sys.executable, "-c", _KILLED_AFTER_META_WRITE, str(path)], capture_output=True,
                               text=True, timeout=120, env=_preloading(library))
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert listed_by_reader() == "[]"  # LMDB: the durable commit is not published yet
        with vecdb.open(path) as db:
            assert db.list_collections() == ["x"]
            col = db.get_collection("x")
            assert col.count() == 0
            col.upsert([1], [[1.0, 0.0, 0.0, 0.0]])
        assert listed_by_reader() == "['x']"
    finally:
        reader.stdin.close()
        reader.wait(timeout=60)
