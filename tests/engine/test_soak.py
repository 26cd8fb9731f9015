"""Concurrency soaks: two writer threads (each with its own collections)
re-upserting points between payload groups (same vector or a new one),
deleting by ids and by filter and adding back, compacting indexes,
training PQ codebooks again and toggling a payload index; another thread
dropping and re-creating a collection and compacting the database (which
refuses while other processes have it open); reader threads searching with filters through every plan
(Scan, Graph, Funnel on an MRL collection, a PQ collection's re-ranked
graph and code scan, the planner's own choice), getting, scrolling and
counting; a read-only handle in this process and read-only processes
refreshing and reading alongside.

The writer keeps a model of every state it commits (numbered writes), so a
reader that saw writes up to ``a`` acknowledged when it started and up to
``b`` begun when it finished checks that what it read is one of the states
``a..b``:

- every hit matches its filter and carries a record that is its own id's
  at one of those states (payload and vector of one write; the score of
  that vector or, while the index catches up, of the one before);
- ``get`` leaves an id out only if it was absent at one of those states;
- counts, filtered or not, are those of one of those states;
- no record carries another collection's data, and a handle of the
  dropped collection raises CollectionNotFoundError (the one exception
  allowed) and reads only its own generation;
- in other processes (no model there): hits match filters, records are
  consistent and never go back to an older version after a refresh.

``make test`` runs a short soak; ``make test-slow`` a long one.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import threading
import time
import traceback
import zlib
from collections import Counter
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
import pytest

import vecdb
from vecdb.errors import CollectionNotFoundError

DIM = 16
IDS = 400
GROUPS = ("a", "b", "c")
VOLATILE = "volatile"
# The modelled collections: (index, quantization, mrl_dims, plans readers force).
MODELLED = {
    "graph": (vecdb.HNSW(M=8, ef_construction=48), None, None),
    "flat": (vecdb.Flat(), None, None),
    "mrl": (vecdb.HNSW(M=8, ef_construction=48), None, [4, 8]),
    "pq": (vecdb.HNSW(M=8, ef_construction=48), vecdb.PQ(m=4, rerank=32, train_size=256, iterations=5), None),
}
PLANS = {
    "graph": [None, vecdb.plans.Scan(), vecdb.plans.Graph(ef=64)],
    "flat": [None, vecdb.plans.Scan()],
    "mrl": [None, vecdb.plans.Scan(), vecdb.plans.Graph(ef=64), vecdb.plans.Funnel(dims=4, candidates=60),
            vecdb.plans.Prefix(dims=8)],
    "pq": [None, vecdb.plans.Scan(), vecdb.plans.Graph(ef=64)],
}


def group_of(user: int, version: int) -> str:
    return GROUPS[zlib.crc32(f"{user}/{version}".encode()) % len(GROUPS)]


def payload_of(name: str, user: int, version: int) -> Dict[str, Any]:
    return {"coll": name, "id": user, "v": version, "g": group_of(user, version)}


def vector_of(name: str, user: int, version: int) -> np.ndarray:
    """A quarter of the writes move the point; the others keep its vector
    (and so its place in the graph) and change only the payload."""
    moved = version if zlib.crc32(f"{name}/{user}/{version}".encode()) % 4 == 0 else 0
    return np.random.default_rng([zlib.crc32(name.encode()), user, moved]).standard_normal(DIM).astype(np.float32)


def check_record(name: str, user: Any, payload: Dict[str, Any], vector: Optional[np.ndarray]) -> int:
    """A record is one write's, of this collection: returns its version."""
    assert payload.get("coll") == name, f"a record of {name!r} carries {payload}"
    assert payload.get("id") == user, f"record {user!r} carries the payload of {payload.get('id')!r}: {payload}"
    version = payload["v"]
    assert payload == payload_of(name, user, version), f"record {user!r} has a torn payload {payload}"
    if vector is not None:
        assert np.array_equal(vector, vector_of(name, user, version)), \
            f"record {user!r} has the payload of write {version} and another write's vector"
    return version


class Model:
    """The states a collection goes through: write k (1, 2, ...) leads from
    state k-1 to state k. The writer calls :meth:`begin` before committing
    a write and :meth:`ack` after it returned; readers ask what states
    ``a..b`` allow."""

    def __init__(self, current: Dict[int, int]) -> None:
        self._lock = threading.Lock()
        self.begun = self.acked = 0
        self.current = dict(current)
        self._history: Dict[int, Tuple[List[int], List[Optional[int]]]] = {
            user: ([0], [version]) for user, version in current.items()}
        self._counts = [self._count_now()]

    def _count_now(self) -> Counter:
        counts = Counter(group_of(user, version) for user, version in self.current.items())
        counts["all"] = len(self.current)
        return counts

    def begin(self, changes: Dict[int, Optional[int]]) -> None:
        with self._lock:
            write = self.begun + 1
            for user, version in changes.items():
                if version is None:
                    self.current.pop(user, None)
                else:
                    self.current[user] = version
                writes, versions = self._history.setdefault(user, ([0], [None]))
                writes.append(write)
                versions.append(version)
            self._counts.append(self._count_now())
            self.begun = write

    def ack(self) -> None:
        with self._lock:
            self.acked = self.begun

    def window(self) -> int:
        with self._lock:
            return self.acked

    def end(self) -> int:
        with self._lock:
            return self.begun

    def versions(self, user: int, start: int, end: int) -> Set[Optional[int]]:
        """The versions ``user`` had in states ``start..end`` (None: absent)."""
        with self._lock:
            writes, versions = self._history.get(user, ([0], [None]))
            first = bisect.bisect_right(writes, start) - 1
            last = bisect.bisect_right(writes, end)
            return set(versions[first:last])

    def counts(self, start: int, end: int, key: str) -> Set[int]:
        with self._lock:
            return {counts[key] for counts in self._counts[start:end + 1]}


class Soak:
    """The database, the models and the figures of one soak."""

    def __init__(self, db: vecdb.Database) -> None:
        self.db = db
        self.models: Dict[str, Model] = {}
        self.figures: Counter = Counter()
        self.figures_lock = threading.Lock()
        self.stop = threading.Event()
        self.failures: List[str] = []
        self.version = 0
        self._version_lock = threading.Lock()
        for name, (index, quantization, mrl_dims) in MODELLED.items():
            col = db.create_collection(name, DIM, "l2" if name == "pq" else "cosine", index=index,
                                       quantization=quantization, mrl_dims=mrl_dims)
            if name == "graph":
                col.create_payload_index("g", "keyword")
            initial = {user: self._next_version() for user in range(IDS)}
            self._upsert(col, name, initial)
            self.models[name] = Model(initial)
        assert db.get_collection("pq").wait_indexed() and db.get_collection("pq").stats()["quantization"]["trained"]
        self.generation = 0
        self._fill_volatile(db.create_collection(VOLATILE, DIM))

    def count(self, what: str, n: int = 1) -> None:
        with self.figures_lock:
            self.figures[what] += n

    def _next_version(self) -> int:
        with self._version_lock:
            self.version += 1
            return self.version

    @staticmethod
    def _upsert(col: vecdb.Collection, name: str, changes: Dict[int, int]) -> None:
        users = sorted(changes)
        col.upsert(users, np.stack([vector_of(name, user, changes[user]) for user in users]),
                   [payload_of(name, user, changes[user]) for user in users])

    def _fill_volatile(self, col: vecdb.Collection) -> None:
        users = list(range(40))
        col.upsert(users, np.stack([vector_of(VOLATILE, user, self.generation) for user in users]),
                   [{"coll": VOLATILE, "id": user, "gen": self.generation} for user in users])

    # -- the writers --

    def write(self, rng: np.random.Generator, names: List[str]) -> None:
        """One write to one of ``names`` (no other thread writes them),
        modelled before it commits."""
        name = str(rng.choice(names))
        col, model = self.db.get_collection(name), self.models[name]
        action = rng.random()
        if action < 0.7:  # re-upserts (between groups), and adds back what was deleted
            users = rng.choice(IDS, size=int(rng.integers(1, 30)), replace=False).tolist()
            changes = {user: self._next_version() for user in users}
            model.begin(changes)
            self._upsert(col, name, changes)
            self.count("re-upserts")
        elif action < 0.9:
            users = rng.choice(IDS, size=int(rng.integers(1, 9)), replace=False).tolist()
            present = [user for user in users if user in model.current]
            model.begin({user: None for user in users})
            assert col.delete(ids=users) == len(present), f"{name}: delete(ids) count"
            self.count("deletes by id")
        else:
            group, below, cut = str(rng.choice(GROUPS)), self._next_version() - 50, int(rng.integers(20, 60))
            gone = [user for user, version in model.current.items()
                    if group_of(user, version) == group and version < below and user < cut]
            model.begin({user: None for user in gone})
            deleted = col.delete(filter={"g": group, "v": {"$lt": below}, "id": {"$lt": cut}})
            assert deleted == len(gone), f"{name}: delete(filter) deleted {deleted}, the model {len(gone)}"
            self.count("deletes by filter")
        model.ack()
        if rng.random() < 0.05:  # nothing a reader may see changes
            if name == "flat":  # filters on g switch between the payload index and a scan
                col.drop_payload_index("g") if "g" in col.payload_indexes else col.create_payload_index("g", "keyword")
                self.count("payload index toggles")
            elif name == "pq" and len(model.current) >= 256:
                col.train_quantizer()
                self.count("PQ trainings")
            else:
                col.compact()
                self.count("index compactions")

    def drop_and_create(self, rng: np.random.Generator) -> None:
        self.db.drop_collection(VOLATILE)
        self.generation += 1
        self._fill_volatile(self.db.create_collection(VOLATILE, DIM))
        self.count("drops and re-creations")
        if rng.random() < 0.1:
            try:
                self.db.compact()
                self.count("database compactions")
            except vecdb.errors.StorageLockedError:  # documented: a read-only process has the folder open
                self.count("database compactions refused (processes open)")

    # -- the readers --

    def read(self, db: vecdb.Database, rng: np.random.Generator,
             index_since: Optional[Dict[str, int]] = None) -> None:
        """One read of a modelled collection, checked against the states it
        may see. ``index_since``: for a read-only handle, the state each
        collection's index was last refreshed to (scores may come from then)."""
        name = str(rng.choice(list(MODELLED)))
        model = self.models[name]
        start = model.window()
        scored_since = start if index_since is None else index_since[name]
        col = db.get_collection(name)
        action = rng.random()
        if action < 0.6:
            group = str(rng.choice(GROUPS)) if rng.random() < 0.8 else None
            plan = PLANS[name][int(rng.integers(len(PLANS[name])))]
            with_vector = bool(rng.random() < 0.5)
            query = rng.standard_normal(DIM).astype(np.float32)
            hits = col.search(query, k=10, filter=None if group is None else {"g": group}, plan=plan,
                              with_vector=with_vector)
            end = model.end()
            assert len({hit.id for hit in hits}) == len(hits), f"{name}: a hit twice"
            if isinstance(plan, vecdb.plans.Scan) and index_since is None \
                    and min(model.counts(start, end, group or "all")) >= 40:
                # An exact scan is short only if fewer points match in its state
                # (a batch in flight is at most 30 points the index may lack).
                assert len(hits) == 10, f"{name}: Scan(filter g={group}) returned {len(hits)} hits"
            for hit in hits:
                version = check_record(name, hit.id, hit.payload, hit.vector)
                assert group is None or hit.payload["g"] == group, \
                    f"{name}: a search filtered on g={group!r} returned {hit.payload}"
                allowed = model.versions(hit.id, start, end)
                assert version in allowed, f"{name}: hit {hit.id} at version {version}; states {start}..{end} " \
                                           f"allow {allowed}"
                if not isinstance(plan, vecdb.plans.Prefix):
                    self._check_score(name, hit, query, model.versions(hit.id, scored_since, end))
            self.count(f"searches ({name}, {type(plan).__name__ if plan else 'planner'})")
            self.count("hits checked", len(hits))
        elif action < 0.75:
            users = rng.choice(IDS, size=20, replace=False).tolist()
            records = col.get(users, with_vector=True)
            end = model.end()
            returned = {record.id for record in records}
            for record in records:
                version = check_record(name, record.id, record.payload, record.vector)
                assert version in model.versions(record.id, start, end), f"{name}: get({record.id}) version"
            for user in set(users) - returned:
                assert None in model.versions(user, start, end), f"{name}: get left out {user}, stored throughout"
            self.count("gets")
        elif action < 0.85:
            records, _ = col.scroll(filter={"g": "b"}, limit=50, cursor=int(rng.integers(0, 200)))
            end = model.end()
            for record in records:
                assert record.payload["g"] == "b"
                assert check_record(name, record.id, record.payload, None) in model.versions(record.id, start, end)
            self.count("scrolls")
        else:
            group = str(rng.choice(GROUPS)) if rng.random() < 0.5 else None
            counted = col.count() if group is None else col.count(filter={"g": group})
            end = model.end()
            allowed = model.counts(start, end, group or "all")
            assert counted in allowed, f"{name}: count(g={group}) = {counted}; states {start}..{end} allow {allowed}"
            self.count("counts")

    @staticmethod
    def _check_score(name: str, hit: vecdb.Hit, query: np.ndarray, allowed: Set[Optional[int]]) -> None:
        """The score is that of the vector of one of the versions the states
        allow (the index may hold another of them than the record read)."""
        q = query.astype(np.float64)
        scores = []
        for version in allowed - {None}:
            vector = vector_of(name, hit.id, version).astype(np.float64)
            scores.append(np.linalg.norm(vector - q) if name == "pq"
                          else vector @ q / (np.linalg.norm(vector) * np.linalg.norm(q)))
        assert min(abs(hit.score - score) for score in scores) <= 1e-3, \
            f"{name}: hit {hit.id} scored {hit.score}, no version allowed scores that ({scores})"

    def read_volatile(self, db: vecdb.Database, rng: np.random.Generator) -> None:
        try:
            col = db.get_collection(VOLATILE)
            generations = set()
            for hit in col.search(rng.standard_normal(DIM), k=5, filter={"gen": {"$gte": 0}}):
                assert hit.payload["coll"] == VOLATILE and hit.payload["id"] == hit.id, hit.payload
                generations.add(hit.payload["gen"])
            for record in col.get(list(range(10))) + col.scroll(limit=7)[0]:
                assert record.payload["coll"] == VOLATILE and record.payload["id"] == record.id, record.payload
                generations.add(record.payload["gen"])
            col.count(filter={"gen": {"$gte": 0}})
            assert len(generations) <= 1, f"one handle of {VOLATILE!r} read generations {sorted(generations)}"
            self.count("reads of the dropped collection")
        except CollectionNotFoundError:
            self.count("CollectionNotFoundError (dropped)")


def _loop(soak: Soak, body, seed: int) -> None:
    rng = np.random.default_rng(seed)
    try:
        while not soak.stop.is_set():
            body(rng)
    except BaseException:  # noqa: BLE001 - the soak's failure, reported by the test
        soak.failures.append(traceback.format_exc())
        soak.stop.set()


# ---- read-only processes ----


def _process_reader(folder: str, seconds: float, seed: int, results) -> None:
    """A read-only process: refreshes and reads; checks what needs no model."""
    figures: Counter = Counter()
    newest: Dict[Tuple[str, int], int] = {}
    rng = np.random.default_rng(seed)
    try:
        with vecdb.open(folder, read_only=True) as db:
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                db.refresh()
                figures["refreshes"] += 1
                for name in MODELLED:
                    col = db.get_collection(name)
                    group = str(rng.choice(GROUPS))
                    plan = PLANS[name][int(rng.integers(len(PLANS[name])))]
                    records = [(hit.id, hit.payload, hit.vector) for hit in
                               col.search(rng.standard_normal(DIM), k=10, filter={"g": group}, plan=plan,
                                          with_vector=True)]
                    assert all(payload["g"] == group for _, payload, _ in records), f"{name}: filter broken"
                    records += [(r.id, r.payload, r.vector) for r in col.get(list(range(0, IDS, 7)), with_vector=True)]
                    for user, payload, vector in records:
                        version = check_record(name, user, payload, vector)
                        assert version >= newest.get((name, user), 0), \
                            f"{name}: record {user} went back from version {newest[name, user]} to {version}"
                        newest[name, user] = version
                    figures["records checked"] += len(records)
                    figures["filtered counts"] += col.count(filter={"g": group}) >= 0
                try:
                    col = db.get_collection(VOLATILE)
                    generations = {r.payload["gen"] for r in col.get(list(range(10)))}
                    generations |= {h.payload["gen"] for h in col.search(rng.standard_normal(DIM), k=5)}
                    assert len(generations) <= 1, f"{VOLATILE}: generations {generations} through one handle"
                    figures["reads of the dropped collection"] += 1
                except CollectionNotFoundError:
                    figures["CollectionNotFoundError (dropped)"] += 1
        results.put(("ok", dict(figures)))
    except BaseException:  # noqa: BLE001 - sent to the test
        results.put(("failed", traceback.format_exc()))


def soak(folder, seconds: float, readers: int, processes: int, capsys) -> Counter:
    """Run the soak; threads and processes draw from VECDB_TEST_SEED (make
    test-slow sets it) or 0 (interleavings differ from run to run anyway)."""
    seed = int(os.environ.get("VECDB_TEST_SEED", 0))
    with vecdb.open(folder) as db:
        state = Soak(db)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        # The processes stop early, so the database compactions that follow swap the file in.
        children = [context.Process(target=_process_reader,
                                    args=(str(folder), seconds * 0.6, seed * 1000 + 100 + i, results))
                    for i in range(processes)]
        for child in children:
            child.start()
        with vecdb.open(folder, read_only=True) as other:  # shares this process's environment
            def refreshing_reader(rng):
                since = {name: model.window() for name, model in state.models.items()}
                other.refresh()
                for _ in range(20):
                    state.read(other, rng, since)

            bodies = [lambda rng: state.write(rng, ["graph", "mrl"]),
                      lambda rng: state.write(rng, ["flat", "pq"]),
                      lambda rng: (state.drop_and_create(rng), time.sleep(0.01)),
                      refreshing_reader,
                      *[lambda rng: (state.read(db, rng), state.read_volatile(db, rng)) for _ in range(readers)]]
            threads = [threading.Thread(target=_loop, args=(state, body, seed * 1000 + i))
                       for i, body in enumerate(bodies)]
            for thread in threads:
                thread.start()
            state.stop.wait(seconds)
            state.stop.set()
            for thread in threads:
                thread.join()
        for child in children:
            status, value = results.get(timeout=seconds + 300)
            if status == "failed":
                state.failures.append(f"a read-only process: {value}")
            else:
                state.figures.update({f"process: {key}": n for key, n in value.items()})
            child.join(60)
        with capsys.disabled():
            print(f"\nsoak of {seconds:.0f} s, seed {seed} ({readers} reader threads, {processes} processes):")
            for what, n in sorted(state.figures.items()):
                print(f"  {what}: {n}")
        assert not state.failures, state.failures[0]
        for name, model in state.models.items():  # the end state, exactly
            col = db.get_collection(name)
            stored = {record.id: check_record(name, record.id, record.payload, record.vector)
                      for record in col.get(list(range(IDS)), with_vector=True)}
            assert stored == model.current, f"{name}: the final state is not the model's"
        return state.figures


@pytest.mark.filterwarnings("ignore:.*rebuilding its index")
def test_soak_short(tmp_path, capsys):
    figures = soak(tmp_path / "db", seconds=15, readers=3, processes=2, capsys=capsys)
    plans = {key for key in figures if key.startswith("searches (")}
    assert {"searches (mrl, Funnel)", "searches (pq, Graph)", "searches (pq, Scan)", "searches (graph, Scan)"} <= plans
    assert figures["re-upserts"] > 10 and figures["drops and re-creations"] > 2
    assert figures["process: refreshes"] > 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*rebuilding its index")
def test_soak_long(tmp_path, capsys):
    figures = soak(tmp_path / "db", seconds=240, readers=4, processes=3, capsys=capsys)
    assert figures["re-upserts"] > 500 and figures["process: refreshes"] > 100
