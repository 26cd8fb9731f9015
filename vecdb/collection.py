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
import time
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Dict, Generator, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union, overload)

import lmdb
import numpy as np

from vecdb import arrow
from vecdb.api import CollectionAPI
from vecdb.checks import check_documents, check_k, check_timeout, positive_int
from vecdb.config import HNSW, PQ, CollectionConfig, IndexSpec, VectorSpec
from vecdb.fusion import Fusion, default_candidates, fusion_from_dict, fusion_to_dict
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError, ReadOnlyError, VecdbError
from vecdb.index.backlog import Backlog
from vecdb.index.indexer import IndexLock, Indexer
from vecdb.index.loader import (
    LoadedIndex,
    build_main_index,
    build_prefix_indexes,
    catch_up_or_reload,
    load_indexes,
    save_snapshots,
    snapshot_owner,
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
from vecdb.payload_fields import check_field, check_kind, keys_removal, payload_update
from vecdb.plans import Plan, plan_to_dict
from vecdb.progress import Progress
from vecdb.query.arguments import (
    check_branches,
    check_delete,
    check_flag,
    check_flags,
    check_ids,
    check_overrides,
    check_recall,
    check_search,
    check_tuning_queries,
    check_text,
    check_upsert,
    resolve_vector,
)
from vecdb.query.filters import parse_filter
from vecdb.query.fusion import branch_weights, fuse
from vecdb.query.grouping import grouped_search
from vecdb.query.recommend import recommend
from vecdb.query.searcher import IndexWriteLock, Scope, Searcher
from vecdb.query.planner import SearchShape
from vecdb.query.tuning import TRUTH_CHUNK, exact_neighbours, time_plan, tune_collection
from vecdb.records import Group, Hit, Record, UserId
from vecdb.reports import Explanation, Stage, TuneReport
from vecdb.storage.collection_store import CollectionStore
from vecdb.storage.environment import Environment
from vecdb.storage.keys import user_id_from_key, user_id_key
from vecdb.sparse import SparseVector, check_sparse_batch, check_sparse_query
from vecdb.storage.payloads import encode_payloads
from vecdb.index.term_indexes import Corpus, TextIndex, TermIndexes
from vecdb.index.term_snapshot import load_term_indexes, save_term_snapshot
from vecdb.text.settings import TextIndexSettings
from vecdb.text_in import TextIn
from vecdb.write_steps import WriteStep, commit_steps

if TYPE_CHECKING:  # optional: only to_arrow and to_pandas need them
    import pandas
    import pyarrow

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


class Collection(TextIn, CollectionAPI):
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
        self._embedding_progress = progress
        self._config = config
        self._embedding_config = config.embedding
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
        self._indexes_through: int  # set by _adopt (see there)
        self._deletes_through: int
        commit = environment.seen_commit()  # before loading: the indexes reflect at least this
        self._adopt(load_indexes(environment, folder, self._store, progress))
        self._searcher.caught_up(commit, changed=False)
        self._terms, self._terms_sequence = self._load_terms()
        if self._terms_sequence != self._sequence:  # a read-only handle: another process wrote meanwhile
            self._refresh()
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
    def vectors(self) -> Dict[str, VectorSpec]:
        """Empty: the collection has one unnamed vector (see
        :class:`vecdb.named_vectors.NamedVectorsCollection`)."""
        return {}

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

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
               sparse: Optional[Dict[str, Any]] = None, documents: Optional[Sequence[Optional[str]]] = None) -> None:
        """Insert points, or replace them (vector, payload, sparse vectors and document) where the id exists.

        Args:
            ids: a list of string or integer ids, distinct within the call
                (one id with a 1-D vector is accepted too).
            vectors: ``(n, dim)`` array-like, or one ``(dim,)`` vector.
            payloads: None, or one JSON-like dict (or None) per id.
            sparse: the points' sparse vectors, by declared name: ``{name:
                one sparse vector (or None) per id}`` or ``{name: a
                scipy.sparse matrix}`` (see :mod:`vecdb.sparse`); a name
                not given leaves these points without that vector.
            documents: None, or one string (or None) per id: the points'
                documents (text), stored beside their payloads, read back
                with ``with_document=True`` and filtered by ``{"$document":
                {"$contains": ...}}``. A point replaced without one loses
                its old one. (:meth:`add` embeds documents itself.)

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
        sparse_given = check_sparse_batch(sparse, self._config.sparse, len(id_list))
        texts = check_documents(documents, len(id_list))
        if not id_list:
            return
        commit_steps(self._environment, [self._upserting([user_id_key(user_id) for user_id in id_list], matrix,
                                                         payload_dicts, blobs, sparse_given, texts)])

    @contextmanager
    def _upserting(self, id_keys: List[bytes], matrix: np.ndarray, payload_dicts: List[Dict[str, Any]],
                   blobs: List[Optional[bytes]], sparse_given: Dict[str, Any],
                   documents: Optional[List[Optional[str]]] = None) -> Iterator[WriteStep]:
        """An upsert of checked points as a step of a write (see
        :mod:`vecdb.write_steps`): the write lock is held from here to the
        end, the indexes take the points after the commit."""
        if documents is not None and any(text is not None for text in documents):
            self._store.ensure_text_part()  # documents live there; outside any write transaction
        with self._write_lock.writing() as writing:
            self._check_live()
            first_new_label = self._config.next_label
            text = self._terms.analyze(payload_dicts)  # before anything is written: refuses what is not text
            sparse_vectors = {name: sparse_given.get(name) or [None] * len(id_keys) for name in self._config.sparse}

            def store(txn: Any) -> Tuple[CollectionConfig, np.ndarray]:
                stored = self._store.upsert(txn, id_keys, matrix, payload_dicts, blobs, text, sparse_vectors, documents)
                writing.publish()  # searches see the batch from the commit on
                return stored

            step = WriteStep(store)
            try:
                yield step
            finally:
                if step.committed:
                    self._upserted(step.result, id_keys, matrix, text, sparse_vectors, first_new_label)
            if self._indexer is None or not self._backlog_limit:
                self._train_if_due()
            else:
                self._indexer.start()

    def _upserted(self, stored: Tuple[CollectionConfig, np.ndarray], id_keys: List[bytes], matrix: np.ndarray,
                  text: Any, sparse_vectors: Dict[str, Any], first_new_label: int) -> None:
        """The in-memory indexes follow a committed upsert."""
        config, labels = stored
        self._terms.set(labels, text, sparse_vectors)
        self._terms_sequence = max(self._terms_sequence, config.sequence)
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
                warnings.warn(f"collection {config.label}: training the PQ codebooks failed ({exc}); "
                              "searching exactly until the next upsert tries again", RuntimeWarning, stacklevel=3)
        if (config.rotate and not self._indexes.prefixes
                and len(self._indexes) >= rotation_train_size(self.dim)):
            try:
                self._learn_rotation()
            except Exception as exc:  # the batch is committed: report, search in full, retry next time
                warnings.warn(f"collection {config.label}: learning the PCA rotation failed ({exc}); searching "
                              "without prefix indexes until the next upsert tries again",
                              RuntimeWarning, stacklevel=3)

    def train_quantizer(self, using: Optional[str] = None) -> None:
        """Train the PQ codebooks again on the collection's current vectors
        and re-index every vector with them (collections created with
        ``quantization=vecdb.PQ(...)``, which train once on their own when
        they reach ``train_size`` vectors; train again after the data has
        drifted). Needs at least 256 vectors. Durable when it returns."""
        self._check_live()
        if using is not None:
            self._refuse_using(using)
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

    def learn_rotation(self, using: Optional[str] = None) -> None:
        """Learn the PCA rotation of a ``rotate="pca"`` collection again from
        its current vectors and rebuild its prefix indexes with it (done on
        its own once, when the collection first holds enough vectors; learn
        again after the data has drifted). Durable when it returns."""
        self._check_live()
        if using is not None:
            self._refuse_using(using)
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
        deleted = commit_steps(self._environment, [self._deleting([user_id_key(user_id) for user_id in id_list],
                                                                  node)])[0]
        return 0 if deleted is None else len(deleted[1])

    def _labels_to_change(self, id_keys: List[bytes], node: Any) -> np.ndarray:
        """The labels of these ids and of the points matching filter ``node``."""
        with self._environment.read() as txn:
            config = self._store.config(txn)
            labels = self._store.labels_of(txn, id_keys)
            if node is not None:
                labels = np.union1d(labels, np.flatnonzero(self._searcher.matching(txn, config, node)))
        return labels

    def _id_keys_to_change(self, id_keys: List[bytes], node: Any) -> List[bytes]:
        """The stored id keys among ``id_keys`` and of the points matching
        filter ``node``, in label order."""
        labels = self._labels_to_change(id_keys, node)
        with self._environment.read() as txn:
            self._store.config(txn)
            found = self._store.records_of(txn, labels.tolist(), False, False)
        return [record[0] for record in found.values()]

    def _labels_in(self, txn: Any, ids: List[UserId]) -> np.ndarray:
        """The labels of those of these ids that exist in ``txn``, in the order given."""
        return self._store.labels_of(txn, [user_id_key(user_id) for user_id in ids])

    @contextmanager
    def _deleting(self, id_keys: List[bytes], node: Any) -> Iterator[WriteStep]:
        """A delete (by id keys and/or filter ``node``) as a step of a write:
        its ``result`` is the new settings and the labels deleted."""
        with self._write_lock:
            self._check_live()
            labels = self._labels_to_change(id_keys, node)
            if not len(labels):
                yield WriteStep(None)
                return
            # Out of the indexes first, so no search returns a point whose
            # record is going; put back if the transaction fails.
            with self._index_lock:
                indexed = self._backlog is None or not self._backlog.holds(labels).all()
                self._indexes.delete(labels)
                if self._backlog is not None:
                    self._backlog.discard(labels)
                step = WriteStep(lambda txn: self._store.delete(txn, labels))
                try:
                    yield step
                finally:
                    if step.committed:
                        config, deleted = step.result
                        self._terms.remove(deleted)
                        self._terms_sequence = max(self._terms_sequence, config.sequence)
                        if indexed:
                            self._indexes_through = max(self._indexes_through, config.sequence)
                        self._deletes_through = max(self._deletes_through, config.sequence)
                        self._searcher.forget_payloads(labels)  # memory only: a deleted label is never returned again
                        self._after_write(config, len(deleted))
                    else:
                        self._restore(labels)

    def update_payload(self, ids: Any = None, payload: Optional[Dict[str, Any]] = None, *,
                       filter: Optional[Dict[str, Any]] = None, merge: bool = True) -> int:
        """Change the payloads of points (by id and/or filter) without
        sending their vectors again: ``merge=True`` sets the keys of
        ``payload`` and keeps the others (Qdrant's set_payload), ``merge=False``
        replaces the whole payload. Returns how many points changed; ids
        that do not exist are skipped. All-or-nothing and durable, like an
        upsert."""
        return self._change_payloads(ids, filter, payload_update(payload, merge))

    def delete_payload_keys(self, ids: Any = None, keys: Optional[Sequence[str]] = None, *,
                            filter: Optional[Dict[str, Any]] = None) -> int:
        """Remove these keys (dotted paths reach into objects) from the
        payloads of points (by id and/or filter); returns how many points
        were found (keys they lack are skipped)."""
        return self._change_payloads(ids, filter, keys_removal(keys))

    def _change_payloads(self, ids: Any, filter: Any, change: Callable[[Dict[str, Any]], Dict[str, Any]]) -> int:
        self._check_live()
        id_list, node = check_delete(ids, filter)
        changed = commit_steps(self._environment, [self._changing_payloads(
            [user_id_key(user_id) for user_id in id_list], node, change)])[0]
        return 0 if changed is None else len(changed[1])

    @contextmanager
    def _changing_payloads(self, id_keys: List[bytes], node: Any,
                           change: Callable[[Dict[str, Any]], Dict[str, Any]]) -> Iterator[WriteStep]:
        """A payload change (by id keys and/or filter ``node``) as a step of
        a write: its ``result`` is the new settings, the labels changed and
        their analyzed text."""
        with self._write_lock.writing() as writing:
            self._check_live()
            labels = self._labels_to_change(id_keys, node)
            if not len(labels):
                yield WriteStep(None)
                return

            def changed(old: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Optional[bytes]], Any]:
                payloads, blobs = encode_payloads([change(payload) for payload in old], len(old))
                return payloads, blobs, self._terms.analyze(payloads)

            def store(txn: Any) -> Tuple[CollectionConfig, np.ndarray, Any]:
                stored = self._store.update_payloads(txn, labels.tolist(), changed)
                writing.publish()  # searches see the change from the commit on
                return stored

            step = WriteStep(store)
            try:
                yield step
            finally:
                if step.committed and len(step.result[1]):
                    config, found, text = step.result
                    self._terms.set_text(found, text)
                    self._terms_sequence = max(self._terms_sequence, config.sequence)
                    self._searcher.forget_payloads(found)
                    with self._index_lock:  # the indexes hold every change so far, as they did (no vector changed)
                        if self._backlog is None or not len(self._backlog):
                            self._indexes_through = max(self._indexes_through, config.sequence)
                    self._after_write(config, len(found))

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

    def create_text_index(self, field: str, *, language: Optional[str] = "english", stopwords: Any = None,
                          k1: float = 1.2, b: float = 0.75) -> None:
        """Index a payload field's text for full-text search
        (``search(text=...)``, ranked by BM25).

        The text (a string, or a list of strings) is split into words at
        Unicode word boundaries, lowercased, stripped of stop words and
        stemmed; queries are analyzed the same way.

        Args:
            field: the payload field (a dotted path reaches into objects).
            language: the Snowball stemmer's language ("english", "french",
                "german", ...; ``Stemmer.algorithms()`` lists them), or None
                for no stemming.
            stopwords: None: the language's built-in list (English:
                Lucene's 33 words; other languages have none); False: none;
                or a list of words.
            k1, b: BM25's term-frequency saturation and length
                normalisation (Lucene's and Elasticsearch's defaults).

        Existing points are indexed now; a point whose field holds something
        other than text is refused (here, or in a later upsert) with
        InvalidPayloadError. Creating it again with other settings
        re-indexes the field.
        """
        self._check_live()
        field = check_field(field)
        settings = TextIndexSettings.new(language, stopwords, k1, b)
        with self._write_lock:
            if self._config.text_indexes.get(field) == settings.to_dict():
                return
            if not self._environment.writable:
                raise ReadOnlyError("the database was opened read-only; create_text_index writes")
            self._store.ensure_text_part()
            index = TextIndex(field, settings)
            config, labels, analyzed = self._environment.write(
                lambda txn: self._store.create_text_index(txn, field, settings.to_dict(), index.analyze))
            index.set(labels, analyzed)
            self._terms = self._terms.with_index(index)
            self._terms_changes += 1  # the snapshot lacks it: saved again at the next occasion
            self._config = config

    def drop_text_index(self, field: str) -> None:
        """Remove a text index (searches by text on it are refused after);
        a field without one is left as it is."""
        self._check_live()
        field = check_field(field)
        with self._write_lock:
            if field not in self._config.text_indexes:
                return
            config = self._environment.write(lambda txn: self._store.drop_text_index(txn, field))
            self._terms = self._terms.without(field)
            self._terms_changes += 1
            self._config = config

    @property
    def text_indexes(self) -> Dict[str, Dict[str, Any]]:
        """Text-indexed payload fields and their settings."""
        return {field: dict(settings) for field, settings in self._config.text_indexes.items()}

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
               with_vector: bool = False, with_document: bool = False,
               text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Sequence[Sequence[float]], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[List[Hit]]: ...

    @overload
    def search(self, query: Optional[Sequence[float]] = None, k: int = 10, *,
               filter: Optional[Dict[str, Any]] = None, ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: Optional[str] = None, text_field: Optional[str] = None,
               sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
               using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Any = None, k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: Optional[str] = None, text_field: Optional[str] = None,
               sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
               group_by: Optional[str] = None, group_size: int = 1, using: Optional[str] = None) -> Any: ...

    def search(
        self,
        query: Any = None,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
        with_document: bool = False,
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        sparse: Any = None,
        fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
        group_by: Optional[str] = None,
        group_size: int = 1,
        using: Optional[str] = None,
    ) -> Any:
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
            text: search by text instead of by vector: the ``k`` points
                whose text ranks best by BM25 for it (a list of
                :class:`Hit` whose ``score`` is the BM25 score), among those
                holding at least one of its terms; needs a text index
                (:meth:`create_text_index`).
            text_field: which text index ``text`` searches (needed when the
                collection has more than one).
            sparse: search by a sparse vector: ``{name: vector}`` (or the
                vector alone when the collection declares one name; see
                :mod:`vecdb.sparse`): the ``k`` points with the largest dot
                product among those sharing a dimension with it.
            fusion: a hybrid search: two or more of ``query`` (one vector),
                ``text`` and ``sparse``, each branch fetching its own
                candidates (the filter applies to each), combined by
                ``vecdb.RRF()`` or ``vecdb.DBSF()`` (see
                :mod:`vecdb.fusion`); ``Hit.score`` is the fused score.
            group_by: a payload field: returns up to ``k`` :class:`Group`
                objects instead of hits, each the best ``group_size`` hits
                of one value of the field (e.g. the chunks of one document
                in a RAG index), groups best first; points without the
                field are left out, a list value puts a point in each of
                its groups. Any search above can be grouped (one query).
            with_document: each hit's document (``Hit.document``).

        In a collection made with an embedding function, ``query`` may be
        text (a string, or a list of them: a batch), embedded with it.
        """
        self._check_live()
        if using is not None:
            self._refuse_using(using)
        query = self._embedded_query(query)
        if group_by is not None:
            return self._grouped(query, k, group_by, group_size, with_payload, dict(
                filter=filter, ef=ef, dims=dims, plan=plan, with_vector=with_vector, with_document=with_document,
                text=text, text_field=text_field, sparse=sparse, fusion=fusion))
        if text is not None or text_field is not None or sparse is not None or fusion is not None:
            return self._search_branches(query, text, text_field, sparse, fusion, k, filter, ef, dims, plan,
                                         with_payload, with_vector, with_document=with_document)
        if query is None:
            raise InvalidArgumentError("search needs a query vector, text= or sparse=")
        queries, single, k, ef, node = check_search(query, k, ef, filter, self.dim)
        dims, plan = check_overrides(dims, plan)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        hits = self._searcher.search(queries, k, ef=ef, node=node, dims=dims, plan=plan, with_payload=with_payload,
                                     with_vector=with_vector, with_document=check_flag(with_document, "with_document"))
        return hits[0] if single else hits

    def recommend(self, positive: Sequence[Any], negative: Optional[Sequence[Any]] = None, k: int = 10, *,
                  filter: Optional[Dict[str, Any]] = None, strategy: str = "average_vector",
                  ef: Optional[int] = None, with_payload: bool = True, with_vector: bool = False,
                  with_document: bool = False, using: Optional[str] = None) -> List[Hit]:
        """Points like the ``positive`` examples and unlike the ``negative``
        ones (Qdrant's recommend API): each example is a point id or a
        vector; points given by id are never returned.

        ``strategy="average_vector"`` searches once with
        ``avg(positive) + (avg(positive) - avg(negative))``: as fast as a
        search, scores are its similarities. ``"best_score"`` scores each
        point by its best similarity to a positive example, or, if it is
        nearer a negative one, minus the square of that similarity; it
        searches near every positive example (widening until no point left
        unseen could enter the top ``k``), so it costs a search per example
        (and, while the ``k``-th score is not above 0 and there are negative
        examples, more: a point nearer a negative example scores up to 0; with
        ``l2``, whose similarities are negated distances, that means a search
        of every point).
        Scores are higher-is-better for both (negated distances for l2).
        """
        self._check_live()
        if using is not None:
            self._refuse_using(using)
        return recommend(lambda query, width, vectors: self.search(query, width, filter=filter, ef=ef,
                                                                   with_payload=with_payload, with_vector=vectors,
                                                                   with_document=with_document),
                         lambda ids: self.get(ids, with_payload=False, with_vector=True), self.dim, self.metric,
                         positive, negative, k, strategy, with_vector)

    def _grouped(self, query: Any, k: Any, group_by: Any, group_size: Any, with_payload: Any,
                 options: Dict[str, Any]) -> List[Group]:
        """search(..., group_by=...): searches with more and more hits until
        ``k`` groups are full or the collection has no more to give."""
        return grouped_search(lambda width: self.search(query, width, with_payload=True, **options), query, k,
                              group_by, group_size, with_payload)

    def _search_branches(self, query: Any, text: Any, text_field: Any, sparse: Any, fusion: Any, k: Any,
                         filter: Any, ef: Any, dims: Any, plan: Any, with_payload: Any, with_vector: Any,
                         corpus: Optional[Corpus] = None, separate: bool = False, with_document: Any = False) -> Any:
        """A search by text or by a sparse vector, or a hybrid one: several
        of a vector, text and a sparse vector, fused. With ``separate`` (a
        sharded collection's shards), a hybrid search returns each branch's
        hits (vector, text, sparse: those given), read in one state, unfused:
        the driver merges each branch over the shards, then fuses."""
        branches = self._branches(query, text, text_field, sparse, fusion, k, filter, ef, dims, plan)
        with_payload, with_vector = check_flags(with_payload, with_vector)

        def run(scope: Scope) -> List[Tuple[np.ndarray, np.ndarray]]:
            ranked = branches.rankings(scope, corpus)
            return ranked if branches.fusion is None or separate else [branches.fused(ranked)]

        found = self._searcher.search_run(run, branches.node, with_payload, with_vector,
                                          check_flag(with_document, "with_document"))
        return found if separate else found[0]

    def _branches(self, query: Any, text: Any, text_field: Any, sparse: Any, fusion: Any, k: Any, filter: Any,
                  ef: Any, dims: Any, plan: Any) -> "_Branches":
        """A text, sparse or hybrid search's arguments, checked."""
        check_branches(query, text, text_field, sparse, fusion, ef, dims, plan)
        if text is not None:
            self._find_text_index(text_field)
            text = check_text(text)
        sparse_query = None if sparse is None else check_sparse_query(sparse, self._config.sparse)
        fusion = None if fusion is None else fusion_from_dict(fusion)
        if query is None:
            queries, k, node = None, check_k(k), None if filter is None else parse_filter(filter)
        else:
            queries, single, k, ef, node = check_search(query, k, ef, filter, self.dim)
            if not single:
                raise InvalidArgumentError("a hybrid search takes one query vector (1-D), not a batch")
            dims, plan = check_overrides(dims, plan)
        return _Branches(self, queries, text, text_field, sparse_query, fusion, k, node, ef, dims, plan)

    def _find_text_index(self, text_field: Any) -> None:
        """InvalidArgumentError unless ``text_field`` names a text index (or
        None, and there is one); a read-only handle catches up first."""
        try:
            self._terms.find(text_field)
        except InvalidArgumentError:
            if self._environment.writable:
                raise
            self._refresh()  # the writer may have made it since this handle caught up
            self._terms.find(text_field)

    def _text_statistics(self, text: Any, text_field: Any = None) -> Corpus:
        """BM25's statistics of ``text`` here (see TextIndex.statistics): a
        sharded collection sums its shards' and searches each with the sums."""
        self._check_live()
        return self._terms.find(text_field).statistics(check_text(text))

    def explain(
        self,
        query: Any = None,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        execute: bool = False,
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        sparse: Any = None,
        fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
        using: Optional[str] = None,
    ) -> Explanation:
        """The plan :meth:`search` would run with these arguments: its
        stages, estimated cost, why it was chosen, the alternatives and the
        estimates behind it (points, how many the filter allows). With
        ``execute=True`` the search runs too, and each stage reports its
        measured time and output size (per query). ``print()`` it to read it.

        A text, sparse or hybrid search (``text=``, ``sparse=``,
        ``fusion=``) is explained branch by branch: the vector branch's plan
        (the planner chooses it as for any search), the text and sparse
        branches, then the fusion.
        """
        self._check_live()
        if using is not None:
            self._refuse_using(using)
        if text is not None or text_field is not None or sparse is not None or fusion is not None:
            branches = self._branches(query, text, text_field, sparse, fusion, k, filter, ef, dims, plan)
            return branches.explain(check_flags(execute, False)[0])
        if query is None:
            raise InvalidArgumentError("explain needs a query vector, text= or sparse=")
        queries, _, k, ef, node = check_search(query, k, ef, filter, self.dim)
        if queries.shape[0] == 0:
            raise InvalidArgumentError("explain needs at least one query")
        dims, plan = check_overrides(dims, plan)
        return self._searcher.explain(queries, k, ef=ef, node=node, dims=dims, plan=plan, execute=execute)

    def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0,
             using: Optional[str] = None) -> TuneReport:
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
        if using is not None:
            self._refuse_using(using)
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

    def get(self, ids: Any, *, with_payload: bool = True,
            with_vector: bool = False, with_document: bool = False) -> List[Record]:
        """The stored points with these ids, in the order asked; ids that do
        not exist are left out."""
        self._check_live()
        id_list = check_ids(ids, None)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        with_document = check_flag(with_document, "with_document")
        with self._environment.read() as txn:
            return self._get_in(txn, id_list, with_payload, with_vector, with_document)

    def _get_in(self, txn: Any, id_list: List[UserId], with_payload: bool, with_vector: bool,
                with_document: bool = False) -> List[Record]:
        """:meth:`get` of checked ids in ``txn`` (a named-vectors collection
        reads its parts in one transaction)."""
        id_keys = [user_id_key(user_id) for user_id in id_list]
        config = self._store.config(txn)
        found = self._store.records_by_id(txn, id_keys, with_payload, with_vector)
        present = [record[0] for record in found if record is not None]  # id keys, as labels_of keeps them
        labels = (self._store.labels_of(txn, present).tolist() if (with_vector and config.sparse) or with_document
                  else [])
        label_of = dict(zip(present, labels))
        sparse = self._sparse_of(txn, config, labels) if with_vector and config.sparse else {}
        documents = self._store.documents_of(txn, labels) if with_document else {}
        return [Record(id=user_id, payload=record[1], vector=record[2], sparse=sparse.get(label_of.get(record[0], -1)),
                       document=documents.get(label_of.get(record[0], -1)))
                for user_id, record in zip(id_list, found) if record is not None]

    def _sparse_of(self, txn: Any, config: CollectionConfig, labels: List[int]) -> Dict[int, Dict[str, SparseVector]]:
        """The sparse vectors of these stored points (in ``txn``), by label: ``{name: vector}`` of those they have."""
        found: Dict[int, Dict[str, SparseVector]] = {label: {} for label in labels}
        for name in config.sparse:
            for label, vector in zip(labels, self._store.sparse_vectors_of(txn, name, labels)):
                if vector is not None:
                    found[label][name] = SparseVector(vector[0].tolist(), vector[1].tolist())
        return found

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
        with_document: bool = False,
    ) -> Tuple[List[Record], Optional[int]]:
        """Page through points in insertion order: returns up to ``limit``
        records and the cursor of the next page (None at the end)."""
        self._check_live()
        limit = positive_int(limit, "limit")
        start = 0 if cursor is None else positive_int(cursor, "cursor", 0)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        with_document = check_flag(with_document, "with_document")
        node = None if filter is None else parse_filter(filter)
        with self._environment.read() as txn:
            return self._scroll_in(txn, node, limit, start, with_payload, with_vector, with_document)

    def _scroll_in(self, txn: Any, node: Any, limit: int, start: int, with_payload: bool,
                   with_vector: bool, with_document: bool = False) -> Tuple[List[Record], Optional[int]]:
        """:meth:`scroll` with checked arguments in ``txn``."""
        config = self._store.config(txn)
        if node is None:
            labels = self._store.labels_after(txn, start, limit + 1)
        else:
            matching = np.flatnonzero(self._searcher.matching(txn, config, node))
            labels = matching[matching >= start][: limit + 1]
        next_cursor = int(labels[limit]) if len(labels) > limit else None
        found = self._store.records_of(txn, labels[:limit].tolist(), with_payload, with_vector)
        sparse = self._sparse_of(txn, config, list(found)) if with_vector and config.sparse else {}
        documents = self._store.documents_of(txn, list(found)) if with_document else {}
        records = [Record(id=user_id_from_key(id_key), payload=payload, vector=vector, sparse=sparse.get(label),
                          document=documents.get(label))
                   for label, (id_key, payload, vector) in found.items()]  # in label order, as asked
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
                "payload_indexes": dict(config.payload_indexes),
                "text_indexes": {field: {**index.settings.to_dict(), "points": len(index.index),
                                         "terms": index.index.vocabulary, "memory_bytes": index.index.memory_bytes()}
                                 for field, index in self._terms.by_field.items()}}

    # ---- Arrow tables and DataFrames (vecdb.arrow: on upsert and scroll) ----

    def upsert_arrow(self, table: Any, *, id: str = "id", vector: Union[str, Mapping[str, str]] = "vector",
                     payload: Optional[Sequence[str]] = None, document: Optional[str] = None,
                     batch_size: int = 1000) -> int:
        """See :meth:`vecdb.api.CollectionAPI.upsert_arrow`."""
        return arrow.upsert_arrow(self, table, id=id, vector=vector, payload=payload, document=document,
                                  batch_size=batch_size)

    def to_arrow(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                 with_payload: bool = True, with_document: bool = False) -> pyarrow.Table:
        """See :meth:`vecdb.api.CollectionAPI.to_arrow`."""
        return arrow.to_arrow(self, filter, with_vector=with_vector, with_payload=with_payload,
                              with_document=with_document)

    def to_pandas(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                  with_payload: bool = True, with_document: bool = False) -> pandas.DataFrame:
        """See :meth:`vecdb.api.CollectionAPI.to_pandas`."""
        return arrow.to_pandas(self, filter, with_vector=with_vector, with_payload=with_payload,
                               with_document=with_document)

    # ---- internals ----

    def _after_write(self, config: CollectionConfig, changed: int) -> None:
        if config.sequence >= self._config.sequence:  # a write of two parts here ends them newest first
            self._config = config
            self._sequence = config.sequence  # what the indexes and their backlog reflect
        self._changes_since_snapshot += changed
        self._terms_changes += changed
        if self._terms_changes >= max(SNAPSHOT_MIN_CHANGES, SNAPSHOT_SHARE * len(self._indexes)):
            self._save_terms()
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

    def _refuse_using(self, using: Any) -> None:
        resolve_vector(self.name, {None: self._config.settings}, using)  # raises: one unnamed vector

    def _check_live(self) -> None:
        if self._dropped:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped")

    # ---- used by collection backups (vecdb.transfer.collection_copy) ----

    def _read_all(self, batch_size: int) -> Generator[List[Record], None, None]:
        """Every point with its payload, vector and document, in insertion order, in
        lists of up to ``batch_size``, all read in one read transaction: one
        committed state, whatever writers commit meanwhile. The transaction
        stays open until the iteration ends (LMDB cannot reuse the pages
        writers free meanwhile): consume it promptly."""
        self._check_live()
        with self._environment.read() as txn:
            config = self._store.config(txn)
            labels = self._store.all_labels(txn).tolist()
            for start in range(0, len(labels), batch_size):
                batch = labels[start:start + batch_size]
                found = self._store.records_of(txn, batch, True, True)
                sparse = self._sparse_of(txn, config, batch) if config.sparse else {}
                documents = self._store.documents_of(txn, batch)
                yield [Record(id=user_id_from_key(found[label][0]), payload=found[label][1], vector=found[label][2],
                              sparse=sparse.get(label), document=documents.get(label))
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
                if self._terms_changes:
                    self._save_terms()

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
        self._store.open_optional_parts()  # outside any transaction: the writer may have made one since
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
        self._store.open_optional_parts()  # outside any transaction: the writer may have made one since
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
            self._sync_terms(txn)
        self._searcher.caught_up(commit, changed=self._sequence != sequence)

    def _load_terms(self) -> Tuple[TermIndexes, int]:
        """The inverted indexes (text, sparse), from their snapshot brought
        up to date or built from what is stored for them, and the change
        sequence of the state they reflect."""
        with self._environment.read() as txn:
            config = self._store.config(txn)
            terms, from_snapshot = load_term_indexes(txn, self._store, config, self._folder,
                                                     snapshot_owner(self._environment, config))
            # Saved at close unless the snapshot holds them already.
            self._terms_changes = 0 if from_snapshot else len(terms.by_field) + len(terms.by_sparse)
            return terms, config.sequence

    def _save_terms(self) -> None:
        """Snapshot the inverted indexes (with the write lock held: they
        reflect ``_terms_sequence`` exactly)."""
        if self._dropped or not (self._terms.by_field or self._terms.by_sparse):
            return
        with self._environment.read() as txn:
            config = self._store.config(txn)
            fingerprint = self._store.fingerprint_at(txn, config, self._terms_sequence)
        if fingerprint is not None:
            save_term_snapshot(self._folder, snapshot_owner(self._environment, config), self._terms_sequence,
                               fingerprint, self._terms)
        self._terms_changes = 0

    def _sync_terms(self, txn: Any) -> None:
        """(Read-only handles, with the write lock held) Bring the inverted
        indexes to ``txn``'s state: replay the points changed since the
        state they reflect, or build them again if the text indexes changed
        or the change log no longer reaches back that far."""
        config = self._store.config(txn)
        same_fields = config.text_indexes == {field: index.settings.to_dict()
                                              for field, index in self._terms.by_field.items()}
        if same_fields and config.sequence == self._terms_sequence:
            return
        if not same_fields or config.log_start > self._terms_sequence + 1:
            self._terms, self._terms_sequence = self._load_terms()
            return
        labels = self._store.changed_since(txn, self._terms_sequence).tolist()
        for field, index in self._terms.by_field.items():
            index.set(labels, self._store.text_terms_of(txn, field, labels))
        for name, sparse_index in self._terms.by_sparse.items():
            sparse_index.set(labels, self._store.sparse_vectors_of(txn, name, labels))
        self._terms_sequence = config.sequence


class _Branches:
    """A text, sparse or hybrid search, checked: its branches' queries and
    what combines them. Runs them within a :meth:`Searcher.search_run`
    (:meth:`rankings`, :meth:`fused`) and explains them."""

    def __init__(self, collection: Collection, queries: Optional[np.ndarray], text: Optional[str], text_field: Any,
                 sparse: Optional[Tuple[str, Tuple[np.ndarray, np.ndarray]]], fusion: Optional[Fusion], k: int,
                 node: Any, ef: Optional[int], dims: Optional[int], plan: Optional[Plan]) -> None:
        self.collection, self.queries, self.text, self.text_field, self.sparse = collection, queries, text, text_field, sparse
        self.fusion, self.k, self.node, self.ef, self.dims, self.plan = fusion, k, node, ef, dims, plan
        self.width = k if fusion is None else fusion.candidates or default_candidates(k)

    def rankings(self, scope: Scope, corpus: Optional[Corpus] = None) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Each branch's labels and scores (vector, text, sparse: those
        given). With a vector branch, the others run meanwhile on the native
        background thread (csrc/common/background_task.h), which needs no
        GIL: a hybrid search takes about its slowest branch, not their sum."""
        collection = self.collection
        bits = scope.bits()
        # Each text or sparse branch: (its search, the same started in the background).
        others: List[Tuple[Callable[[], Tuple[np.ndarray, np.ndarray]], Callable[[], Any]]] = []
        if self.text is not None:  # looked up on each attempt: catching up may replace the index
            text, index = self.text, collection._terms.find(self.text_field)
            others.append((lambda: index.search(text, self.width, bits, corpus),
                           lambda: index.start_search(text, self.width, bits, corpus)))
        if self.sparse is not None:
            name, vector = self.sparse
            sparse_index = collection._terms.by_sparse[name]
            others.append((lambda: sparse_index.search(vector, self.width, bits),
                           lambda: sparse_index.start_search(vector, self.width, bits)))
        if self.queries is None:
            return [search() for search, _ in others]
        pending = [start() for _, start in others]
        dense = collection._searcher.dense_branch(scope, self.queries, self.width, self.ef, self.dims, self.plan)
        return [dense] + [search.result() for search in pending]

    def fused(self, rankings: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
        assert self.fusion is not None
        return fuse(self.fusion, rankings, branch_weights(self.fusion, len(rankings), self.queries is not None),
                    self.k)

    def explain(self, execute: bool) -> Explanation:
        """Each branch as stages (the vector branch's plan as the planner
        chose it), then the fusion; timed per stage with ``execute``."""
        collection = self.collection
        dense = None if self.queries is None else collection._searcher.explain(
            self.queries, self.width, ef=self.ef, node=self.node, dims=self.dims, plan=self.plan, execute=execute)
        stages = [] if dense is None else [replace(stage, description=f"vector branch: {stage.description}")
                                           for stage in dense.stages]
        branch_names = ["vector"] * (dense is not None)
        started = time.perf_counter()
        scope = collection._searcher.scope(self.node)
        if self.text is not None:
            index = collection._terms.find(self.text_field)
            points, _, frequencies = index.statistics(self.text)
            postings = int(sum(frequencies.values()))
            stages.append(Stage(f"text branch: BM25 on {index.field!r}, {len(frequencies)} known terms, "
                                f"{postings:,} postings, block-max MaxScore -> top {self.width}",
                                TEXT_US_PER_QUERY + TEXT_US_PER_POSTING * postings))
            branch_names.append("text")
        if self.sparse is not None:
            stages.append(Stage(f"sparse branch: dot product on {self.sparse[0]!r}, {len(self.sparse[1][0])} "
                                f"dimensions, block-max MaxScore -> top {self.width}", TEXT_US_PER_QUERY))
            branch_names.append("sparse")
        if self.fusion is not None:
            stages.append(Stage(f"fusion: {fusion_to_dict(self.fusion)['kind'].upper()} of "
                                f"{' + '.join(branch_names)} -> top {self.k}", FUSION_US))
        if execute:
            timed = stages[len(dense.stages) if dense is not None else 0:]
            rankings = []
            for stage, run in zip(timed, self._branch_runs(scope)):
                begun = time.perf_counter()
                rankings.append(run())
                stage.actual_us, stage.results = 1e6 * (time.perf_counter() - begun), float(len(rankings[-1][0]))
            if self.fusion is not None:
                dense_ranking = collection._searcher.dense_branch(scope, self.queries, self.width, self.ef, self.dims,
                                                                  self.plan) if self.queries is not None else None
                begun = time.perf_counter()
                fused = self.fused(([dense_ranking] if dense_ranking is not None else []) + rankings)
                timed[-1].actual_us, timed[-1].results = 1e6 * (time.perf_counter() - begun), float(len(fused[0]))
        estimated = sum(stage.estimated_us for stage in stages)
        points = len(scope.indexes)
        allowed = points if scope.live is None else scope.live
        estimates = dict(dense.estimates) if dense is not None else {
            "points": points, "allowed": allowed, "k": self.k, "selectivity": allowed / max(points, 1)}
        total = None
        if execute:
            total = (dense.total_us or 0.0 if dense is not None else 0.0) + 1e6 * (time.perf_counter() - started)
        return Explanation(
            plan=None if dense is None else dense.plan,
            description=(f"{' + '.join(branch_names)} branches ({self.width} candidates each), "
                         f"{fusion_to_dict(self.fusion)['kind'].upper()} fusion -> top {self.k}"
                         if self.fusion is not None else stages[0].description.split(":", 1)[1].strip()),
            reason="requested: " + (f"fusion of {' and '.join(branch_names)}" if self.fusion is not None
                                    else f"a {branch_names[0]} search") +
                   ("" if dense is None else f"; vector branch: {dense.reason}"),
            estimated_us=estimated, estimates=estimates,
            alternatives=[] if dense is None else [(f"vector branch: {text}", cost) for text, cost in dense.alternatives],
            stages=stages, executed=execute, total_us=total)

    def _branch_runs(self, scope: Scope) -> List[Callable[[], Tuple[np.ndarray, np.ndarray]]]:
        """The text and sparse branches, to time one by one."""
        runs: List[Callable[[], Tuple[np.ndarray, np.ndarray]]] = []
        terms = self.collection._terms
        if self.text is not None:
            text, index = self.text, terms.find(self.text_field)
            runs.append(lambda: index.search(text, self.width, scope.bits()))
        if self.sparse is not None:
            name, vector = self.sparse
            runs.append(lambda: terms.by_sparse[name].search(vector, self.width, scope.bits()))
        return runs


# What explain() estimates a text or sparse branch and a fusion cost (us;
# measured on npm-minilm-384's 50,000 texts, one thread: ~60 us a query
# reading ~9,000 postings).
TEXT_US_PER_QUERY = 10.0
TEXT_US_PER_POSTING = 0.006
FUSION_US = 15.0
