"""One collection's records in LMDB: vectors, payloads, the id maps, the
payload indexes and the change log, read and written inside a caller's
transaction.

Named databases (``<key>`` is the collection's random hex key):

- ``<key>:vectors``  label -> raw little-endian float32 vector
- ``<key>:payloads`` label -> msgpack payload (absent when empty)
- ``<key>:ids``      user id key -> label
- ``<key>:labels``   label -> user id key
- ``<key>:changes``  sequence -> labels the batch touched (big-endian)
- ``<key>:payload-index`` field/value -> labels (dupsort, 8-byte values)
- ``<key>:quantizer`` ``codebooks`` -> PQ codebooks (vecdb.ProductQuantizer bytes),
  ``rotation`` -> the PCA rotation of the prefix indexes (vecdb.rotation bytes)

Labels are dense internal ids given out in increasing order and never
reused, so new records append at the end of every label-keyed B-tree.
The collection's settings and counters live in the main database under
``collection:<name>``.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import lmdb
import msgpack
import numpy as np

from vecdb.config import CollectionConfig
from vecdb.errors import CollectionNotFoundError, NotFoundError, VecdbError
from vecdb.storage.environment import Environment
from vecdb.storage.keys import label_key, labels_from_bytes, labels_to_bytes
from vecdb.storage.payload_index import PayloadIndexes

CONFIG_PREFIX = b"collection:"
_PARTS = ("vectors", "payloads", "ids", "labels", "changes", "payload-index", "quantizer")
_DATABASE_NAME = re.compile(rb"([0-9a-f]{16}):(" + b"|".join(part.encode() for part in _PARTS) + rb")")
_CODEBOOKS = b"codebooks"
_ROTATION = b"rotation"


def config_key(name: str) -> bytes:
    return CONFIG_PREFIX + name.encode()


def read_config(txn: lmdb.Transaction, name: str) -> CollectionConfig:
    data = txn.get(config_key(name))
    if data is None:
        raise CollectionNotFoundError(f"collection {name!r} does not exist")
    return CollectionConfig(**msgpack.unpackb(data))


def write_config(txn: lmdb.Transaction, config: CollectionConfig) -> None:
    txn.put(config_key(config.name), msgpack.packb(config.to_dict()))


def list_configs(txn: lmdb.Transaction) -> List[CollectionConfig]:
    cursor = txn.cursor()
    configs = []
    if cursor.set_range(CONFIG_PREFIX):
        for key, value in cursor:
            if not key.startswith(CONFIG_PREFIX):
                break
            configs.append(CollectionConfig(**msgpack.unpackb(value)))
    return configs


def decode_payload(data: Optional[bytes]) -> Dict[str, Any]:
    return {} if data is None else msgpack.unpackb(data, strict_map_key=False)


def database_names(key: str) -> List[Tuple[bytes, bool]]:
    """The named databases of the collection with this key, as
    ``(name, dupsort)``."""
    return [(f"{key}:{part}".encode(), part == "payload-index") for part in _PARTS]


def create_databases(environment: Environment, key: str) -> None:
    """Create the named databases of a new collection (before its config is
    written: a crash in between leaves databases no config names, which
    :func:`remove_orphaned_databases` deletes)."""
    environment.create_databases(database_names(key))


def drop_collection(environment: Environment, name: str, key: str) -> None:
    """Delete the collection's config and its named databases in one
    transaction (CollectionNotFoundError if that collection is gone)."""
    def body(txn: lmdb.Transaction) -> None:
        config = read_config(txn, name)
        if config.key != key:
            raise CollectionNotFoundError(f"collection {name!r} was dropped")
        txn.delete(config_key(name))

    environment.drop_databases(database_names(key), body)


def remove_orphaned_databases(environment: Environment) -> int:
    """Delete named databases that belong to no collection (left by a crash
    between creating a collection's databases and writing its config, or by
    older versions, which re-created dropped collections' databases on a
    stale lookup); returns how many. Call with the writer handle."""
    names = environment.database_names()
    with environment.read() as txn:
        live = {config.key for config in list_configs(txn)}
    orphans = []
    for name in names:
        match = _DATABASE_NAME.fullmatch(name)
        if match is not None and match.group(1).decode() not in live:
            orphans.append((name, match.group(2) == b"payload-index"))
    if orphans:
        environment.drop_databases(orphans, lambda txn: None)
    return len(orphans)


class CollectionStore:
    """Reads and writes one collection's records inside transactions.

    Every transaction of a collection starts with :meth:`config` (or
    :meth:`config_for_update`), which raises CollectionNotFoundError when
    the collection was dropped, or dropped and created again under the
    same name: a handle to a dropped collection never reads another's
    records."""

    def __init__(self, environment: Environment, config: CollectionConfig) -> None:
        self.name = config.name
        self.key = config.key
        self._environment = environment
        self._names = {part: name for part, (name, _) in zip(_PARTS, database_names(config.key))}
        self._config_key = config_key(config.name)
        # The last config read, with its bytes: reads decode it again only
        # when a write changed it. Shared by readers: never mutated.
        self._decoded: Tuple[Optional[bytes], Optional[CollectionConfig]] = (None, None)
        for part in _PARTS:  # opened now, outside any caller's transaction
            self._database(part)

    def config(self, txn: lmdb.Transaction) -> CollectionConfig:
        """The collection's settings in ``txn``'s state (shared: do not
        change it; see :meth:`config_for_update`)."""
        data = txn.get(self._config_key)
        cached_data, cached = self._decoded
        if data is not None and data == cached_data:
            return cached
        config = self._check(data)
        self._decoded = (data, config)
        return config

    def config_for_update(self, txn: lmdb.Transaction) -> CollectionConfig:
        """The collection's settings, a copy a write may change and store."""
        return self._check(txn.get(self._config_key))

    def _check(self, data: Optional[bytes]) -> CollectionConfig:
        config = None if data is None else CollectionConfig(**msgpack.unpackb(data))
        if config is None or config.key != self.key:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped")
        return config

    # Handles are looked up on each use (a dict lookup): they change when
    # Database.compact() reopens the environment, and die with a drop.
    def _database(self, part: str) -> Any:
        try:
            return self._environment.database(self._names[part], dupsort=part == "payload-index")
        except NotFoundError:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped") from None

    vectors = property(lambda self: self._database("vectors"))
    payloads = property(lambda self: self._database("payloads"))
    ids = property(lambda self: self._database("ids"))
    labels = property(lambda self: self._database("labels"))
    changes = property(lambda self: self._database("changes"))
    payload_index_db = property(lambda self: self._database("payload-index"))
    quantizer = property(lambda self: self._database("quantizer"))

    def payload_indexes(self, config: CollectionConfig) -> PayloadIndexes:
        return PayloadIndexes(self.payload_index_db, config.payload_indexes)

    # ---- writes (inside Environment.write) ----

    def upsert(
        self,
        txn: lmdb.Transaction,
        id_keys: Sequence[bytes],
        vectors: np.ndarray,
        payloads: Sequence[Optional[Dict[str, Any]]],
        payload_blobs: Sequence[Optional[bytes]],
    ) -> Tuple[CollectionConfig, np.ndarray]:
        """Insert or replace records; returns the new settings and the labels."""
        config = self.config_for_update(txn)
        indexes = self.payload_indexes(config)
        labels = np.empty(len(id_keys), dtype=np.int64)
        fresh: List[int] = []
        found = dict(txn.cursor(db=self.ids).getmulti(id_keys))  # one call for the whole batch
        for row, id_key in enumerate(id_keys):
            stored = found.get(id_key)
            if stored is None:
                labels[row] = config.next_label
                config.next_label += 1
                fresh.append(row)
            else:
                labels[row] = int.from_bytes(stored, "big")
                if indexes.fields:
                    indexes.remove(txn, int(labels[row]), decode_payload(txn.get(stored, db=self.payloads)))
        fresh_set = set(fresh)
        rows = memoryview(np.ascontiguousarray(vectors, dtype="<f4")).cast("B")
        row_bytes = vectors.shape[1] * 4
        for row in range(len(id_keys)):
            if row not in fresh_set:
                key = label_key(int(labels[row]))
                txn.put(key, rows[row * row_bytes:(row + 1) * row_bytes], db=self.vectors)
                if payload_blobs[row] is None:
                    txn.delete(key, db=self.payloads)
                else:
                    txn.put(key, payload_blobs[row], db=self.payloads)
        if fresh:
            keys = [label_key(int(labels[row])) for row in fresh]
            self._append(txn, self.vectors, [(keys[i], rows[row * row_bytes:(row + 1) * row_bytes])
                                             for i, row in enumerate(fresh)])
            self._append(txn, self.payloads, [(keys[i], payload_blobs[row]) for i, row in enumerate(fresh)
                                              if payload_blobs[row] is not None])
            self._append(txn, self.labels, [(keys[i], id_keys[row]) for i, row in enumerate(fresh)])
            txn.cursor(db=self.ids).putmulti(sorted((id_keys[row], keys[i]) for i, row in enumerate(fresh)))
        if indexes.fields:
            indexes.add_many(txn, labels.tolist(), payloads)
        self._log(txn, config, labels)
        return config, labels

    def delete(self, txn: lmdb.Transaction, labels: np.ndarray) -> Tuple[CollectionConfig, np.ndarray]:
        """Delete records by label (missing ones are skipped); returns the new
        settings and the labels actually deleted."""
        config = self.config_for_update(txn)
        indexes = self.payload_indexes(config)
        deleted = []
        for label in labels.tolist():
            key = label_key(label)
            id_key = txn.get(key, db=self.labels)
            if id_key is None:
                continue
            if indexes.fields:
                indexes.remove(txn, label, decode_payload(txn.get(key, db=self.payloads)))
            txn.delete(key, db=self.vectors)
            txn.delete(key, db=self.payloads)
            txn.delete(key, db=self.labels)
            txn.delete(id_key, db=self.ids)
            deleted.append(label)
        if deleted:
            self._log(txn, config, np.array(deleted, dtype=np.int64))
        return config, np.array(deleted, dtype=np.int64)

    def _append(self, txn: lmdb.Transaction, database: Any, items: List[Tuple[bytes, Any]]) -> None:
        if not items:
            return
        consumed, added = txn.cursor(db=database).putmulti(items, append=True)
        if consumed != len(items) or added != len(items):
            raise VecdbError(f"collection {self.name!r}: appending {len(items)} records stored {added}; "
                             "the label counter is behind the stored labels")

    def _log(self, txn: lmdb.Transaction, config: CollectionConfig, labels: np.ndarray) -> None:
        config.sequence += 1
        txn.put(label_key(config.sequence), labels_to_bytes(labels), db=self.changes, append=True)
        write_config(txn, config)

    def truncate_log(self, txn: lmdb.Transaction, through: int) -> None:
        """Forget change-log entries up to ``through`` (a snapshot covers them)."""
        config = self.config_for_update(txn)
        cursor = txn.cursor(db=self.changes)
        if cursor.first():
            while int.from_bytes(cursor.key(), "big") <= through:
                if not cursor.delete():
                    break
        config.log_start = max(config.log_start, through + 1)
        write_config(txn, config)

    def put_codebooks(self, txn: lmdb.Transaction, data: bytes) -> None:
        txn.put(_CODEBOOKS, data, db=self.quantizer)

    def put_rotation(self, txn: lmdb.Transaction, data: bytes) -> None:
        txn.put(_ROTATION, data, db=self.quantizer)

    # ---- reads ----

    def codebooks(self, txn: lmdb.Transaction) -> Optional[bytes]:
        return txn.get(_CODEBOOKS, db=self.quantizer)

    def rotation(self, txn: lmdb.Transaction) -> Optional[bytes]:
        return txn.get(_ROTATION, db=self.quantizer)

    def label_of(self, txn: lmdb.Transaction, id_key: bytes) -> Optional[int]:
        stored = txn.get(id_key, db=self.ids)
        return None if stored is None else int.from_bytes(stored, "big")

    def labels_of(self, txn: lmdb.Transaction, id_keys: Sequence[bytes]) -> np.ndarray:
        """Labels of the ids that exist (int64, in the order given)."""
        found = [txn.get(id_key, db=self.ids) for id_key in id_keys]
        return np.array([int.from_bytes(s, "big") for s in found if s is not None], dtype=np.int64)

    def id_key_of(self, txn: lmdb.Transaction, label: int) -> Optional[bytes]:
        return txn.get(label_key(label), db=self.labels)

    def vector_of(self, txn: lmdb.Transaction, label: int) -> Optional[np.ndarray]:
        stored = txn.get(label_key(label), db=self.vectors)
        return None if stored is None else np.frombuffer(stored, dtype="<f4").astype(np.float32)

    def records_of(self, txn: lmdb.Transaction, labels: Sequence[int], with_payload: bool,
                   with_vector: bool) -> Dict[int, Tuple[bytes, Optional[Dict[str, Any]], Optional[np.ndarray]]]:
        """``label -> (id key, payload or None, vector or None)`` for the
        labels still stored, read with one LMDB call per kind of record."""
        keys = [label_key(label) for label in labels]
        ids = dict(txn.cursor(db=self.labels).getmulti(keys))
        payloads = dict(txn.cursor(db=self.payloads).getmulti(keys)) if with_payload else {}
        vectors = dict(txn.cursor(db=self.vectors).getmulti(keys)) if with_vector else {}
        return {label: (ids[key], decode_payload(payloads.get(key)) if with_payload else None,
                        np.frombuffer(vectors[key], dtype="<f4").astype(np.float32) if with_vector else None)
                for label, key in zip(labels, keys) if key in ids}

    def payload_of(self, txn: lmdb.Transaction, label: int) -> Dict[str, Any]:
        return decode_payload(txn.get(label_key(label), db=self.payloads))

    def all_labels(self, txn: lmdb.Transaction) -> np.ndarray:
        return labels_from_bytes(b"".join(txn.cursor(db=self.labels).iternext(keys=True, values=False)))

    def vectors_of(self, txn: lmdb.Transaction, labels: np.ndarray, dim: int) -> Tuple[np.ndarray, np.ndarray]:
        """The vectors of these labels as one ``(n, dim)`` float32 matrix, read
        with one LMDB call, and which labels are still stored (the rows of
        the others are zeros)."""
        keys = [label_key(label) for label in labels.tolist()]
        found = txn.cursor(db=self.vectors).getmulti(keys)
        if len(found) == len(keys):
            matrix = np.frombuffer(b"".join(value for _, value in found), dtype="<f4").reshape(len(keys), dim)
            return matrix, np.ones(len(keys), dtype=bool)
        matrix = np.zeros((len(keys), dim), dtype=np.float32)
        present = np.zeros(len(keys), dtype=bool)
        rows = {key: row for row, key in enumerate(keys)}
        for key, value in found:
            matrix[rows[key]] = np.frombuffer(value, dtype="<f4")
            present[rows[key]] = True
        return matrix, present

    def vector_chunks(self, txn: lmdb.Transaction, dim: int, size: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Every stored vector in label order, ``size`` at a time, as
        ``(labels, (n, dim) float32 matrix)``: a pass over a large collection
        without holding all of it in memory."""
        cursor = txn.cursor(db=self.vectors)
        keys: List[bytes] = []
        values: List[bytes] = []
        for key, value in cursor:
            keys.append(key)
            values.append(value)
            if len(keys) == size:
                yield labels_from_bytes(b"".join(keys)), np.frombuffer(b"".join(values), dtype="<f4").reshape(-1, dim)
                keys, values = [], []
        if keys:
            yield labels_from_bytes(b"".join(keys)), np.frombuffer(b"".join(values), dtype="<f4").reshape(-1, dim)

    def sample_vectors(self, txn: lmdb.Transaction, dim: int, count: int, seed: int) -> np.ndarray:
        """Up to ``count`` stored vectors chosen uniformly at random."""
        labels = self.all_labels(txn)
        if len(labels) > count:
            labels = np.sort(np.random.default_rng(seed).choice(labels, size=count, replace=False))
        return self.vectors_of(txn, labels, dim)[0]

    def count(self, txn: lmdb.Transaction) -> int:
        return txn.stat(self.labels)["entries"]

    def payload_records(self, txn: lmdb.Transaction) -> Iterator[Tuple[int, Dict[str, Any]]]:
        """Every non-empty payload with its label, in label order."""
        for key, value in txn.cursor(db=self.payloads):
            yield int.from_bytes(key, "big"), decode_payload(value)

    def changed_since(self, txn: lmdb.Transaction, sequence: int) -> np.ndarray:
        """Labels touched by batches after ``sequence`` (each once)."""
        cursor = txn.cursor(db=self.changes)
        if not cursor.set_range(label_key(sequence + 1)):
            return np.zeros(0, dtype=np.int64)
        return np.unique(labels_from_bytes(b"".join(cursor.iternext(keys=False, values=True))))

    def labels_after(self, txn: lmdb.Transaction, start: int, limit: int) -> np.ndarray:
        """Up to ``limit`` stored labels >= ``start``, in order (for scrolling)."""
        cursor = txn.cursor(db=self.labels)
        found: List[bytes] = []
        if cursor.set_range(label_key(start)):
            for key in cursor.iternext(keys=True, values=False):
                found.append(key)
                if len(found) == limit:
                    break
        return labels_from_bytes(b"".join(found))
