"""A collection: points (id, vector, payload) stored durably in LMDB and
searched through an in-memory index.

Every public method validates and normalizes its input, then makes one call
into the layer below (the LMDB store, the label index, the filter evaluator).

Guarantees:
- ``upsert`` and ``delete`` are all-or-nothing and durable when they return
  (one LMDB write transaction, fsynced on commit).
- Searches run on any number of threads while another thread writes (the
  native search releases the GIL); a search sees a write completely or not at
  all, and never returns a point whose delete has returned.
- Writes on one collection run one at a time.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from vecdb._arrays import as_matrix, check_k, positive_int
from vecdb.config import PQ, CollectionConfig, IndexSpec
from vecdb.errors import (
    CollectionNotFoundError,
    DuplicateIdError,
    InvalidArgumentError,
    InvalidDTypeError,
    ReadOnlyError,
)
from vecdb.filter_eval import FilterEvaluator
from vecdb.filters import Filter, parse_filter
from vecdb.index_loader import LoadedIndex, build_index, catch_up_or_reload, load_label_index, save_snapshot
from vecdb.label_index import LabelIndex
from vecdb.payloads import encode_payloads
from vecdb.pq import CENTROIDS, ProductQuantizer
from vecdb.records import Hit, Record, UserId
from vecdb.storage.collection_store import CollectionStore, read_config, write_config
from vecdb.storage.environment import Environment
from vecdb.storage.keys import check_user_id, user_id_from_key, user_id_key
from vecdb.storage.payload_index import check_field, check_kind

# A filter that leaves at most this many points, or this share of the
# collection, is answered by an exact scan of those points in place: cheaper
# than a graph search, which must walk through ~1/share times more nodes than
# it keeps, and exact. (Measured on 50k x 384: the scan of a 10% filter runs
# several times faster than the filtered graph search.) The query planner
# will refine this rule.
EXACT_FILTER_MIN = 2048
EXACT_FILTER_SHARE = 0.2
# Snapshot the graph once SNAPSHOT_MIN_CHANGES points changed since the last
# snapshot, or SNAPSHOT_SHARE of the collection if that is more: reopening
# after a crash replays at most that many changes, and snapshot writing stays
# a small share of ingest (snapshot sizes grow geometrically).
SNAPSHOT_MIN_CHANGES = 20_000
SNAPSHOT_SHARE = 0.5
_SEARCH_ATTEMPTS = 3
# Evaluated filter masks kept per collection (each is one byte per point).
FILTER_CACHE_SIZE = 8


class Collection:
    """Points with vectors and payloads, searchable by vector similarity and
    filterable by payload. Get one from :meth:`vecdb.Database.create_collection`
    or :meth:`~vecdb.Database.get_collection`."""

    def __init__(self, environment: Environment, folder: Path, config: CollectionConfig) -> None:
        self._environment = environment
        self._folder = folder
        self._config = config
        self._store = CollectionStore(environment, config)
        self._write_lock = threading.Lock()
        self._filter_cache: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
        self._filter_cache_lock = threading.Lock()
        self._dropped = False
        self._adopt(load_label_index(environment, folder, self._store, config))

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
        In a collection with ``quantization=vecdb.PQ(...)``, the upsert that
        brings it to ``train_size`` vectors also trains the codebooks and
        re-indexes every vector as codes before it returns (seconds).
        """
        self._check_live()
        matrix, single = as_matrix(vectors, "float32", self.dim, "vectors")
        id_list = self._check_ids([ids] if single and not isinstance(ids, (list, tuple, np.ndarray)) else ids,
                                  matrix.shape[0])
        _check_finite(matrix)
        payload_dicts, blobs = encode_payloads(payloads, len(id_list))
        if not id_list:
            return
        id_keys = [user_id_key(user_id) for user_id in id_list]
        with self._write_lock:
            config, labels = self._environment.write(
                lambda txn: self._store.upsert(txn, id_keys, matrix, payload_dicts, blobs))
            self._index.add(labels, matrix)
            self._after_write(config, len(labels))
            pq = config.pq
            if pq is not None and config.quantizer_version == 0 and len(self._index) >= pq.train_size:
                try:
                    self._train_quantizer(pq)
                except Exception as exc:  # the batch is committed: report, search exactly, retry next time
                    warnings.warn(f"collection {self.name!r}: training the PQ codebooks failed ({exc}); "
                                  "searching exactly until the next upsert tries again", RuntimeWarning, stacklevel=2)

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
            config = read_config(txn, self.name)
            count = self._store.count(txn)
            if count < CENTROIDS:
                raise InvalidArgumentError(f"PQ training needs at least {CENTROIDS} vectors; "
                                           f"collection {self.name!r} has {count}")
            sample = self._store.sample_vectors(txn, self.dim, pq.max_samples, seed=config.quantizer_version)
        quantizer = ProductQuantizer(self.dim, pq.m, self.metric, opq=pq.opq).train(
            sample, iterations=pq.iterations, max_samples=pq.max_samples, seed=config.quantizer_version)
        # The new index first, the codebooks committed after: a failure in
        # between leaves LMDB and the index as they were. (No other write can
        # come in between: this thread holds the write lock, this process the
        # writer lock.)
        version = config.quantizer_version + 1
        loaded = build_index(self._environment, self._store, replace(config, quantizer_version=version), quantizer)

        def body(txn):
            config = read_config(txn, self.name)
            config.quantizer_version = version
            self._store.put_codebooks(txn, quantizer.to_bytes())
            write_config(txn, config)
            return config

        self._config = self._environment.write(body)
        self._adopt(loaded)
        self._snapshot_if_useful()

    def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """Delete points by id and/or by payload filter; returns how many were
        deleted. Ids that do not exist are skipped."""
        self._check_live()
        if ids is None and filter is None:
            raise InvalidArgumentError("delete needs ids=[...] or filter={...} (use drop_collection to delete everything)")
        id_keys = [] if ids is None else [user_id_key(user_id) for user_id in self._check_ids(ids, None)]
        node = None if filter is None else parse_filter(filter)
        with self._write_lock:
            with self._environment.read() as txn:
                labels = self._store.labels_of(txn, id_keys)
                if node is not None:
                    labels = np.union1d(labels, np.flatnonzero(self._matching(txn, node, stored_only=True)))
            if not len(labels):
                return 0
            # Out of the index first, so no search returns a point whose
            # record is going; put back if the transaction fails.
            self._index.delete(labels)
            try:
                config, deleted = self._environment.write(lambda txn: self._store.delete(txn, labels))
            except BaseException:
                self._restore(labels)
                raise
            self._after_write(config, len(deleted))
        return len(deleted)

    def _restore(self, labels: np.ndarray) -> None:
        with self._environment.read() as txn:
            stored = [(int(label), self._store.vector_of(txn, int(label))) for label in labels]
        present = [(label, vector) for label, vector in stored if vector is not None]
        if present:
            self._index.add(np.array([label for label, _ in present], dtype=np.int64),
                            np.stack([vector for _, vector in present]))

    def create_payload_index(self, field: str, kind: str) -> None:
        """Index a payload field (``kind``: ``"keyword"``, ``"integer"``,
        ``"float"`` or ``"bool"``) so filters on it are answered from the
        index instead of a scan of every payload. Existing points are
        indexed now; a point whose value does not fit the kind is refused
        (here, or in a later upsert) with InvalidPayloadError."""
        self._check_live()
        field, kind = check_field(field), check_kind(kind)

        def body(txn):
            config = read_config(txn, self.name)
            if config.payload_indexes.get(field) == kind:
                return config
            indexes = self._store.payload_indexes(config)
            if field in config.payload_indexes:
                indexes.drop_field(txn, field)
            indexes.build(txn, field, kind, self._store.payload_records(txn))
            config.payload_indexes[field] = kind
            write_config(txn, config)
            return config

        with self._write_lock:
            self._config = self._environment.write(body)

    def drop_payload_index(self, field: str) -> None:
        """Remove a payload index (filters on the field then scan payloads)."""
        self._check_live()

        def body(txn):
            config = read_config(txn, self.name)
            if field in config.payload_indexes:
                self._store.payload_indexes(config).drop_field(txn, field)
                del config.payload_indexes[field]
                write_config(txn, config)
            return config

        with self._write_lock:
            self._config = self._environment.write(body)

    def compact(self) -> int:
        """Repair the index around deleted points and free their memory (also
        done automatically once a quarter of the graph is deleted); returns
        how many deleted points' room was reclaimed."""
        self._check_live()
        with self._write_lock:
            reclaimed = self._index.compact()
            if reclaimed and self._environment.writable:
                self._snapshot()
        return reclaimed

    # ---- reads ----

    def search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> Union[List[Hit], List[List[Hit]]]:
        """The ``k`` points nearest to ``query`` (best first), optionally
        only among points whose payload matches ``filter``.

        A 1-D query returns a list of :class:`Hit`; a 2-D batch returns one
        list per query. Fewer than ``k`` hits come back when fewer points
        exist or match. ``ef`` trades speed for recall on HNSW collections
        (default: the collection's ``ef_search``).
        """
        self._check_live()
        k = check_k(k)
        if ef is not None:
            ef = positive_int(ef, "ef")
        queries, single = as_matrix(query, "float32", self.dim, "query")
        _check_finite(queries, "query")
        node = None if filter is None else parse_filter(filter)
        for attempt in range(_SEARCH_ATTEMPTS):
            index = self._index
            if node is None:
                labels, distances = index.search(queries, k, ef, None)
            else:
                with self._environment.read() as txn:
                    allowed = self._matching(txn, node, stored_only=False)
                labels, distances = self._filtered_search(index, queries, k, ef, allowed)
            hits, complete = self._hits(labels, distances, with_payload, with_vector)
            # A point deleted between the index's answer and the record fetch
            # leaves a hole: search again (the index has caught up by then).
            if complete:
                break
        return hits[0] if single else hits

    def _filtered_search(self, index: LabelIndex, queries: np.ndarray, k: int, ef: Optional[int],
                         allowed: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        candidates = int(np.count_nonzero(allowed))
        if candidates == 0:
            empty = np.zeros((queries.shape[0], 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        if candidates <= max(EXACT_FILTER_MIN, EXACT_FILTER_SHARE * len(index)):
            return index.exact_search(queries, k, allowed)
        return index.search(queries, k, ef, allowed)

    def _hits(self, labels: np.ndarray, distances: np.ndarray, with_payload: bool,
              with_vector: bool) -> Tuple[List[List[Hit]], bool]:
        """Hits with ids (and payloads, vectors) read from LMDB, and whether
        every label the index returned was still stored."""
        scores = _scores(distances, self.metric)
        results: List[List[Hit]] = []
        complete = True
        with self._environment.read() as txn:
            for row_labels, row_scores in zip(labels.tolist(), scores.tolist()):
                row: List[Hit] = []
                for label, score in zip(row_labels, row_scores):
                    if label < 0:
                        break
                    id_key = self._store.id_key_of(txn, label)
                    if id_key is None:  # deleted after the index answered
                        complete = False
                        continue
                    row.append(Hit(
                        id=user_id_from_key(id_key), score=score,
                        payload=self._store.payload_of(txn, label) if with_payload else None,
                        vector=self._store.vector_of(txn, label) if with_vector else None,
                    ))
                results.append(row)
        return results, complete

    def get(self, ids: Any, *, with_payload: bool = True, with_vector: bool = False) -> List[Record]:
        """The stored points with these ids, in the order asked; ids that do
        not exist are left out."""
        self._check_live()
        id_list = self._check_ids(ids, None)
        records = []
        with self._environment.read() as txn:
            for user_id in id_list:
                label = self._store.label_of(txn, user_id_key(user_id))
                if label is not None:
                    records.append(self._record(txn, user_id, label, with_payload, with_vector))
        return records

    def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """Number of points, or of points whose payload matches ``filter``."""
        self._check_live()
        node = None if filter is None else parse_filter(filter)
        with self._environment.read() as txn:
            if node is None:
                return self._store.count(txn)
            return int(np.count_nonzero(self._matching(txn, node, stored_only=True)))

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
        node = None if filter is None else parse_filter(filter)
        with self._environment.read() as txn:
            if node is None:
                labels = self._store.labels_after(txn, start, limit + 1)
            else:
                matching = np.flatnonzero(self._matching(txn, node, stored_only=True))
                labels = matching[matching >= start][: limit + 1]
            next_cursor = int(labels[limit]) if len(labels) > limit else None
            records = []
            for label in labels[:limit].tolist():
                id_key = self._store.id_key_of(txn, label)
                if id_key is not None:
                    records.append(self._record(txn, user_id_from_key(id_key), label, with_payload, with_vector))
        return records, next_cursor

    def stats(self) -> Dict[str, Any]:
        """Counts, sequence numbers and the in-memory index's size."""
        self._check_live()
        with self._environment.read() as txn:
            config = read_config(txn, self.name)
            count = self._store.count(txn)
        pq = config.pq
        quantization = None if pq is None else {"m": pq.m, "rerank": pq.rerank, "train_size": pq.train_size,
                                                "opq": pq.opq, "trained": config.quantizer_version > 0,
                                                "quantizer_version": config.quantizer_version}
        return {"name": self.name, "count": count, "dim": self.dim, "metric": self.metric,
                "index": type(self.index).__name__, "quantization": quantization, "index_count": len(self._index),
                "index_memory_bytes": self._index.memory_bytes(), "sequence": config.sequence,
                "index_sequence": self._sequence, "index_source": self._index_source,
                "payload_indexes": dict(config.payload_indexes)}

    # ---- internals ----

    def _record(self, txn, user_id: UserId, label: int, with_payload: bool, with_vector: bool) -> Record:
        return Record(id=user_id,
                      payload=self._store.payload_of(txn, label) if with_payload else None,
                      vector=self._store.vector_of(txn, label) if with_vector else None)

    def _matching(self, txn, node: Filter, stored_only: bool) -> np.ndarray:
        """Boolean mask over labels of the points ``node`` matches. Unless
        ``stored_only``, it may also allow labels that no longer exist (a
        search skips those anyway; counting and listing must not)."""
        config = read_config(txn, self.name)
        # Repeated filters (a tenant, a language) are the common case: their
        # mask is kept until the next write changes the collection.
        key = (repr(node), stored_only, config.sequence)
        cached = self._filter_cache.get(key)
        if cached is not None:
            return cached
        mask = FilterEvaluator(txn, self._store, self._store.payload_indexes(config), config.next_label).allowed(node)
        if stored_only:
            stored = np.zeros(len(mask), dtype=bool)
            labels = self._store.all_labels(txn)
            stored[labels[labels < len(mask)]] = True
            mask &= stored
        mask.flags.writeable = False
        with self._filter_cache_lock:
            self._filter_cache[key] = mask
            while len(self._filter_cache) > FILTER_CACHE_SIZE:
                self._filter_cache.popitem(last=False)
        return mask

    def _check_ids(self, ids: Any, expected: Optional[int]) -> List[UserId]:
        if isinstance(ids, (str, int, np.integer)):
            ids = [ids]
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        if not isinstance(ids, (list, tuple)):
            raise InvalidDTypeError(f"ids must be a list of strings or integers, got {type(ids).__name__}")
        checked = [check_user_id(user_id) for user_id in ids]
        if expected is not None and len(checked) != expected:
            raise InvalidArgumentError(f"got {len(checked)} ids for {expected} vectors")
        if expected is not None and len(set(checked)) != len(checked):
            seen = set()
            duplicate = next(user_id for user_id in checked if user_id in seen or seen.add(user_id))
            raise DuplicateIdError(f"id {duplicate!r} appears more than once in the batch")
        return checked

    def _after_write(self, config: CollectionConfig, changed: int) -> None:
        self._config = config
        self._sequence = config.sequence
        self._changes_since_snapshot += changed
        if self._changes_since_snapshot >= max(SNAPSHOT_MIN_CHANGES, SNAPSHOT_SHARE * len(self._index)):
            self._snapshot_if_useful()

    def _snapshot_if_useful(self) -> None:
        if self._index.snapshots and self._changes_since_snapshot:
            self._snapshot()

    def _snapshot(self) -> None:
        save_snapshot(self._environment, self._folder, self._store, self._config, self._index, self._sequence)
        self._changes_since_snapshot = 0

    def _adopt(self, loaded: LoadedIndex) -> None:
        self._index, self._sequence = loaded.index, loaded.sequence
        self._changes_since_snapshot = loaded.unsaved
        self._index_source = loaded.source

    def _check_live(self) -> None:
        if self._dropped:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped")

    # ---- used by Database ----

    def _close(self) -> None:
        """Snapshot unsaved index changes (writer handles only)."""
        with self._write_lock:
            if self._environment.writable:
                self._snapshot_if_useful()

    def _refresh(self) -> None:
        """Catch up with writes committed by another process since this
        handle's index was loaded."""
        with self._write_lock:
            self._adopt(catch_up_or_reload(self._environment, self._folder, self._store, self._index,
                                           self._sequence))
            with self._environment.read() as txn:
                self._config = read_config(txn, self.name)


def _check_finite(matrix: np.ndarray, what: str = "vectors") -> None:
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InvalidArgumentError(f"{what} row {row} contains NaN or infinity")


def _scores(distances: np.ndarray, metric: str) -> np.ndarray:
    """Distances (smaller is closer) to the scores hits report."""
    if metric == "l2":
        return np.sqrt(np.maximum(distances, 0.0))
    return 1.0 - distances
