"""Searching one collection: a filter's mask, the planner's choice, the plan
run on the in-memory indexes, and the hits read back from LMDB.

Inputs come checked (by :class:`vecdb.Collection`); this module only
orchestrates, so the one-query hot path stays a handful of calls.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Dict, Iterator, List, NamedTuple, Optional, Tuple

import lmdb
import numpy as np

from vecdb import _core
from vecdb.config import HNSW, CollectionConfig, Flat
from vecdb.index.prefix_index import IndexSet
from vecdb.index.rotation import rotation_train_size
from vecdb.native.arrays import freeze_mask, id_filter_bitset
from vecdb.plans import Plan, plan_from_dict
from vecdb.query.executor import Runner, StageTimes, execute, graph_runner
from vecdb.query.filter_eval import FilterEvaluator
from vecdb.query.filters import Filter
from vecdb.query.planner import Choice, SearchShape, backlog_stage, choose, stages
from vecdb.records import Hit
from vecdb.reports import Explanation, Stage
from vecdb.storage.collection_store import CollectionStore, decode_payload
from vecdb.storage.environment import Environment
from vecdb.storage.keys import user_id_from_key

SEARCH_ATTEMPTS = 2
# Stored payloads kept in memory per collection (msgpack bytes), so that hits
# need no LMDB read; past this, payloads are read from LMDB for each search.
PAYLOAD_CACHE_BYTES = 64 << 20
# Evaluated filter masks kept per collection (each is one byte per point).
FILTER_CACHE_SIZE = 8
# The id cache is filled at open with the ids of up to this many points
# (~20 bytes each), ID_WARM_CHUNK per read transaction; past it, as
# searches meet points.
ID_WARM_MAX = 4_000_000
ID_WARM_CHUNK = 4_096

# What the collection searches at this moment: its indexes (swapped whole
# when codebooks or a rotation are learned) and its latest config.
CurrentState = Callable[[], Tuple[IndexSet, CollectionConfig]]
# The collection's write epoch (IndexWriteLock.epoch) and the change sequence
# its indexes reflect, read in that order.
IndexVersion = Callable[[], Tuple[int, int]]


class IndexWriteLock:
    """A collection's write lock, which counts: ``epoch`` is odd while a
    writer may be changing the indexes and moves on each time. A search
    that read the same even epoch before and after it ran on indexes
    nobody touched meanwhile.

    ``with lock:`` holds it for a whole write. An upsert prepares its
    records in LMDB for most of its time, changing nothing a search sees:
    :meth:`writing` serializes it with other writers only, and it calls
    :meth:`publish` right before its commit, from which on the indexes
    change (the epoch is odd from then until the write ends).

    Searches that must not overlap a change hold :meth:`paused`: any number
    at once, never while a write is published, and a writer about to
    publish goes first (new pauses wait for it), so neither side starves.

    The writing thread may take it again (one write of several parts that
    deletes and upserts in the same collection, see
    :mod:`vecdb.write_steps`): only the outermost hold ends the write."""

    def __init__(self) -> None:
        self._writers = threading.Lock()  # one writer at a time
        self._state = threading.Condition()
        self._published = False
        self._publishing = 0  # writers waiting for paused searches to end
        self._paused = 0
        self._writer: Optional[int] = None  # the thread holding the writers' lock
        self._depth = 0  # how many times it holds it
        self.epoch = 0

    def __enter__(self) -> "IndexWriteLock":
        self._begin()
        self.publish()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._end()

    @contextmanager
    def writing(self) -> Iterator["IndexWriteLock"]:
        """Hold off other writers; call :meth:`publish` before changing
        anything a search reads (the commit, the indexes)."""
        self._begin()
        try:
            yield self
        finally:
            self._end()

    def publish(self) -> None:
        """The write changes what searches see from now on (idempotent: a
        write transaction run again publishes again)."""
        with self._state:
            if self._published:
                return
            self._publishing += 1
            self._state.wait_for(lambda: self._paused == 0)
            self._publishing -= 1
            self._published = True
            self.epoch += 1

    @contextmanager
    def paused(self, timeout: float = 30.0) -> Iterator[None]:
        """No write changes the indexes while this is held (in the writer's
        own thread, its own write cannot interleave: no wait). Waits for a
        published write to end at most ``timeout`` seconds, then goes on
        without holding writes off: a bound against a writer waiting on the
        caller, not a deadline (a write publishes from its commit until its
        indexes hold it: milliseconds, or seconds for a large batch indexed
        before the upsert returns; a bound of 1 s let a search overlap
        such a batch and see half of it, found by a probe)."""
        with self._state:
            held = self._writer != threading.get_ident() and self._state.wait_for(
                lambda: not self._published and not self._publishing, timeout)
            if held:
                self._paused += 1
        try:
            yield
        finally:
            if held:
                with self._state:
                    self._paused -= 1
                    self._state.notify_all()

    def _begin(self) -> None:
        if self._writer != threading.get_ident():
            self._writers.acquire()
            self._writer = threading.get_ident()
        self._depth += 1

    def _end(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        with self._state:
            if self._published:
                self._published = False
                self.epoch += 1
                self._state.notify_all()
        self._writer = None
        self._writers.release()


# One ranking of a search_run: labels best first and their scores.
Ranking = Tuple[np.ndarray, np.ndarray]


def _rows(rankings: List[Ranking]) -> Tuple[np.ndarray, np.ndarray]:
    """Rankings as (rows, width) label and float32 score matrices, rows
    padded with label -1 (where hits stop)."""
    if len(rankings) == 1 and len(rankings[0][0]):  # one ranking (a text search's): its arrays as they are
        ranked, ranked_scores = rankings[0]
        return (np.ascontiguousarray(ranked, dtype=np.int64).reshape(1, -1),
                np.ascontiguousarray(ranked_scores, dtype=np.float32).reshape(1, -1))
    width = max([len(labels) for labels, _ in rankings] + [1])
    labels = np.full((len(rankings), width), -1, dtype=np.int64)
    scores = np.zeros((len(rankings), width), dtype=np.float32)
    for row, (ranked, ranked_scores) in enumerate(rankings):
        labels[row, :len(ranked)] = ranked
        scores[row, :len(ranked)] = ranked_scores
    return labels, scores


class Scope(NamedTuple):
    """What one attempt of :meth:`Searcher.search_run` searches: the
    indexes and config of one state, the filter's mask of labels (None: no
    filter) and how many of them the vector index holds, and whether the
    filter ran before (the planner's inputs)."""

    indexes: IndexSet
    config: CollectionConfig
    mask: Optional[np.ndarray]
    live: Optional[int]
    repeated: bool
    epoch: int = -1  # the write epoch it was read at, when even (a plan prepared for it stays valid)

    def bits(self) -> Optional[np.ndarray]:
        """The mask packed as the native indexes read it."""
        return None if self.mask is None else id_filter_bitset(self.mask, len(self.mask))


class Searcher:
    """Runs searches and explains them for one collection, keeping the
    masks of recent filters and what the planner knows of the indexes."""

    def __init__(self, environment: Environment, store: CollectionStore, current: CurrentState,
                 version: IndexVersion, held_still: Callable[[], ContextManager[None]]) -> None:
        self._environment = environment
        self._store = store
        self._current = current
        self._version = version
        # A search's last attempt runs in this: no write changes the indexes
        # meanwhile, and they reflect the state a read transaction begun in
        # it sees (through a read-only handle, which catches up first).
        self._held_still = held_still
        # label -> id and label -> payload, for hits that need nothing else from LMDB.
        self._ids = _core.IdCache()
        self._payloads = _core.PayloadCache(PAYLOAD_CACHE_BYTES)
        # filter key -> [mask, how many of its labels the index holds (None until a search asks)]
        self._filter_cache: "OrderedDict[tuple, list]" = OrderedDict()
        self._filter_cache_lock = threading.Lock()
        # (indexes, config, count, shape): the indexes weakly, so swapped-out
        # ones are freed at once, not when the next search comes.
        self._shape_cache: Optional[Tuple[weakref.ref, CollectionConfig, int, SearchShape]] = None
        # ((epoch, k, ef, dims, plan), whether the metric is l2, runner) of the last unfiltered search.
        self._prepared: Optional[Tuple[tuple, bool, Runner]] = None
        # ((epoch, k, ef, dims, plan), runner) of the last unfiltered vector branch of a hybrid search.
        self._prepared_branch: Optional[Tuple[tuple, Runner]] = None
        # Read-only handles: the commit a read transaction saw (Environment.seen_commit)
        # before the indexes last caught up; while it is still the last,
        # they hold LMDB's latest state.
        self._caught_up_at: Optional[int] = None

    def search(self, queries: np.ndarray, k: int, *, ef: Optional[int], node: Optional[Filter],
               dims: Optional[int], plan: Optional[Plan], with_payload: bool,
               with_vector: bool, with_document: bool = False) -> List[List[Hit]]:
        """The hits of each query (see :meth:`vecdb.Collection.search`).
        Vectors and documents are read in the search's transaction (the
        caches hold neither)."""
        if not with_vector and not with_document and self._holds_latest():
            latest = self._search_latest(queries, k, ef, node, dims, plan, with_payload)
            if latest is not None:
                return latest
        ids_only = not with_payload and not with_vector and not with_document
        for attempt in range(SEARCH_ATTEMPTS):
            # Another attempt holds writers off while it runs. (Waiting for a
            # gap between writes instead left searches during a sustained
            # ingest waiting out several writes, 60 ms p50: the writer took
            # the lock again before the waiting search ran.)
            with self._held_still() if attempt else nullcontext():
                version = self._version()
                # One read transaction: the filter's evaluation and every hit's
                # id, payload and vector come from one committed state.
                with self._environment.read() as txn:
                    indexes, config = self._current()
                    allowed, live, stored, repeated = self._allowed(txn, node, indexes)
                    if version[1] != stored and attempt + 1 < SEARCH_ATTEMPTS:
                        continue  # indexes behind (or ahead of) this state: not an answer; the last attempt holds them
                    choice = choose(self.shape(indexes, config), k, allowed=live, ef=ef, dims=dims, plan=plan,
                                    repeated=repeated)
                    labels, distances = _run(choice, indexes, queries, k, ef, allowed, None)
                    # Indexes untouched while the search ran, reflecting the
                    # state this transaction reads: every label they returned is
                    # stored in it, and its id is all a hit needs.
                    if ids_only and version[0] % 2 == 0 and version == self._version() and version[1] == stored:
                        if self._cache_ids(txn, labels):
                            return _core.hits(Hit, self._ids, None, {}, decode_payload, labels, distances,
                                              config.metric == "l2")
                    hits, complete = self._hits(txn, labels, _scores(distances, config.metric), with_payload,
                                                with_vector, with_document)
                # A point the index holds already but whose upsert committed after
                # this transaction began leaves a hole: search again. So does a
                # write applied to the indexes while the search ran: they may
                # have retired a replaced point's old label already while this
                # transaction's mask does not allow its new one (found neither).
                # So do indexes behind this transaction's state (a read-only
                # handle's, before it catches up): a point moved into the
                # filter by a write they lack is found in neither.
                if complete and version[0] % 2 == 0 and version == self._version() and version[1] == stored:
                    break
        return hits

    def search_run(self, run: Callable[["Scope"], List[Ranking]], node: Optional[Filter],
                   with_payload: bool, with_vector: bool, with_document: bool = False) -> List[List[Hit]]:
        """The hits of the rankings ``run`` makes on indexes a writer
        changes with each commit (the vector indexes, the text indexes):
        given the :class:`Scope` (the indexes, the config and the filter's
        mask of one state), it returns one or more rankings (labels and
        scores, best first), and each becomes a list of hits. Checked as
        :meth:`search` checks its slower path: the indexes and the hits'
        read reflect one committed state, or the search runs again holding
        writes off."""
        if not with_vector and not with_document and self._holds_latest():
            latest = self._run_latest(run, node, with_payload)
            if latest is not None:
                return latest
        hits: List[List[Hit]] = []
        for attempt in range(SEARCH_ATTEMPTS):
            with self._held_still() if attempt else nullcontext():
                version = self._version()
                with self._environment.read() as txn:
                    indexes, config = self._current()
                    mask, live, stored, repeated = self._allowed(txn, node, indexes)
                    if version[1] != stored and attempt + 1 < SEARCH_ATTEMPTS:
                        continue
                    labels, scores = _rows(run(Scope(indexes, config, mask, live, repeated, version[0])))
                    found = (None if with_vector or with_document else
                             self._cached_hits(txn, labels, scores, with_payload))
                    complete = found is not None
                    if found is None:
                        found, complete = self._hits(txn, labels, scores, with_payload, with_vector, with_document)
                hits = found
                if complete and version[0] % 2 == 0 and version == self._version() and version[1] == stored:
                    break
        return hits

    def _run_latest(self, run: Callable[["Scope"], List[Ranking]], node: Optional[Filter],
                    with_payload: bool) -> Optional[List[List[Hit]]]:
        """:meth:`search_run` without a read transaction, as
        :meth:`_search_latest` runs a vector search: when the indexes hold
        the last committed state and the caches hold every id, payload and
        the filter's mask it needs (None otherwise, or if a write ran
        meanwhile: then the checked way runs, and fills the caches)."""
        epoch, sequence = self._version()
        if epoch % 2:
            return None
        self._environment.check_usable()
        indexes, config = self._current()
        mask, live = None, None
        if node is not None:
            entry = self._filter_cache.get(_filter_key(node, False, sequence))
            if entry is None:
                return None
            mask, live = entry[0], entry[1] if entry[1] is not None else indexes.count(entry[0])
        labels, scores = _rows(run(Scope(indexes, config, mask, live, node is not None, epoch)))
        if self._ids.missing(labels) or (with_payload and self._payloads.missing(labels)):
            return None
        hits = self._native_hits(labels, scores, with_payload, {}, scores=True)
        # After building the hits: a write that ran meanwhile may have changed a cached payload.
        return hits if hits is not None and self._version() == (epoch, sequence) else None

    def _cached_hits(self, txn: lmdb.Transaction[bytes], labels: np.ndarray, scores: np.ndarray,
                     with_payload: bool) -> Optional[List[List[Hit]]]:
        """Hits built natively from the id and payload caches (what they
        lack read in ``txn`` and cached), or None if a label is not stored
        in ``txn``'s state. A caller keeps them only if no write ran
        meanwhile (the caches hold the latest state's)."""
        generation = self._payloads.generation
        if not self._cache_ids(txn, labels):
            return None
        read: Dict[int, bytes] = {}
        if with_payload:
            missing = self._payloads.missing(labels)
            if missing:
                read = self._store.payload_bytes_of(txn, missing)
                self._payloads.add(np.fromiter(read, dtype=np.int64, count=len(read)), list(read.values()),
                                   generation)
        return self._native_hits(labels, scores, with_payload, read, scores=True)

    def _native_hits(self, labels: np.ndarray, values: np.ndarray, with_payload: bool, read: Dict[int, bytes], *,
                     l2: bool = False, scores: bool = False) -> Optional[List[List[Hit]]]:
        """``_core.hits`` from the id and payload caches (and ``read``, the
        payloads they lacked); ``values`` are distances, or with ``scores``
        the scores to report. None for a damaged payload that passed its
        check: the checked path reports it."""
        try:
            return _core.hits(Hit, self._ids, self._payloads if with_payload else None, read, decode_payload, labels,
                              values, l2, scores)
        except ValueError:
            return None

    def scope(self, node: Optional[Filter]) -> "Scope":
        """The :class:`Scope` of the latest state (what explain() describes)."""
        with self._environment.read() as txn:
            indexes, config = self._current()
            mask, live, _, repeated = self._allowed(txn, node, indexes)
        return Scope(indexes, config, mask, live, repeated)

    def dense_branch(self, scope: "Scope", query: np.ndarray, k: int, ef: Optional[int], dims: Optional[int],
                     plan: Optional[Plan]) -> Tuple[np.ndarray, np.ndarray]:
        """The vector search of one query (a ``(1, dim)`` matrix) within a
        :meth:`search_run`: labels best first and scores, higher is better
        (an l2 distance negated)."""
        key = (scope.epoch, k, ef, dims, plan)
        prepared = self._prepared_branch
        if scope.mask is not None or scope.epoch % 2 or prepared is None or prepared[0] != key:
            choice = choose(self.shape(scope.indexes, scope.config), k, allowed=scope.live, ef=ef, dims=dims,
                            plan=plan, repeated=scope.repeated)
            runner = _prepare(choice, scope.indexes, k, ef, scope.mask)
            if scope.mask is None and scope.epoch % 2 == 0:  # the plan holds while the epoch does
                self._prepared_branch = prepared = (key, runner)
        else:
            runner = prepared[1]
        labels, distances = runner(query)
        found = labels[0] >= 0
        distances = distances[0][found]
        return labels[0][found], (-distances if scope.config.metric == "l2" else 1.0 - distances)

    def _holds_latest(self) -> bool:
        """Whether the indexes reflect the last committed state whenever the
        write lock is free: always through the writing handle (the folder's
        only writer: read-only handles of this process see the environment
        through a view that refuses writes), which changes them right after
        each commit; through a read-only handle, while nothing was committed
        to the folder since it last caught up."""
        return self._environment.writable or self._caught_up_at == self._environment.last_commit()

    def caught_up(self, commit: int, changed: bool) -> None:
        """A read-only handle's indexes now reflect at least ``commit`` (the
        folder's last commit before they caught up; call with the write lock
        held). ``changed``: they took in writes, which may have replaced any
        cached payload."""
        if changed:
            self._payloads.clear()
        self._caught_up_at = commit

    def _search_latest(self, queries: np.ndarray, k: int, ef: Optional[int], node: Optional[Filter],
                       dims: Optional[int], plan: Optional[Plan], with_payload: bool) -> Optional[List[List[Hit]]]:
        """A search that trusts the indexes and the caches, when they hold the
        last committed state (_holds_latest); None if a write ran meanwhile,
        or its filter's mask is not cached for that state (then search the
        checked way, which caches it).

        Indexes and the payload cache change only under the write lock (a
        writer right after each commit, a read-only handle when it catches
        up): while the lock's epoch stays even and unchanged, the indexes
        reflect the last committed state, so every label they return is
        stored, and its id (cached in memory, never changing), cached payload
        and cached filter mask are that state's. What the caches lack is read
        in a transaction begun meanwhile, which reads that same state, unless
        another process committed meanwhile (then this collection's sequence
        differs, or its records are as they were)."""
        epoch, sequence = self._version()
        if epoch % 2:
            return None
        generation = self._payloads.generation
        self._environment.check_usable()
        filter_key = None if node is None else _filter_key(node, False, sequence)
        # The plan is chosen once per state and arguments: while the epoch stays, neither changes.
        key = (epoch, k, ef, dims, plan, filter_key)
        prepared = self._prepared
        if prepared is None or prepared[0] != key:
            indexes, config = self._current()
            allowed, live = None, None
            if filter_key is not None:
                entry = self._filter_cache.get(filter_key)
                if entry is None:
                    return None
                allowed, live = entry[0], entry[1] if entry[1] is not None else indexes.count(entry[0])
            # A cached mask is a repeated filter.
            choice = choose(self.shape(indexes, config), k, allowed=live, ef=ef, dims=dims, plan=plan,
                            repeated=filter_key is not None)
            prepared = self._prepared = (key, config.metric == "l2", _prepare(choice, indexes, k, ef, allowed))
        labels, distances = prepared[2](queries)
        read: Dict[int, bytes] = {}
        missing_payloads = self._payloads.missing(labels) if with_payload else []
        if missing_payloads or self._ids.missing(labels):
            with self._environment.read() as txn:
                # A transaction this thread had open already may be older.
                if self._store.config(txn).sequence != sequence or not self._cache_ids(txn, labels):
                    return None
                if missing_payloads:
                    read = self._store.payload_bytes_of(txn, missing_payloads)
        if read:
            self._payloads.add(np.fromiter(read, dtype=np.int64, count=len(read)), list(read.values()), generation)
        hits = self._native_hits(labels, distances, with_payload, read, l2=prepared[1])
        # After building the hits: a write that ran meanwhile may have changed a cached payload.
        return hits if hits is not None and self._version()[0] == epoch else None

    def cache_memory_bytes(self) -> int:
        """Memory the id and payload caches hold."""
        return self._ids.memory_bytes + self._payloads.memory_bytes

    def warm_ids(self, stopped: Callable[[], bool]) -> None:
        """Read the ids of the stored points into the id cache (the first
        :data:`ID_WARM_MAX`), until done or ``stopped()``: a search that
        returns ids only then reads nothing from LMDB, from its first hit
        on. Short read transactions, so writers' freed pages are reused
        meanwhile; a label's id never changes, so no state need be one."""
        first = warmed = 0
        while warmed < ID_WARM_MAX and not stopped():
            with self._environment.read() as txn:
                self._store.config(txn)  # CollectionNotFoundError once dropped
                labels, id_keys = self._store.ids_from(txn, first, ID_WARM_CHUNK)
            if not len(labels):
                return
            self._ids.add(labels, id_keys)
            first, warmed = int(labels[-1]) + 1, warmed + len(labels)

    def forget_plan(self) -> None:
        """Drop the prepared plan, which holds the indexes (call when
        replacing them, so the old ones are freed at once)."""
        self._prepared = None
        self._prepared_branch = None

    def written(self, labels: np.ndarray, id_keys: List[bytes]) -> None:
        """An upsert of ``id_keys`` under ``labels`` committed (call with the
        write lock held): their ids are known from now on (a label's id
        never changes), their cached payloads are stale."""
        self._ids.add(labels, id_keys)
        self._payloads.forget(labels)

    def forget_payloads(self, labels: np.ndarray) -> None:
        """Drop the cached payloads of ``labels``, being written (call with
        the write lock held)."""
        self._payloads.forget(labels)

    def explain(self, queries: np.ndarray, k: int, *, ef: Optional[int], node: Optional[Filter],
                dims: Optional[int], plan: Optional[Plan], execute: bool) -> Explanation:
        """The plan :meth:`search` would run, run too with ``execute`` (see
        :meth:`vecdb.Collection.explain`)."""
        start = time.perf_counter()
        indexes, config = self._current()
        with self._environment.read() as txn:
            allowed, live, _, repeated = self._allowed(txn, node, indexes)
        shape = self.shape(indexes, config)
        choice = choose(shape, k, allowed=live, ef=ef, dims=dims, plan=plan, repeated=repeated)
        planned = stages(choice.plan, shape, k, choice.estimates["selectivity"], ef, repeated)
        waiting = len(indexes.backlog or ())
        if waiting:
            planned.append(backlog_stage(waiting, config.dim, k, choice.estimates["selectivity"]))
        explanation = Explanation(plan=choice.plan, description=choice.plan.describe(k), reason=choice.reason,
                                  estimated_us=choice.cost_us, estimates=dict(choice.estimates),
                                  alternatives=[(plan.describe(k), cost) for plan, cost in choice.alternatives],
                                  stages=[Stage(text, cost) for text, cost in planned])
        if execute:
            times: StageTimes = []
            _run(choice, indexes, queries, k, ef, allowed, times)
            explanation.total_us = 1e6 * (time.perf_counter() - start) / queries.shape[0]
            explanation.executed = True
            for stage, (seconds, results) in zip(explanation.stages, times):
                stage.actual_us, stage.results = 1e6 * seconds / queries.shape[0], results
        return explanation

    def shape(self, indexes: IndexSet, config: CollectionConfig) -> SearchShape:
        """What the planner knows of ``indexes`` under ``config``, described
        again only when either changed."""
        count = len(indexes)
        cached = self._shape_cache
        if cached is not None and cached[0]() is indexes and cached[1] is config and cached[2] == count:
            return cached[3]
        shape = _describe_for_planner(indexes, config)
        self._shape_cache = (weakref.ref(indexes), config, count, shape)
        return shape

    def matching(self, txn: lmdb.Transaction[bytes], config: CollectionConfig, node: Filter) -> np.ndarray:
        """Boolean mask over labels of the stored points ``node`` matches in
        ``txn``'s state (``config`` read in it): what counting, listing and
        deleting by filter go by."""
        return self._filter_entry(txn, config, node, stored_only=True)[0]

    def _allowed(self, txn: lmdb.Transaction[bytes], node: Optional[Filter],
                 indexes: IndexSet) -> Tuple[Optional[np.ndarray], Optional[int], int, bool]:
        """The mask of labels a search may return and how many of them the
        index holds (None, None: no filter), the change sequence of
        ``txn``'s state, and whether the mask was cached (the filter ran
        before); also checks the collection still exists in it. The mask may
        allow deleted labels (a search skips those anyway); the count leaves
        them out: the planner weighs plans by it."""
        config = self._store.config(txn)
        if node is None:
            return None, None, config.sequence, False
        repeated = _filter_key(node, False, config.sequence) in self._filter_cache
        entry = self._filter_entry(txn, config, node, stored_only=False)
        if entry[1] is not None:
            return entry[0], entry[1], config.sequence, repeated
        version = self._version()
        live = indexes.count(entry[0])
        # Kept for the state only if the indexes held exactly that state while
        # counting: not while a writer applies the commit the mask was read
        # at (it leaves the count short until the next write: later searches
        # would skip the index), nor while points wait for the indexer.
        if (not indexes.backlog and version[0] % 2 == 0 and version[1] == config.sequence
                and self._version() == version):
            entry[1] = live
        return entry[0], live, config.sequence, repeated

    def _cache_ids(self, txn: lmdb.Transaction[bytes], labels: np.ndarray) -> bool:
        """Put the ids of ``labels`` (>= 0) the id cache lacks in it, read in
        ``txn``; False if one is not stored there."""
        wanted = self._ids.missing(labels)
        if wanted:
            records = self._store.records_of(txn, wanted, False, False)
            if len(records) != len(wanted):
                return False
            self._ids.add(np.array(wanted, dtype=np.int64), [bytes(records[label][0]) for label in wanted])
        return True

    def _filter_entry(self, txn: lmdb.Transaction[bytes], config: CollectionConfig, node: Filter,
                      stored_only: bool) -> list:
        """The filter cache's ``[mask, live count or None]`` of ``node``."""
        # Repeated filters (a tenant, a language) are the common case: their
        # mask is kept until the next write changes the collection.
        key = _filter_key(node, stored_only, config.sequence)
        cached = self._filter_cache.get(key)
        if cached is not None:
            return cached
        mask = FilterEvaluator(txn, self._store, self._store.payload_indexes(config), config.next_label).allowed(node)
        if stored_only:
            stored = np.zeros(len(mask), dtype=bool)
            labels = self._store.all_labels(txn)
            stored[labels[labels < len(mask)]] = True
            mask &= stored
        freeze_mask(mask)  # never changed again: searches pack it into bits once
        entry = [mask, None]
        with self._filter_cache_lock:
            self._filter_cache[key] = entry
            while len(self._filter_cache) > FILTER_CACHE_SIZE:
                self._filter_cache.popitem(last=False)
        return entry

    def _hits(self, txn: lmdb.Transaction[bytes], labels: np.ndarray, scores: np.ndarray,
              with_payload: bool, with_vector: bool, with_document: bool = False) -> Tuple[List[List[Hit]], bool]:
        """Hits with ids (and payloads, vectors, documents) read in ``txn``,
        and whether every label the index returned is stored there."""
        wanted = labels[labels >= 0].tolist()
        records = self._store.records_of(txn, wanted, with_payload, with_vector)
        documents = self._store.documents_of(txn, wanted) if with_document else {}
        results: List[List[Hit]] = []
        for row_labels, row_scores in zip(labels.tolist(), scores.tolist()):
            row: List[Hit] = []
            for label, score in zip(row_labels, row_scores):
                if label < 0:
                    break
                record = records.get(label)
                if record is not None:  # else deleted after the index answered
                    row.append(Hit(id=user_id_from_key(record[0]), score=score, payload=record[1], vector=record[2],
                                   document=documents.get(label)))
            results.append(row)
        complete = len(records) == len(set(wanted))
        return results, complete


def _filter_key(node: Filter, stored_only: bool, sequence: int) -> tuple:
    """The filter cache's key of ``node``'s mask at a collection state."""
    return (repr(node), stored_only, sequence)


def _describe_for_planner(indexes: IndexSet, config: CollectionConfig) -> SearchShape:
    spec = config.index_spec
    pq = config.pq
    missing = ""
    if config.mrl_dims and not indexes.prefixes:
        missing = (f"the PCA rotation is learned once the collection holds {rotation_train_size(config.dim):,} "
                   f"vectors (it has {len(indexes):,})" if config.rotation_version == 0 else
                   "the stored PCA rotation could not be read; Collection.learn_rotation() learns a new one")
    return SearchShape(
        count=len(indexes), dim=config.dim, main_kind=indexes.main.kind,
        ef_search=spec.ef_search if isinstance(spec, HNSW) else 0,
        graph_m=spec.M if isinstance(spec, HNSW) else 0,
        prefix_dims=tuple(sorted(indexes.prefixes)), prefix_kind="exact" if isinstance(spec, Flat) else "graph",
        pq_m=pq.m if pq and pq.m else 0, pq_rerank=pq.rerank if pq else 0,
        default_plan=None if config.default_plan is None else plan_from_dict(config.default_plan),
        default_plan_k=config.default_plan_k,
        prefixes_missing=missing)


def _prepare(choice: Choice, indexes: IndexSet, k: int, ef: Optional[int], allowed: Optional[np.ndarray]) -> Runner:
    """:func:`_run` with these arguments, as a function of the queries."""
    direct = None if allowed is not None else graph_runner(choice.plan, indexes, k, ef)
    return direct or (lambda queries: _run(choice, indexes, queries, k, ef, allowed, None))


def _run(choice: Choice, indexes: IndexSet, queries: np.ndarray, k: int, ef: Optional[int],
         allowed: Optional[np.ndarray], times: Optional[StageTimes]) -> Tuple[np.ndarray, np.ndarray]:
    # Results are allocated k wide: never wider than the collection.
    return execute(choice.plan, indexes, queries, min(k, max(1, len(indexes))), ef, allowed, times,
                   indexed_any=allowed is None or choice.estimates["allowed"] > 0)


def _scores(distances: np.ndarray, metric: str) -> np.ndarray:
    """Distances (smaller is closer) to the scores hits report."""
    if metric == "l2":
        return np.sqrt(np.maximum(distances, 0.0))
    return 1.0 - distances
