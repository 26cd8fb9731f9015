"""A collection: points (id, vector, payload) stored durably in LMDB and
searched through an in-memory index.

Every public method validates and normalizes its input, then makes one call
into the layer below (the LMDB store, the indexes, the searcher:
:mod:`vecdb.query.searcher` runs searches and keeps their caches).

Guarantees:
- ``upsert`` and ``delete`` are all-or-nothing and durable when they return
  (one LMDB write transaction, fsynced on commit).
- An upsert of new points returns once committed: in a collection with a
  graph index, a background indexer moves them into the graph afterwards
  (:mod:`vecdb.index.indexer`), and until then searches scan them exactly
  (:mod:`vecdb.index.backlog`), so every search sees every committed point.
- Searches run on any number of threads while another thread writes (the
  native search releases the GIL); a search sees a write completely or not at
  all, and never returns a point whose delete has returned.
- Writes on one collection run one at a time.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Generator, Iterator, List, Optional, Sequence, Tuple, Union, overload

import lmdb
import numpy as np

from vecdb.api import CollectionAPI
from vecdb.checks import check_k, check_timeout, positive_int
from vecdb.config import HNSW, PQ, CollectionConfig, IndexSpec
from vecdb.errors import (
    CollectionNotFoundError,
    InvalidArgumentError,
    ReadOnlyError,
    VecdbError,
)
from vecdb.index.backlog import Backlog
from vecdb.index.indexer import IndexLock, Indexer
from vecdb.index.loader import (
    LoadedIndex,
    build_main_index,
    build_prefix_indexes,
    catch_up_or_reload,
    load_indexes,
    save_snapshots,
)
from vecdb.index.prefix_index import IndexSet
from vecdb.index.rotation import (
    MAX_SAMPLES,
    learn_pca_rotation,
    rotation_from_bytes,
    rotation_to_bytes,
    rotation_train_size,
)
from vecdb.native.pq import CENTROIDS, ProductQuantizer, train_codebooks
from vecdb.payload_fields import check_field, check_kind
from vecdb.plans import Plan, plan_to_dict
from vecdb.progress import Progress
from vecdb.query.arguments import (
    check_delete,
    check_flags,
    check_ids,
    check_overrides,
    check_recall,
    check_search,
    check_tuning_queries,
    check_upsert,
)
from vecdb.query.filters import parse_filter
from vecdb.query.searcher import IndexWriteLock, Searcher
from vecdb.query.planner import SearchShape
from vecdb.query.tuning import TRUTH_CHUNK, exact_neighbours, time_plan, tune_collection
from vecdb.records import Hit, Record, UserId
from vecdb.reports import Explanation, TuneReport
from vecdb.storage.collection_store import CollectionStore
from vecdb.storage.environment import Environment
from vecdb.storage.keys import user_id_from_key, user_id_key
from vecdb.storage.payloads import encode_payloads

# Snapshot the graph once SNAPSHOT_MIN_CHANGES points changed since the last
# snapshot, or SNAPSHOT_SHARE of the collection if that is more: reopening
# after a crash replays at most that many changes, and snapshot writing stays
# a small share of ingest (snapshot sizes grow geometrically).
SNAPSHOT_MIN_CHANGES = 20_000
SNAPSHOT_SHARE = 0.5
# Points waiting for the background indexer past which an upsert indexes
# them itself before it returns (the backpressure; vecdb.open(path,
# index_backlog=...)): every search scans the backlog exactly, so it bounds
# what that costs (memory-bound: ~9 ms for 30k vectors of 384 dimensions),
# and how much of an ingest burst returns before the graph holds it.
# 0: each upsert indexes its points before it returns.
DEFAULT_INDEX_BACKLOG = 32_768


class Collection(CollectionAPI):
    """Points with vectors and payloads, searchable by vector similarity and
    filterable by payload. Get one from :meth:`vecdb.Database.create_collection`
    or :meth:`~vecdb.Database.get_collection`."""

    def __init__(self, environment: Environment, folder: Path, config: CollectionConfig, progress: Progress,
                 trains_itself: bool = True, index_backlog: int = DEFAULT_INDEX_BACKLOG) -> None:
        self._environment = environment
        # Whether upserts train the PQ codebooks and the PCA rotation when the
        # collection reaches its training size (a cluster's shards do not:
        # the cluster trains once, on a sample of every shard, and installs
        # the result on each).
        self._trains_itself = trains_itself
        self._folder = folder
        self._progress = progress  # index builds report to it
        self._config = config
        self._store = CollectionStore(environment, config)
        self._write_lock = IndexWriteLock()
        self._searcher = Searcher(environment, self._store, lambda: (self._indexes, self._config),
                                  lambda: (self._write_lock.epoch, self._sequence),
                                  self._write_lock.paused if environment.writable else self._caught_up_and_held)
        self._dropped = False
        # Held to change what the indexes hold (the indexer moving a chunk of
        # the backlog in, a replace or delete of points they hold, a snapshot);
        # inside the write lock when a writer takes both. Reentrant: a step of
        # the indexer snapshots with it held.
        self._index_lock = IndexLock()
        # Graphs are filled off the write path (see the module's docstring);
        # exact indexes take writes at once (adding a row is all they do).
        self._backlog: Optional[Backlog] = None
        self._indexer: Optional[Indexer] = None
        self._backlog_limit = index_backlog
        if environment.writable and isinstance(config.index_spec, HNSW):
            self._backlog = Backlog(config.dim, config.metric)
            self._indexer = Indexer(config.name, self._backlog, self._index_lock, self._index_points,
                                    self._snapshot_if_due, self._maintain)
        self._indexes: IndexSet  # set by _adopt, with the sequence it reflects
        commit = environment.seen_commit()  # before loading: the indexes reflect at least this
        self._adopt(load_indexes(environment, folder, self._store, progress))
        self._searcher.caught_up(commit, changed=False)
        threading.Thread(target=self._warm_ids, name=f"vecdb-ids-{config.name}", daemon=True).start()

    # ---- description ----

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def dim(self) -> int:
        return self._config.dim

    @property
    def metric(self) -> str:
        return self._config.metric

    @property
    def index(self) -> IndexSpec:
        """The index settings the collection was created with."""
        return self._config.index_spec

    @property
    def quantization(self) -> Optional[PQ]:
        """The PQ settings the collection was created with (None: vectors in RAM)."""
        return self._config.pq

    @property
    def payload_indexes(self) -> Dict[str, str]:
        """Indexed payload fields and their kinds."""
        return dict(self._config.payload_indexes)

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, dim={self.dim}, metric={self.metric!r}, index={self.index})"

    # ---- writes ----

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None) -> None:
        """Insert points, or replace them (vector and payload) where the id exists.

        Args:
            ids: a list of string or integer ids, distinct within the call
                (one id with a 1-D vector is accepted too).
            vectors: ``(n, dim)`` array-like, or one ``(dim,)`` vector.
            payloads: None, or one JSON-like dict (or None) per id.

        Durable when it returns; if anything is invalid nothing is written.
        Every search that begins after it returns finds these points. In a
        collection with a graph index, new points are added to the graph
        by a background indexer (:meth:`wait_indexed` waits for it); until
        then searches scan them exactly. Points the graph holds already are
        replaced in it before the upsert returns.

        In a collection with ``quantization=vecdb.PQ(...)``, reaching
        ``train_size`` vectors trains the codebooks and re-indexes every
        vector as codes (seconds: in the background with a graph index,
        searches go on meanwhile; else before the upsert returns).
        """
        self._check_live()
        id_list, matrix = check_upsert(ids, vectors, self.dim)
        payload_dicts, blobs = encode_payloads(payloads, len(id_list))
        if not id_list:
            return
        id_keys = [user_id_key(user_id) for user_id in id_list]
        with self._write_lock.writing() as writing:
            first_new_label = self._config.next_label

            def store(txn: Any) -> Tuple[CollectionConfig, np.ndarray]:
                stored = self._store.upsert(txn, id_keys, matrix, payload_dicts, blobs)
                writing.publish()  # searches see the batch from the commit on
                return stored

            config, labels = self._environment.write(store)
            self._searcher.written(labels, id_keys)
            try:
                if self._indexer is None:
                    self._indexes.add(labels, matrix)
                else:
                    self._queue(labels, matrix, config.sequence, first_new_label)
                    while len(self._indexes.backlog or ()) > self._backlog_limit:  # the indexer lags: help it
                        self._indexer.step()
            finally:  # committed: the handle's settings follow (labels given out) even if indexing failed
                self._after_write(config, len(labels))  # after the steps: a snapshot due may hold this batch
            if self._indexer is None or not self._backlog_limit:
                self._train_if_due()
            else:
                self._indexer.start()

    def _queue(self, labels: np.ndarray, vectors: np.ndarray, sequence: int, first_new_label: int) -> None:
        """Hand the points of an upsert committed at ``sequence`` to the
        indexer: new ones (labels from ``first_new_label`` on) to the
        backlog; points the indexes hold already are replaced in them now
        (so a search never scores a stale vector while the new one waits)."""
        assert self._backlog is not None
        new = labels >= first_new_label
        if not new.all():
            with self._index_lock:  # no step of the indexer moves them meanwhile
                labels_held, vectors_held = labels[~new], vectors[~new]
                waiting = self._backlog.holds(labels_held)
                if waiting.any():
                    self._backlog.append(labels_held[waiting], vectors_held[waiting], sequence)
                if not waiting.all():
                    self._indexes.add(labels_held[~waiting], vectors_held[~waiting])
                    self._indexes_through = sequence
        if new.any():
            self._backlog.append(labels[new], vectors[new], sequence)

    def _index_points(self, labels: np.ndarray, vectors: np.ndarray, threads: Optional[int]) -> None:
        """Add points from the backlog to every index (a step of the indexer)."""
        self._indexes.add(labels, vectors, threads)

    def wait_indexed(self, timeout: Optional[float] = None) -> bool:
        """Wait until every committed point is in the collection's indexes
        (and codebooks or a rotation that were due are learned); False if
        ``timeout`` seconds passed first. Searches never need this (points
        waiting are searched exactly); benchmarks and snapshots may. The
        waiting is done by indexing on this thread."""
        self._check_live()
        timeout = check_timeout(timeout)
        if self._indexer is None:
            return True
        return self._indexer.finish(timeout)

    def _maintain(self) -> None:
        """Learn the codebooks or rotation that are due (the indexer calls
        this once the backlog is empty after writes)."""
        with self._write_lock:
            if not self._dropped:
                self._train_if_due()

    def _drain(self) -> None:
        """Index every point waiting (call with the write lock held, so no
        more come): for work that needs the indexes complete."""
        if self._indexer is not None:
            self._indexer.drain()

    def _train_if_due(self) -> None:
        """Train the PQ codebooks or learn the PCA rotation when the
        collection first holds enough vectors (with the write lock held)."""
        config = self._config
        pq = config.pq
        if not self._trains_itself:
            return
        if pq is not None and config.quantizer_version == 0 and len(self._indexes) >= pq.train_size:
            try:
                self._train_quantizer(pq)
            except Exception as exc:  # the batch is committed: report, search exactly, retry next time
                warnings.warn(f"collection {self.name!r}: training the PQ codebooks failed ({exc}); "
                              "searching exactly until the next upsert tries again", RuntimeWarning, stacklevel=3)
        if (config.rotate and not self._indexes.prefixes
                and len(self._indexes) >= rotation_train_size(self.dim)):
            try:
                self._learn_rotation()
            except Exception as exc:  # the batch is committed: report, search in full, retry next time
                warnings.warn(f"collection {self.name!r}: learning the PCA rotation failed ({exc}); searching "
                              "without prefix indexes until the next upsert tries again",
                              RuntimeWarning, stacklevel=3)

    def train_quantizer(self) -> None:
        """Train the PQ codebooks again on the collection's current vectors
        and re-index every vector with them (collections created with
        ``quantization=vecdb.PQ(...)``, which train once on their own when
        they reach ``train_size`` vectors; train again after the data has
        drifted). Needs at least 256 vectors. Durable when it returns."""
        self._check_live()
        pq = self._config.pq
        if pq is None:
            raise InvalidArgumentError(f"collection {self.name!r} has no quantization "
                                       "(create it with quantization=vecdb.PQ(...))")
        if not self._environment.writable:
            raise ReadOnlyError("the database was opened read-only; train_quantizer writes codebooks")
        with self._write_lock:
            self._train_quantizer(pq)

    def _train_quantizer(self, pq: PQ) -> None:
        with self._environment.read() as txn:
            config = self._store.config(txn)
            count = self._store.count(txn)
            if count < CENTROIDS:
                raise InvalidArgumentError(f"PQ training needs at least {CENTROIDS} vectors; "
                                           f"collection {self.name!r} has {count}")
            sample = self._store.sample_vectors(txn, self.dim, pq.max_samples, seed=config.quantizer_version)
        self._install_quantizer(train_codebooks(sample, self.dim, self.metric, pq, seed=config.quantizer_version))

    def _install_quantizer(self, quantizer: ProductQuantizer) -> None:
        """Re-index every vector with ``quantizer`` and store its codebooks
        (the caller holds the write lock)."""
        self._drain()
        with self._environment.read() as txn:
            config = self._store.config(txn)
        # The new index first, the codebooks committed after: a failure in
        # between leaves LMDB and the index as they were. (No other write can
        # come in between: this thread holds the write lock, this process the
        # writer lock.)
        version = config.quantizer_version + 1
        main = build_main_index(self._environment, self._store, replace(config, quantizer_version=version),
                                quantizer, self._progress)

        def body(txn):
            self._store.put_codebooks(txn, quantizer.to_bytes())
            return self._store.update_config(txn, quantizer_version=version)

        self._config = self._environment.write(body)
        indexes = self._indexes
        self._indexes = IndexSet(main, indexes.prefixes, indexes.rotation_version, indexes.backlog)
        self._indexes_through = self._sequence  # built from LMDB with nothing waiting
        self._searcher.forget_plan()  # it holds the indexes replaced
        self._changes_since_snapshot = len(main)
        self._snapshot_if_useful()

    def learn_rotation(self) -> None:
        """Learn the PCA rotation of a ``rotate="pca"`` collection again from
        its current vectors and rebuild its prefix indexes with it (done on
        its own once, when the collection first holds enough vectors; learn
        again after the data has drifted). Durable when it returns."""
        self._check_live()
        if self._config.rotate is None:
            raise InvalidArgumentError(f"collection {self.name!r} has no rotation (create it with mrl_dims=[...], "
                                       "rotate='pca')")
        if not self._environment.writable:
            raise ReadOnlyError("the database was opened read-only; learn_rotation writes the rotation")
        with self._write_lock:
            self._learn_rotation()

    def _learn_rotation(self) -> None:
        with self._environment.read() as txn:
            config = self._store.config(txn)
            count = self._store.count(txn)
            if count < self.dim:
                raise InvalidArgumentError(f"learning a rotation of {self.dim} dimensions needs at least {self.dim} "
                                           f"vectors; collection {self.name!r} has {count}")
            sample = self._store.sample_vectors(txn, self.dim, MAX_SAMPLES, seed=config.rotation_version)
        self._install_rotation(learn_pca_rotation(sample, self.metric))

    def _install_rotation(self, rotation: np.ndarray) -> None:
        """Rebuild the prefix indexes with ``rotation`` and store it (the
        caller holds the write lock)."""
        self._drain()
        with self._environment.read() as txn:
            config = self._store.config(txn)
        # New prefix indexes first, the rotation committed after (as for codebooks).
        version = config.rotation_version + 1
        prefixes = build_prefix_indexes(self._environment, self._store, config, rotation, self._progress)

        def body(txn):
            self._store.put_rotation(txn, rotation_to_bytes(rotation))
            return self._store.update_config(txn, rotation_version=version)

        self._config = self._environment.write(body)
        self._indexes = IndexSet(self._indexes.main, prefixes, version, self._indexes.backlog)
        self._indexes_through = self._sequence  # built from LMDB with nothing waiting
        self._searcher.forget_plan()  # it holds the indexes replaced
        self._changes_since_snapshot = len(self._indexes)
        self._snapshot_if_useful()

    def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """Delete points by id and/or by payload filter; returns how many were
        deleted. Ids that do not exist are skipped."""
        self._check_live()
        id_list, node = check_delete(ids, filter)
        id_keys = [user_id_key(user_id) for user_id in id_list]
        with self._write_lock:
            with self._environment.read() as txn:
                config = self._store.config(txn)
                labels = self._store.labels_of(txn, id_keys)
                if node is not None:
                    labels = np.union1d(labels, np.flatnonzero(self._searcher.matching(txn, config, node)))
            if not len(labels):
                return 0
            # Out of the indexes first, so no search returns a point whose
            # record is going; put back if the transaction fails.
            with self._index_lock:
                indexed = self._backlog is None or not self._backlog.holds(labels).all()
                self._indexes.delete(labels)
                if self._backlog is not None:
                    self._backlog.discard(labels)
                try:
                    config, deleted = self._environment.write(lambda txn: self._store.delete(txn, labels))
                except BaseException:
                    self._restore(labels)
                    raise
                if indexed:
                    self._indexes_through = config.sequence
                self._deletes_through = config.sequence
            self._searcher.forget_payloads(labels)  # memory only: a deleted label is never returned again
            self._after_write(config, len(deleted))
        return len(deleted)

    def _restore(self, labels: np.ndarray) -> None:
        with self._environment.read() as txn:
            self._store.config(txn)
            stored = [(int(label), self._store.vector_of(txn, int(label))) for label in labels]
        present = [(label, vector) for label, vector in stored if vector is not None]
        if present:
            self._indexes.add(np.array([label for label, _ in present], dtype=np.int64),
                              np.stack([vector for _, vector in present]))

    def create_payload_index(self, field: str, kind: str) -> None:
        """Index a payload field (``kind``: ``"keyword"``, ``"integer"``,
        ``"float"`` or ``"bool"``) so filters on it are answered from the
        index instead of a scan of every payload. Existing points are
        indexed now; a point whose value does not fit the kind is refused
        (here, or in a later upsert) with InvalidPayloadError."""
        self._check_live()
        field, kind = check_field(field), check_kind(kind)
        with self._write_lock:
            self._config = self._environment.write(lambda txn: self._store.create_payload_index(txn, field, kind))

    def drop_payload_index(self, field: str) -> None:
        """Remove a payload index (filters on the field then scan payloads);
        a field without one is left as it is."""
        self._check_live()
        field = check_field(field)
        with self._write_lock:
            self._config = self._environment.write(lambda txn: self._store.drop_payload_index(txn, field))

    def compact(self) -> int:
        """Repair the index around deleted points and free their memory (also
        done automatically once a quarter of the graph is deleted); returns
        how many deleted points' room was reclaimed."""
        self._check_live()
        with self._write_lock, self._index_lock:
            reclaimed = self._indexes.compact()
            if reclaimed and self._environment.writable:
                self._snapshot()
        return reclaimed

    # ---- reads ----

    @overload
    def search(self, query: Sequence[float], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False) -> List[Hit]: ...

    @overload
    def search(self, query: Sequence[Sequence[float]], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False) -> List[List[Hit]]: ...

    @overload
    def search(self, query: Any, k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False) -> Union[List[Hit], List[List[Hit]]]: ...

    def search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> Union[List[Hit], List[List[Hit]]]:
        """The ``k`` points nearest to ``query`` (best first), optionally
        only among points whose payload matches ``filter``.

        A 1-D query returns a list of :class:`Hit`; a 2-D batch returns one
        list per query. Fewer than ``k`` hits come back when fewer points
        exist or match. The query planner picks how to search (see
        :meth:`explain`); these override it:

        Args:
            ef: beam width of graph searches (default: the collection's
                ``ef_search``): higher is more accurate and slower.
            dims: search only the index of this prefix size (one of the
                collection's ``mrl_dims``): fastest, scores are the prefix's.
            plan: force a plan: ``vecdb.plans.Scan()``, ``Graph(ef=...)``,
                ``Funnel(dims=..., candidates=...)``, ``Prefix(dims=...)``.
        """
        self._check_live()
        queries, single, k, ef, node = check_search(query, k, ef, filter, self.dim)
        dims, plan = check_overrides(dims, plan)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        hits = self._searcher.search(queries, k, ef=ef, node=node, dims=dims, plan=plan, with_payload=with_payload,
                                     with_vector=with_vector)
        return hits[0] if single else hits

    def explain(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        execute: bool = False,
    ) -> Explanation:
        """The plan :meth:`search` would run with these arguments: its
        stages, estimated cost, why it was chosen, the alternatives and the
        estimates behind it (points, how many the filter allows). With
        ``execute=True`` the search runs too, and each stage reports its
        measured time and output size (per query). ``print()`` it to read it.
        """
        self._check_live()
        queries, _, k, ef, node = check_search(query, k, ef, filter, self.dim)
        if queries.shape[0] == 0:
            raise InvalidArgumentError("explain needs at least one query")
        dims, plan = check_overrides(dims, plan)
        return self._searcher.explain(queries, k, ef=ef, node=node, dims=dims, plan=plan, execute=execute)

    def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0) -> TuneReport:
        """Find the fastest plan whose recall@k reaches ``target_recall`` and
        make it the collection's default for unfiltered searches (stored
        with the collection; filtered searches still weigh it against a scan).

        Samples ``queries`` stored vectors as pseudo-queries (or takes a
        ``(n, dim)`` array of real queries: better, since stored points are
        easier to find than new ones), finds their exact neighbours (a
        stored query's own point left out), measures the recall and latency
        of candidate plans (graph ``ef``; funnel prefix size and candidates)
        and keeps the fastest of those meeting the target (timed in
        interleaved rounds; within 10% the cost model's estimate decides),
        checked again on held-out queries (a second sample, or the other
        half of the array). The same data and seed try the same plans with
        the same recalls (see :mod:`vecdb.query.tuning`).
        """
        self._check_live()
        if not self._environment.writable:
            raise ReadOnlyError("the database was opened read-only; tune stores the chosen plan")
        with self._write_lock:
            self._drain()  # tuned on the indexes searches will use
            indexes = self._indexes
            report = tune_collection(self._environment, self._store, indexes,
                                     self._searcher.shape(indexes, self._config), self.dim,
                                     self.metric, check_recall(target_recall), check_k(k),
                                     check_tuning_queries(queries, self.dim), positive_int(seed, "seed", 0))
            self._config = self._environment.write(lambda txn: self._store.update_config(
                txn, default_plan=plan_to_dict(report.plan), default_plan_k=report.k))
        return report

    def get(self, ids: Any, *, with_payload: bool = True, with_vector: bool = False) -> List[Record]:
        """The stored points with these ids, in the order asked; ids that do
        not exist are left out."""
        self._check_live()
        id_list = check_ids(ids, None)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        with self._environment.read() as txn:
            self._store.config(txn)
            found = self._store.records_by_id(txn, [user_id_key(user_id) for user_id in id_list], with_payload,
                                              with_vector)
        return [Record(id=user_id, payload=record[1], vector=record[2])
                for user_id, record in zip(id_list, found) if record is not None]

    def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """Number of points, or of points whose payload matches ``filter``."""
        self._check_live()
        node = None if filter is None else parse_filter(filter)
        with self._environment.read() as txn:
            config = self._store.config(txn)
            if node is None:
                return self._store.count(txn)
            return int(np.count_nonzero(self._searcher.matching(txn, config, node)))

    def scroll(
        self,
        filter: Optional[Dict[str, Any]] = None,
        limit: int = 100,
        cursor: Optional[int] = None,
        *,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> Tuple[List[Record], Optional[int]]:
        """Page through points in insertion order: returns up to ``limit``
        records and the cursor of the next page (None at the end)."""
        self._check_live()
        limit = positive_int(limit, "limit")
        start = 0 if cursor is None else positive_int(cursor, "cursor", 0)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        node = None if filter is None else parse_filter(filter)
        with self._environment.read() as txn:
            config = self._store.config(txn)
            if node is None:
                labels = self._store.labels_after(txn, start, limit + 1)
            else:
                matching = np.flatnonzero(self._searcher.matching(txn, config, node))
                labels = matching[matching >= start][: limit + 1]
            next_cursor = int(labels[limit]) if len(labels) > limit else None
            found = self._store.records_of(txn, labels[:limit].tolist(), with_payload, with_vector)
        records = [Record(id=user_id_from_key(id_key), payload=payload, vector=vector)
                   for id_key, payload, vector in found.values()]  # in label order, as asked
        return records, next_cursor

    def stats(self) -> Dict[str, Any]:
        """Counts, sequence numbers and the in-memory index's size."""
        self._check_live()
        with self._environment.read() as txn:
            config = self._store.config(txn)
            count = self._store.count(txn)
        with self._index_lock:  # not while the indexer moves points (they would count twice)
            indexes = self._indexes
            index_count, backlog = len(indexes), len(indexes.backlog or ())
        mrl = None if not config.mrl_dims else {
            "dims": list(config.mrl_dims), "rotate": config.rotate, "rotation_trained": config.rotation_version > 0,
            "rotation_version": config.rotation_version,
            "prefix_memory_bytes": {dims: prefix.memory_bytes() for dims, prefix in indexes.prefixes.items()}}
        pq = config.pq
        quantization = None if pq is None else {"m": pq.m, "rerank": pq.rerank, "train_size": pq.train_size,
                                                "opq": pq.opq, "trained": config.quantizer_version > 0,
                                                "quantizer_version": config.quantizer_version}
        return {"name": self.name, "count": count, "dim": self.dim, "metric": self.metric,
                "index": type(self.index).__name__, "quantization": quantization, "mrl": mrl,
                "default_plan": config.default_plan, "index_count": index_count, "index_backlog": backlog,
                "index_memory_bytes": indexes.main.memory_bytes(),
                "cache_memory_bytes": self._searcher.cache_memory_bytes(), "sequence": config.sequence,
                "index_sequence": self._sequence, "index_source": self._index_source,
                "payload_indexes": dict(config.payload_indexes)}

    # ---- internals ----

    def _after_write(self, config: CollectionConfig, changed: int) -> None:
        self._config = config
        self._sequence = config.sequence  # what the indexes and their backlog reflect
        self._changes_since_snapshot += changed
        self._snapshot_if_due()

    def _snapshot_if_due(self) -> None:
        if self._changes_since_snapshot >= max(SNAPSHOT_MIN_CHANGES, SNAPSHOT_SHARE * len(self._indexes)):
            self._snapshot_if_useful()

    def _snapshot_if_useful(self) -> None:
        if self._indexes.snapshots and self._changes_since_snapshot:
            self._snapshot()

    def _snapshot(self) -> None:
        """Save the indexes, stamped with the change sequence whose state they
        hold exactly, if they hold one: every change up to it and none after
        (a read-only process loads the snapshot at its own state, which may
        be that one). With points waiting in the backlog, that is the state
        before the oldest of them, unless the indexes took a later change
        already (a replace or delete of a point they hold, part of a commit
        the indexer moved): then no snapshot now; the indexer's next steps
        give another chance."""
        with self._index_lock:
            if self._dropped:
                return
            sequence = self._sequence
            if self._backlog is not None:
                newest = max(self._indexes_through, self._backlog.indexed_through)
                oldest = self._backlog.oldest_sequence()
                if oldest is not None and newest >= oldest:
                    return
                # Nothing waits: the indexes hold every change so far (a delete of points that only waited too).
                sequence = max(newest, self._deletes_through) if oldest is None else oldest - 1
            save_snapshots(self._environment, self._folder, self._store, self._config, self._indexes, sequence)
            self._changes_since_snapshot = 0

    def _adopt(self, loaded: LoadedIndex) -> None:
        loaded.indexes.backlog = self._backlog
        self._indexes, self._sequence = loaded.indexes, loaded.sequence
        # The newest change a write applied to the indexes themselves, not
        # to the backlog, and the newest delete (see _snapshot).
        self._indexes_through = self._deletes_through = loaded.sequence
        self._searcher.forget_plan()  # it holds the indexes replaced
        self._changes_since_snapshot = loaded.unsaved
        self._index_source = loaded.source

    def _warm_ids(self) -> None:
        """Fill the id cache from LMDB (in the background from the open on:
        the first searches need not read ids either)."""
        try:
            self._searcher.warm_ids(lambda: self._dropped)
        except (VecdbError, lmdb.Error):  # dropped, closed or damaged: searches read ids as they go (and report damage)
            pass

    def _is_current(self) -> bool:
        """Whether the collection this handle was opened on still exists
        (neither dropped nor dropped and created again)."""
        if self._dropped:
            return False
        try:
            with self._environment.read() as txn:
                self._store.config(txn)
        except CollectionNotFoundError:
            return False
        return True

    def _check_live(self) -> None:
        if self._dropped:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped")

    # ---- used by collection backups (vecdb.transfer.collection_copy) ----

    def _read_all(self, batch_size: int) -> Generator[List[Record], None, None]:
        """Every point with its payload and vector, in insertion order, in
        lists of up to ``batch_size``, all read in one read transaction: one
        committed state, whatever writers commit meanwhile. The transaction
        stays open until the iteration ends (LMDB cannot reuse the pages
        writers free meanwhile): consume it promptly."""
        self._check_live()
        with self._environment.read() as txn:
            self._store.config(txn)
            labels = self._store.all_labels(txn).tolist()
            for start in range(0, len(labels), batch_size):
                batch = labels[start:start + batch_size]
                found = self._store.records_of(txn, batch, True, True)
                yield [Record(id=user_id_from_key(found[label][0]), payload=found[label][1], vector=found[label][2])
                       for label in batch]

    # ---- used by a cluster's shards (vecdb.cluster.shard) ----

    def _sample(self, count: int, seed: int) -> np.ndarray:
        """Up to ``count`` stored vectors, chosen at random with ``seed``."""
        self._check_live()
        with self._environment.read() as txn:
            self._store.config(txn)
            return self._store.sample_vectors(txn, self.dim, count, seed=seed)

    def _sample_points(self, count: int, seed: int) -> Tuple[List[UserId], np.ndarray]:
        """Up to ``count`` stored points chosen at random: ids and vectors."""
        self._check_live()
        with self._environment.read() as txn:
            self._store.config(txn)
            labels = self._store.all_labels(txn)
            if len(labels) > count:
                labels = np.sort(np.random.default_rng(seed).choice(labels, size=count, replace=False))
            vectors, _ = self._store.vectors_of(txn, labels, self.dim)
            found = self._store.records_of(txn, labels.tolist(), False, False)
        return [user_id_from_key(found[label][0]) for label in labels.tolist()], vectors

    def _exact_neighbours(self, queries: np.ndarray, k: int) -> Tuple[List[List[UserId]], np.ndarray]:
        """The ids of each query's k nearest stored vectors (a scan of every
        stored vector, whatever the index) and their distances."""
        self._check_live()
        with self._environment.read() as txn:
            self._store.config(txn)
            labels, distances = exact_neighbours(self._store.vector_chunks(txn, self.dim, TRUTH_CHUNK), queries, k,
                                                 self.metric)
            found = self._store.records_of(txn, sorted({int(label) for label in labels.ravel()}), False, False)
        return [[user_id_from_key(found[label][0]) for label in row] for row in labels.tolist()], distances

    def _time_plan(self, plan: Plan, queries: np.ndarray, k: int) -> float:
        """Microseconds per single query of ``plan`` on this collection's
        index set (the search itself: no filter, no records read)."""
        self._check_live()
        return time_plan(self._indexes)(plan, queries, k)

    def _search_shape(self) -> SearchShape:
        """What the query planner knows of this collection's indexes."""
        return self._searcher.shape(self._indexes, self._config)

    def _set_default_plan(self, plan: Plan, k: int) -> None:
        """Make ``plan`` the default for unfiltered searches of ``k`` (the
        plan a tuning of the whole cluster chose)."""
        self._check_live()
        with self._write_lock:
            self._config = self._environment.write(lambda txn: self._store.update_config(
                txn, default_plan=plan_to_dict(plan), default_plan_k=k))

    def _adopt_quantizer(self, codebooks: bytes) -> None:
        """Re-index with codebooks trained elsewhere (on the whole cluster)."""
        self._check_live()
        with self._write_lock:
            self._install_quantizer(ProductQuantizer.from_bytes(codebooks))

    def _adopt_rotation(self, rotation: bytes) -> None:
        """Rebuild the prefix indexes with a rotation learned elsewhere."""
        self._check_live()
        with self._write_lock:
            self._install_rotation(rotation_from_bytes(rotation, self.dim))

    # ---- used by Database ----

    def _close(self) -> None:
        """Index what waits, then snapshot unsaved index changes (writer
        handles only)."""
        if self._indexer is not None:
            self._indexer.stop()
            self._indexer.finish()  # what the indexer would have done next
        with self._write_lock:
            if self._environment.writable:
                self._snapshot_if_useful()

    def _stop_indexing(self) -> None:
        """No more background work (the collection is being dropped; call
        with the write lock held): waits for the indexer's step in flight."""
        if self._indexer is not None:
            self._indexer.stop()
            with self._index_lock:
                pass

    def _refresh(self) -> None:
        """Catch up with writes committed by another process since this
        handle's index was loaded."""
        with self._write_lock:
            self._catch_up()

    @contextmanager
    def _caught_up_and_held(self) -> Iterator[None]:
        """(Read-only handles) A read transaction, held open for the block,
        whose state the indexes reflect exactly: caught up to it, and no
        other thread's catching up meanwhile. A search's last attempt runs
        in it (searches that overlapped a catching up, or ran on indexes
        behind their transaction, found a point moved into their filter in
        neither state, ~1 search in 1,000 under a probe)."""
        with self._write_lock, self._environment.read():
            self._catch_up()
            yield

    def _catch_up(self) -> None:
        """Catch up to the state a read transaction begun now sees (in a
        ``read()`` block, that block's); call with the write lock held."""
        commit, sequence = self._environment.seen_commit(), self._sequence
        self._adopt(catch_up_or_reload(self._environment, self._folder, self._store, self._indexes,
                                       self._sequence, self._progress))
        with self._environment.read() as txn:
            self._config = self._store.config(txn)
        self._searcher.caught_up(commit, changed=self._sequence != sequence)

