"""One collection's records in LMDB: vectors, payloads, the id maps, the
payload indexes and the change log, read and written inside a caller's
transaction.

Named databases (``<key>`` is the collection's random hex key):

- ``<key>:vectors``  block number -> the float32 vectors of a block of
  consecutive labels (:mod:`vecdb.storage.vector_blocks`)
- ``<key>:payloads`` label -> msgpack payload (absent when empty)
- ``<key>:ids``      user id key -> label
- ``<key>:labels``   label -> a flags byte (1: the point has a payload), then
  the user id key: what a point must have is known, so an entry that has
  gone missing (its key damaged) is reported, not taken for "no payload"
- ``<key>:changes``  sequence -> the state's fingerprint after the batch (u64
  little-endian), then the labels the batch touched (big-endian)
- ``<key>:payload-index`` field/value -> labels (dupsort, 12-byte values: the
  label and its check)
- ``<key>:quantizer`` ``codebooks`` -> PQ codebooks (vecdb.ProductQuantizer bytes),
  ``rotation`` -> the PCA rotation of the prefix indexes (vecdb.index.rotation bytes)

Every value is sealed with a checksum of the database, key and value
(:mod:`vecdb.storage.codec`) and checked when read (each vector in a block
is sealed on its own, with its label); damage raises CorruptRecordError
naming the collection and the point.

Labels are dense internal ids given out in increasing order and never
reused, so new records append at the end of every label-keyed B-tree.
The collection's settings and counters live in the catalog
(:mod:`vecdb.storage.catalog`).
"""

from __future__ import annotations

import functools
import inspect
import itertools
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import lmdb
import msgpack
import numpy as np

from vecdb import _core
from vecdb.config import CollectionConfig, is_part_name, vector_part_name
from vecdb.errors import CollectionNotFoundError, CorruptRecordError, NotFoundError, VecdbError
from vecdb.native.arrays import unique_sorted
from vecdb.storage.catalog import (
    OPTIONAL_PARTS,
    PARTS,
    REMEDY,
    config_from,
    config_key,
    list_configs,
    part_names,
    write_config,
)
from vecdb.storage.codec import CHECK_BYTES, DamagedValue, ValueCodec, in_chunks, open_all
from vecdb.storage.keys import LABEL_BYTES, label_key, labels_from_bytes, labels_to_bytes, user_id_from_key
from vecdb.storage.payload_index import PayloadIndexes
from vecdb.storage.text_entries import DOCUMENT_FIELD, Analyzed, TextEntries, sparse_entry_field
from vecdb.storage.vector_blocks import VectorBlocks, block_of_header_key

if TYPE_CHECKING:  # environments are passed in; importing the module would make a cycle with upgrade.py
    from vecdb.storage.environment import Environment

F = TypeVar("F", bound=Callable[..., Any])

_CODEBOOKS = b"codebooks"
_ROTATION = b"rotation"
_FINGERPRINT_BYTES = 8
HAS_PAYLOAD = 1  # the flag in a point's <key>:labels entry
EMPTY_PAYLOAD = msgpack.packb({})  # what a point stored without a payload has
_PAYLOAD_CHUNK = 1024  # payloads checked per call while scanning


def point_entry(id_key: bytes, has_payload: bool) -> bytes:
    """A point's <key>:labels value (before sealing)."""
    return bytes([HAS_PAYLOAD if has_payload else 0]) + id_key


def decode_payload(data: Optional[Union[bytes, memoryview]]) -> Dict[str, Any]:
    """A checked payload value (None: no payload)."""
    return {} if data is None else msgpack.unpackb(data, strict_map_key=False)


def chain_fingerprint(previous: int, sequence: int, digest: int) -> int:
    """The fingerprint of the state after batch ``sequence``: a hash chained
    over every committed batch (see :meth:`CollectionStore.fingerprint_at`)."""
    return _core.checksum64(b"".join(value.to_bytes(8, "little") for value in (previous, sequence, digest)))


def _reports_damage(method: F) -> F:
    """Turn a failed value check inside ``method(self, txn, ...)`` into a
    CorruptRecordError naming the collection and point."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self: "CollectionStore", txn: lmdb.Transaction[bytes], *args: Any, **kwargs: Any) -> Any:
            try:
                yield from method(self, txn, *args, **kwargs)
            except DamagedValue as damage:
                raise self.corrupt(txn, damage) from None
        return generator  # type: ignore[return-value]

    @functools.wraps(method)
    def checked(self: "CollectionStore", txn: lmdb.Transaction[bytes], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, txn, *args, **kwargs)
        except DamagedValue as damage:
            raise self.corrupt(txn, damage) from None
    return checked  # type: ignore[return-value]


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
        self._names = part_names(config.key)
        self._codecs = {part: ValueCodec(name) for part, name in self._names.items()}
        self._seeds = {part: codec.seed for part, codec in self._codecs.items()}
        self._parts = {name: part for part, name in self._names.items()}
        self._config_key = config_key(config.name)
        self._blocks = VectorBlocks(self._codecs["vectors"], config.dim)
        # The last config read, with its bytes: reads decode it again only
        # when a write changed it. Shared by readers: never mutated.
        self._decoded: Tuple[Optional[bytes], Optional[CollectionConfig]] = (None, None)
        for part in PARTS:  # opened now, outside any caller's transaction
            if part in OPTIONAL_PARTS:
                self.open_optional_parts()
            else:
                self._database(part)

    def config(self, txn: lmdb.Transaction[bytes]) -> CollectionConfig:
        """The collection's settings in ``txn``'s state (shared: do not
        change it; see :meth:`config_for_update`)."""
        data = txn.get(self._config_key)
        cached_data, cached = self._decoded
        if data is not None and data == cached_data and cached is not None:
            return cached
        config = self._check(data)
        self._decoded = (data, config)
        return config

    def config_for_update(self, txn: lmdb.Transaction[bytes]) -> CollectionConfig:
        """The collection's settings, a copy a write may change and store."""
        return self._check(txn.get(self._config_key))

    def update_config(self, txn: lmdb.Transaction[bytes], **changes: Any) -> CollectionConfig:
        """Store the collection's config with ``changes`` (field=value) made
        to it, in ``txn``; returns the config stored."""
        config = replace(self.config_for_update(txn), **changes)
        write_config(txn, config)
        return config

    def _check(self, data: Optional[bytes]) -> CollectionConfig:
        config = None if data is None else config_from(self._config_key, data)
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

    def text_entries(self) -> TextEntries:
        return TextEntries(self._database("text"), self._codecs["text"])

    def open_optional_parts(self) -> None:
        """Open the parts a collection made before they existed may lack,
        if it has them now (call outside any transaction: LMDB opens
        databases outside one here; a read-only handle calls this before
        catching up with a writer that may have made them)."""
        for part in OPTIONAL_PARTS:
            try:
                self._database(part)
            except CollectionNotFoundError:  # made before text indexes: the writer creates it with the first one
                pass

    def ensure_text_part(self) -> None:
        """Create the text part if the collection predates it (outside any
        write transaction: LMDB opens new databases outside one here)."""
        try:
            self._database("text")
        except CollectionNotFoundError:
            self._environment.create_databases([(self._names["text"], False)])

    def payload_indexes(self, config: CollectionConfig) -> PayloadIndexes:
        return PayloadIndexes(self.payload_index_db, config.payload_indexes, self._codecs["payload-index"], self.name)

    def create_payload_index(self, txn: lmdb.Transaction[bytes], field: str, kind: str) -> CollectionConfig:
        """Index ``field`` as ``kind`` over every stored payload (again, if
        it was indexed as another kind); returns the config."""
        config = self.config(txn)
        if config.payload_indexes.get(field) == kind:
            return config
        indexes = self.payload_indexes(config)
        if field in config.payload_indexes:
            indexes.drop_field(txn, field)
        indexes.build(txn, field, kind, self.payload_records(txn))
        return self.update_config(txn, payload_indexes={**config.payload_indexes, field: kind})

    def drop_payload_index(self, txn: lmdb.Transaction[bytes], field: str) -> CollectionConfig:
        """Remove ``field``'s payload index, if it has one; returns the config."""
        config = self.config(txn)
        if field not in config.payload_indexes:
            return config
        self.payload_indexes(config).drop_field(txn, field)
        return self.update_config(txn, payload_indexes={name: kind for name, kind in config.payload_indexes.items()
                                                        if name != field})

    @_reports_damage
    def create_text_index(self, txn: lmdb.Transaction[bytes], field: str, settings: Dict[str, Any],
                          analyze: Callable[[List[Dict[str, Any]]], List[Optional[Analyzed]]]
                          ) -> Tuple[CollectionConfig, List[int], List[Optional[Analyzed]]]:
        """Analyze ``field`` of every stored payload and store its terms (a
        text index of it made again, if it had one); returns the config and
        what was analyzed, by label, for the in-memory index."""
        config = self.config(txn)
        entries = self.text_entries()
        if field in config.text_indexes:
            entries.drop_field(txn, field)
        labels: List[int] = []
        analyzed: List[Optional[Analyzed]] = []
        for chunk in in_chunks(self.payload_records(txn), _PAYLOAD_CHUNK):
            chunk_labels = [label for label, _ in chunk]
            chunk_terms = analyze([payload for _, payload in chunk])
            entries.put(txn, field, chunk_labels, chunk_terms)
            labels.extend(chunk_labels)
            analyzed.extend(chunk_terms)
        return self.update_config(txn, text_indexes={**config.text_indexes, field: settings}), labels, analyzed

    def drop_text_index(self, txn: lmdb.Transaction[bytes], field: str) -> CollectionConfig:
        """Remove ``field``'s text index, if it has one; returns the config."""
        config = self.config(txn)
        if field not in config.text_indexes:
            return config
        self.text_entries().drop_field(txn, field)
        return self.update_config(txn, text_indexes={name: spec for name, spec in config.text_indexes.items()
                                                     if name != field})

    @_reports_damage
    def text_terms(self, txn: lmdb.Transaction[bytes], field: str) -> Iterator[Tuple[List[int], List[Analyzed]]]:
        """Every stored point's terms for ``field``, a chunk at a time."""
        yield from self.text_entries().read_field(txn, field)

    @_reports_damage
    def text_terms_of(self, txn: lmdb.Transaction[bytes], field: str, labels: Sequence[int]) -> List[Optional[Analyzed]]:
        return self.text_entries().read(txn, field, labels)

    @_reports_damage
    def sparse_vectors(self, txn: lmdb.Transaction[bytes], name: str
                       ) -> Iterator[Tuple[List[int], List[Tuple[np.ndarray, np.ndarray]]]]:
        """Every stored sparse vector ``name``, a chunk at a time."""
        yield from self.text_entries().read_sparse_field(txn, name)

    @_reports_damage
    def sparse_vectors_of(self, txn: lmdb.Transaction[bytes], name: str,
                          labels: Sequence[int]) -> List[Optional[Tuple[np.ndarray, np.ndarray]]]:
        return self.text_entries().read_sparse(txn, name, labels)

    def _open(self, part: str, key: bytes, stored: Optional[bytes]) -> Optional[memoryview]:
        return self._codecs[part].open(key, stored)

    def _checked(self, txn: lmdb.Transaction[bytes], part: str, key: bytes, stored: Optional[bytes]) -> Optional[bytes]:
        """A value as read, once its check passed (still sealed: its last
        CHECK_BYTES are the check); None stays None. The one-value reads
        use this rather than a wrapper: they run once per record."""
        if stored is None or _core.value_intact(self._seeds[part], key, stored):
            return stored
        raise self.corrupt(txn, DamagedValue(self._names[part], key))

    def _open_all(self, part: str, pairs: Any) -> List[Tuple[bytes, memoryview]]:
        return open_all(self._codecs[part], pairs)

    def _seal(self, part: str, key: bytes, value: Any) -> bytes:
        return self._codecs[part].seal(key, value)

    def corrupt(self, txn: lmdb.Transaction[bytes], damage: DamagedValue) -> CorruptRecordError:
        """The error for a value that failed its check, naming the point (by
        id, read through the label map if that is intact) or the record."""
        part, key = self._parts.get(damage.database), damage.key
        point: Any = None
        block = block_of_header_key(key) if part == "vectors" else None
        if block is not None:
            first, last = self._blocks.labels_in(block)
            text = f"the header of the stored vectors of labels {first}..{last} is {damage.state}"
        elif part in ("vectors", "payloads", "labels") and len(key) == LABEL_BYTES:
            label = int.from_bytes(key, "big")
            point = self._point_of(txn, label) if part != "labels" else None
            what = {"vectors": "vector", "payloads": "payload", "labels": "id"}[part]
            subject = f"point {point!r} (label {label})" if point is not None else f"the point with label {label}"
            text = f"the stored {what} of {subject} is {damage.state}"
        elif part == "ids":
            point = _readable_id(key)
            text = f"the id entry of point {point!r} is {damage.state}"
        elif part == "changes" and len(key) == LABEL_BYTES:
            text = f"change-log entry {int.from_bytes(key, 'big')} is {damage.state}"
        elif part == "quantizer":
            text = "the stored " + ("PQ codebooks are" if key == _CODEBOOKS else "PCA rotation is") + f" {damage.state}"
        else:
            text = f"a stored value of {part or damage.database.decode(errors='replace')} is {damage.state}"
        return CorruptRecordError(f"collection {self.name!r}: {text}{REMEDY}",
                                  collection=self.name, point_id=point)

    def _point_of(self, txn: lmdb.Transaction[bytes], label: int) -> Any:
        try:
            entry = self._entry(txn, label)
        except CorruptRecordError:
            return None
        return None if entry is None else _readable_id(entry[1:-CHECK_BYTES])

    def _entry(self, txn: lmdb.Transaction[bytes], label: int) -> Optional[bytes]:
        """A point's <key>:labels entry (flags, id key, check), checked; None
        if there is no such point."""
        key = label_key(label)
        return self._checked(txn, "labels", key, txn.get(key, db=self.labels))

    def _missing(self, part: str, label: int) -> DamagedValue:
        """A point's vector or payload that its entry says exists and LMDB
        does not find: the key it was stored under is damaged."""
        return DamagedValue(self._names[part], label_key(label), "missing (the key it was stored under is damaged)")

    # ---- writes (inside Environment.write) ----

    @_reports_damage
    def upsert(
        self,
        txn: lmdb.Transaction[bytes],
        id_keys: Sequence[bytes],
        vectors: np.ndarray,
        payloads: Sequence[Optional[Dict[str, Any]]],
        payload_blobs: Sequence[Optional[bytes]],
        text: Optional[Dict[str, List[Optional[Analyzed]]]] = None,
        sparse: Optional[Dict[str, List[Optional[Tuple[np.ndarray, np.ndarray]]]]] = None,
        documents: Optional[Sequence[Optional[str]]] = None,
    ) -> Tuple[CollectionConfig, np.ndarray]:
        """Insert or replace records (with their terms for each text-indexed
        field, ``text``, their sparse vectors, ``sparse``: every declared
        name, None where a point has none, and their documents: None for
        none, which a replace's point loses too); returns the new settings
        and the labels."""
        config = self.config_for_update(txn)
        indexes = self.payload_indexes(config)
        labels = np.empty(len(id_keys), dtype=np.int64)
        fresh: List[int] = []
        found = self._codecs["ids"].opened(txn.cursor(db=self.ids).getmulti(id_keys))  # one call for the batch
        for row, id_key in enumerate(id_keys):
            stored = found.get(id_key)
            if stored is None:
                labels[row] = config.next_label
                config.next_label += 1
                fresh.append(row)
            else:
                labels[row] = int.from_bytes(stored[:LABEL_BYTES], "big")
                if indexes.fields:
                    indexes.remove(txn, int(labels[row]), self.payload_of(txn, int(labels[row])))
        fresh_set = set(fresh)
        label_keys = labels_to_bytes(labels)
        sealed = self._codecs["vectors"].seal_rows(label_keys, np.ascontiguousarray(vectors, dtype="<f4"))
        self._append(txn, self.vectors, self._blocks.put_rows(txn, self.vectors, labels, sealed))
        for row in range(len(id_keys)):
            if row not in fresh_set:
                key = label_key(int(labels[row]))
                txn.put(key, self._seal("labels", key, point_entry(id_keys[row], payload_blobs[row] is not None)),
                        db=self.labels)
                if payload_blobs[row] is None:
                    txn.delete(key, db=self.payloads)
                else:
                    txn.put(key, self._seal("payloads", key, payload_blobs[row]), db=self.payloads)
        if fresh:
            keys = [label_key(int(labels[row])) for row in fresh]
            self._append(txn, self.payloads, self._codecs["payloads"].seal_pairs(
                [(keys[i], blob) for i, row in enumerate(fresh) if (blob := payload_blobs[row]) is not None]))
            self._append(txn, self.labels, self._codecs["labels"].seal_pairs(
                [(keys[i], point_entry(id_keys[row], payload_blobs[row] is not None)) for i, row in enumerate(fresh)]))
            txn.cursor(db=self.ids).putmulti(self._codecs["ids"].seal_pairs(
                sorted((id_keys[row], keys[i]) for i, row in enumerate(fresh))))
        if indexes.fields:
            indexes.add_many(txn, labels.tolist(), payloads)
        if documents is not None and any(text is not None for text in documents):
            config.documents = True
        if text or sparse or config.documents:
            entries = self.text_entries()
            for field, analyzed in (text or {}).items():
                entries.put(txn, field, labels.tolist(), analyzed)
            for name, sparse_vectors in (sparse or {}).items():
                entries.put_sparse(txn, name, labels.tolist(), sparse_vectors)
            if config.documents:
                entries.put_documents(txn, labels.tolist(), documents or [None] * len(labels))
        # What an index of this collection holds: labels and their vectors
        # (the vectors' checks stand for their bytes).
        self._log(txn, config, labels, _core.checksum64(b"u" + label_keys + sealed[:, -CHECK_BYTES:].tobytes()))
        return config, labels

    @_reports_damage
    def delete(self, txn: lmdb.Transaction[bytes], labels: np.ndarray) -> Tuple[CollectionConfig, np.ndarray]:
        """Delete records by label (missing ones are skipped); returns the new
        settings and the labels actually deleted."""
        config = self.config_for_update(txn)
        indexes = self.payload_indexes(config)
        deleted = []
        for label in labels.tolist():
            key = label_key(label)
            entry = self._entry(txn, label)
            if entry is None:
                continue
            if indexes.fields:
                indexes.remove(txn, label, self.payload_of(txn, label))
            txn.delete(key, db=self.payloads)
            txn.delete(key, db=self.labels)
            txn.delete(entry[1:-CHECK_BYTES], db=self.ids)
            deleted.append(label)
        if deleted and (config.text_indexes or config.sparse or config.documents):
            self.text_entries().delete(txn, [*config.text_indexes, *map(sparse_entry_field, config.sparse),
                                             *([DOCUMENT_FIELD] if config.documents else [])], deleted)
        if deleted:
            gone = np.array(deleted, dtype=np.int64)
            self._blocks.delete_rows(txn, self.vectors, gone)
            self._log(txn, config, gone, _core.checksum64(b"d" + labels_to_bytes(gone)))
        return config, np.array(deleted, dtype=np.int64)

    @_reports_damage
    def update_payloads(self, txn: lmdb.Transaction[bytes], labels: Sequence[int],
                        change: Callable[[List[Dict[str, Any]]], Tuple[List[Dict[str, Any]], List[Optional[bytes]],
                                                                      Dict[str, List[Optional[Analyzed]]]]]
                        ) -> Tuple[CollectionConfig, np.ndarray, Dict[str, List[Optional[Analyzed]]]]:
        """Replace the payloads of the stored points among ``labels`` by
        what ``change`` makes of their current ones (new dicts, their
        msgpack bytes, their text-indexed fields' terms; it raises to write
        nothing), their vectors untouched; returns the config, the labels
        changed and their terms."""
        config = self.config_for_update(txn)
        indexes = self.payload_indexes(config)
        entries = [(label, entry) for label in labels if (entry := self._entry(txn, label)) is not None]
        found = np.array([label for label, _ in entries], dtype=np.int64)
        if not len(found):
            return config, found, {}
        old = [self.payload_of(txn, int(label)) for label in found]
        payloads, blobs, text = change(old)
        for (label, entry), before, blob in zip(entries, old, blobs):
            key = label_key(label)
            if indexes.fields:
                indexes.remove(txn, label, before)
            txn.put(key, self._seal("labels", key, point_entry(entry[1:-CHECK_BYTES], blob is not None)), db=self.labels)
            if blob is None:
                txn.delete(key, db=self.payloads)
            else:
                txn.put(key, self._seal("payloads", key, blob), db=self.payloads)
        if indexes.fields:
            indexes.add_many(txn, found.tolist(), payloads)
        if text:
            text_entries = self.text_entries()
            for field, analyzed in text.items():
                text_entries.put(txn, field, found.tolist(), analyzed)
        # Logged as a change of these points (their vectors as they are): a
        # read-only handle or a reopened snapshot replays them.
        self._log(txn, config, found, _core.checksum64(b"p" + labels_to_bytes(found)))
        return config, found, text

    def _append(self, txn: lmdb.Transaction[bytes], database: Any, items: List[Tuple[bytes, Any]]) -> None:
        if not items:
            return
        consumed, added = txn.cursor(db=database).putmulti(items, append=True)
        if consumed != len(items) or added != len(items):
            raise VecdbError(f"collection {self.name!r}: appending {len(items)} records stored {added}; "
                             "the label counter is behind the stored labels")

    def _log(self, txn: lmdb.Transaction[bytes], config: CollectionConfig, labels: np.ndarray, digest: int) -> None:
        config.sequence += 1
        config.fingerprint = chain_fingerprint(config.fingerprint, config.sequence, digest)
        key = label_key(config.sequence)
        value = config.fingerprint.to_bytes(_FINGERPRINT_BYTES, "little") + labels_to_bytes(labels)
        txn.put(key, self._seal("changes", key, value), db=self.changes, append=True)
        write_config(txn, config)

    @_reports_damage
    def fingerprint_at(self, txn: lmdb.Transaction[bytes], config: CollectionConfig, sequence: int) -> Optional[int]:
        """The fingerprint of the collection's state after batch ``sequence``
        (what an index snapshot made then must carry), or None once the
        change log no longer reaches back that far."""
        if sequence == config.sequence:
            return config.fingerprint
        if sequence == config.log_start - 1:
            return config.base_fingerprint
        if not config.log_start <= sequence < config.sequence:
            return None
        key = label_key(sequence)
        stored = self._open("changes", key, txn.get(key, db=self.changes))
        return None if stored is None else int.from_bytes(stored[:_FINGERPRINT_BYTES], "little")

    @_reports_damage
    def truncate_log(self, txn: lmdb.Transaction[bytes], through: int) -> None:
        """Forget change-log entries up to ``through`` (a snapshot covers them)."""
        config = self.config_for_update(txn)
        through_fingerprint = self.fingerprint_at(txn, config, through)
        if through_fingerprint is not None:
            config.base_fingerprint = through_fingerprint
        cursor = txn.cursor(db=self.changes)
        if cursor.first():
            while int.from_bytes(cursor.key(), "big") <= through:
                if not cursor.delete():
                    break
        config.log_start = max(config.log_start, through + 1)
        write_config(txn, config)

    def put_codebooks(self, txn: lmdb.Transaction[bytes], data: bytes) -> None:
        txn.put(_CODEBOOKS, self._seal("quantizer", _CODEBOOKS, data), db=self.quantizer)

    def put_rotation(self, txn: lmdb.Transaction[bytes], data: bytes) -> None:
        txn.put(_ROTATION, self._seal("quantizer", _ROTATION, data), db=self.quantizer)

    # ---- reads ----

    @_reports_damage
    def codebooks(self, txn: lmdb.Transaction[bytes]) -> Optional[bytes]:
        stored = self._open("quantizer", _CODEBOOKS, txn.get(_CODEBOOKS, db=self.quantizer))
        return None if stored is None else bytes(stored)

    @_reports_damage
    def rotation(self, txn: lmdb.Transaction[bytes]) -> Optional[bytes]:
        stored = self._open("quantizer", _ROTATION, txn.get(_ROTATION, db=self.quantizer))
        return None if stored is None else bytes(stored)

    def label_of(self, txn: lmdb.Transaction[bytes], id_key: bytes) -> Optional[int]:
        stored = self._checked(txn, "ids", id_key, txn.get(id_key, db=self.ids))
        return None if stored is None else int.from_bytes(stored[:LABEL_BYTES], "big")

    def labels_of(self, txn: lmdb.Transaction[bytes], id_keys: Sequence[bytes]) -> np.ndarray:
        """Labels of the ids that exist (int64, in the order given)."""
        found = [self.label_of(txn, id_key) for id_key in id_keys]
        return np.array([label for label in found if label is not None], dtype=np.int64)

    def id_key_of(self, txn: lmdb.Transaction[bytes], label: int) -> Optional[bytes]:
        entry = self._entry(txn, label)
        return None if entry is None else entry[1:-CHECK_BYTES]

    @_reports_damage
    def vector_of(self, txn: lmdb.Transaction[bytes], label: int) -> Optional[np.ndarray]:
        vectors, present = self.vectors_of(txn, np.array([label], dtype=np.int64), self._blocks.dim)
        if not present[0]:
            if self._entry(txn, label) is not None:
                raise self.corrupt(txn, self._missing("vectors", label))
            return None
        return vectors[0]

    @_reports_damage
    def records_of(self, txn: lmdb.Transaction[bytes], labels: Sequence[int], with_payload: bool,
                   with_vector: bool) -> Dict[int, Tuple[bytes, Optional[Dict[str, Any]], Optional[np.ndarray]]]:
        """``label -> (id key, payload or None, vector or None)`` for the
        labels still stored, read with one LMDB call per kind of record (a
        lookup per block for vectors)."""
        keys = [label_key(label) for label in labels]
        entries = self._codecs["labels"].opened(txn.cursor(db=self.labels).getmulti(keys))
        payloads = self._codecs["payloads"].opened(txn.cursor(db=self.payloads).getmulti(keys)) if with_payload else {}
        if with_vector:
            vectors, has_vector = self.vectors_of(txn, np.array(labels, dtype=np.int64), self._blocks.dim)
        records = {}
        for row, (label, key) in enumerate(zip(labels, keys)):
            entry = entries.get(key)
            if entry is None:
                continue  # deleted
            if with_payload and entry[0] & HAS_PAYLOAD and key not in payloads:
                raise self._missing("payloads", label)
            if with_vector and not has_vector[row]:
                raise self._missing("vectors", label)
            records[label] = (entry[1:], self._decode(txn, key, payloads.get(key)) if with_payload else None,
                              vectors[row] if with_vector else None)
        return records

    @_reports_damage
    def documents_of(self, txn: lmdb.Transaction[bytes], labels: Sequence[int]) -> Dict[int, str]:
        """``label -> document`` of those of these points that have one."""
        if not self.config(txn).documents:
            return {}
        return {label: text for label, text in zip(labels, self.text_entries().read_documents(txn, labels))
                if text is not None}

    @_reports_damage
    def document_records(self, txn: lmdb.Transaction[bytes]) -> Iterator[Tuple[List[int], List[str]]]:
        """Every point's document, in label order, a chunk at a time."""
        if self.config(txn).documents:
            yield from self.text_entries().read_document_field(txn)

    @_reports_damage
    def payload_bytes_of(self, txn: lmdb.Transaction[bytes], labels: Sequence[int]) -> Dict[int, bytes]:
        """``label -> payload`` as stored (msgpack, checked; :data:`EMPTY_PAYLOAD`
        for a point stored without one) of the labels still stored. One
        LMDB call when every label has a payload: only labels without one
        need their entries read (to tell a point stored without a payload
        from a deleted one, or from a damaged payload key)."""
        keys = [label_key(label) for label in labels]
        stored = self._codecs["payloads"].opened(txn.cursor(db=self.payloads).getmulti(keys))
        payloads = {}
        bare = []
        for label, key in zip(labels, keys):
            value = stored.get(key)
            if value is None:
                bare.append(label)
            else:
                payloads[label] = value
        if bare:
            payloads.update((label, EMPTY_PAYLOAD) for label in self.records_of(txn, bare, True, False))
        return payloads

    @_reports_damage
    def records_by_id(self, txn: lmdb.Transaction[bytes], id_keys: Sequence[bytes], with_payload: bool,
                      with_vector: bool) -> List[Optional[Tuple[bytes, Optional[Dict[str, Any]], Optional[np.ndarray]]]]:
        """For each id key, ``(id key, payload or None, vector or None)`` of
        its point, or None if there is no such point; one LMDB call per kind
        of record (a lookup per block for vectors)."""
        found = self._codecs["ids"].opened(txn.cursor(db=self.ids).getmulti(list(id_keys)))
        labels = {id_key: int.from_bytes(value[:LABEL_BYTES], "big") for id_key, value in found.items()}
        records = self.records_of(txn, list(labels.values()), with_payload, with_vector)
        for label in labels.values():
            if label not in records:  # the id names a point whose entry is gone
                raise self.corrupt(txn, DamagedValue(self._names["labels"], label_key(label),
                                                     "missing (the key it was stored under is damaged)"))
        return [records[labels[id_key]] if id_key in labels else None for id_key in id_keys]

    def payload_of(self, txn: lmdb.Transaction[bytes], label: int) -> Dict[str, Any]:
        key = label_key(label)
        stored = self._checked(txn, "payloads", key, txn.get(key, db=self.payloads))
        if stored is None:
            entry = self._entry(txn, label)
            if entry is not None and entry[0] & HAS_PAYLOAD:
                raise self.corrupt(txn, self._missing("payloads", label))
            return {}
        return self._decode(txn, key, memoryview(stored)[:-CHECK_BYTES])

    def _decode(self, txn: lmdb.Transaction[bytes], key: bytes,
                payload: Optional[Union[bytes, memoryview]]) -> Dict[str, Any]:
        try:
            return decode_payload(payload)
        except ValueError:  # msgpack's errors; only past a check that failed to see damage
            raise self.corrupt(txn, DamagedValue(self._names["payloads"], key)) from None

    @_reports_damage
    def all_labels(self, txn: lmdb.Transaction[bytes]) -> np.ndarray:
        return labels_from_bytes(self._codecs["labels"].keys_of(list(txn.cursor(db=self.labels))))

    @_reports_damage
    def ids_from(self, txn: lmdb.Transaction[bytes], first: int, count: int) -> Tuple[np.ndarray, List[bytes]]:
        """Up to ``count`` stored points from label ``first`` on, in label
        order: their labels and id keys."""
        cursor = txn.cursor(db=self.labels)
        if not cursor.set_range(label_key(first)):
            return np.zeros(0, dtype=np.int64), []
        pairs = list(itertools.islice(cursor.iternext(), count))
        entries = self._codecs["labels"].opened(pairs)
        keys = [key for key, _ in pairs]
        return labels_from_bytes(b"".join(keys)), [bytes(entries[key][1:]) for key in keys]  # after the flags byte

    @_reports_damage
    def vectors_of(self, txn: lmdb.Transaction[bytes], labels: np.ndarray, dim: int) -> Tuple[np.ndarray, np.ndarray]:
        """The vectors of these labels as one ``(n, dim)`` float32 matrix (each
        block looked up once and read in place), and which labels are still
        stored (the rows of the others are zeros)."""
        with self._environment.zero_copy(txn) as view:
            return self._layout(dim).rows_of(view, self.vectors, labels)

    @_reports_damage
    def vector_chunks(self, txn: lmdb.Transaction[bytes], dim: int, size: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Every stored vector in label order, ``size`` at a time, as
        ``(labels, (n, dim) float32 matrix)``: a pass over a large collection
        without holding all of it in memory (each block read once, in place,
        and each vector copied once)."""
        with self._environment.zero_copy(txn) as view:
            yield from self._layout(dim).chunks(view, self.vectors, size)

    def _layout(self, dim: int) -> VectorBlocks:
        if dim != self._blocks.dim:
            raise VecdbError(f"internal error: collection {self.name!r} holds {self._blocks.dim}-d vectors, "
                             f"not {dim}-d")
        return self._blocks

    def sample_vectors(self, txn: lmdb.Transaction[bytes], dim: int, count: int, seed: int) -> np.ndarray:
        """Up to ``count`` stored vectors chosen uniformly at random."""
        labels = self.all_labels(txn)
        if len(labels) > count:
            labels = np.sort(np.random.default_rng(seed).choice(labels, size=count, replace=False))
        return self.vectors_of(txn, labels, dim)[0]

    def count(self, txn: lmdb.Transaction[bytes]) -> int:
        return txn.stat(self.labels)["entries"]

    @_reports_damage
    def payload_records(self, txn: lmdb.Transaction[bytes]) -> Iterator[Tuple[int, Dict[str, Any]]]:
        """Every non-empty payload with its label, in label order."""
        for pairs in in_chunks(txn.cursor(db=self.payloads), _PAYLOAD_CHUNK):
            for key, value in self._open_all("payloads", pairs):
                yield int.from_bytes(key, "big"), self._decode(txn, key, value)

    @_reports_damage
    def payload_matches(self, txn: lmdb.Transaction[bytes], native: Any,
                        reference: Callable[[Dict[str, Any]], bool]) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Labels of every non-empty payload, a chunk at a time, with whether
        each matches a filter: tested in place by ``native`` (a
        ``_core.PayloadFilter``), or, for a payload its bytes leave undecided,
        decoded (damage is reported) and tested by ``reference``."""
        codec = self._codecs["payloads"]
        for pairs in in_chunks(txn.cursor(db=self.payloads), _PAYLOAD_CHUNK):
            codec.check_pairs(pairs)
            labels, verdicts = native.match(pairs, CHECK_BYTES)
            matches = verdicts == 1
            for row in np.flatnonzero(verdicts == 2):
                key, value = pairs[row]
                matches[row] = reference(self._decode(txn, key, memoryview(value)[:-CHECK_BYTES]))
            yield labels, matches

    @_reports_damage
    def changed_since(self, txn: lmdb.Transaction[bytes], sequence: int) -> np.ndarray:
        """Labels touched by batches after ``sequence`` (each once)."""
        cursor = txn.cursor(db=self.changes)
        if not cursor.set_range(label_key(sequence + 1)):
            return np.zeros(0, dtype=np.int64)
        entries = self._open_all("changes", cursor.iternext(keys=True, values=True))
        return unique_sorted(labels_from_bytes(b"".join(value[_FINGERPRINT_BYTES:] for _, value in entries)))

    @_reports_damage
    def labels_after(self, txn: lmdb.Transaction[bytes], start: int, limit: int) -> np.ndarray:
        """Up to ``limit`` stored labels >= ``start``, in order (for scrolling)."""
        cursor = txn.cursor(db=self.labels)
        found: List[Tuple[bytes, bytes]] = []
        if cursor.set_range(label_key(start)):
            for pair in cursor.iternext(keys=True, values=True):
                found.append(pair)
                if len(found) == limit:
                    break
        return labels_from_bytes(self._codecs["labels"].keys_of(found))


def describe_collections(environment: Environment) -> List[Dict[str, Any]]:
    """Every collection's settings and point count, read without loading any
    index (cheap on any size; what ``vecdb info`` prints and a backup's
    manifest records). A collection dropped meanwhile is left out."""
    with environment.read() as txn:
        configs = sorted(list_configs(txn), key=lambda config: config.name)
    by_name = {config.name: config for config in configs}
    described = []
    for config in configs:
        if is_part_name(config.name):  # described with its collection
            continue
        try:
            store = CollectionStore(environment, config)
            with environment.read() as txn:
                config, count = store.config(txn), store.count(txn)
        except CollectionNotFoundError:
            continue
        # A collection of named vectors: each vector's settings, the default's also at the top (where
        # readers of a one-vector collection look).
        parts = {vector: by_name.get(vector_part_name(config.name, vector)) for vector in config.vectors}
        vectors = {vector: {**part.settings.to_dict(), "default_plan": part.default_plan}
                   for vector, part in parts.items() if part is not None}
        shown = next(iter(vectors.values())) if vectors else {**config.settings.to_dict(),
                                                              "default_plan": config.default_plan}
        described.append({"name": config.name, "count": count, **shown,
                          "payload_indexes": dict(config.payload_indexes),
                          "text_indexes": {field: dict(settings) for field, settings in config.text_indexes.items()},
                          "sparse": list(config.sparse), **({"vectors": vectors} if vectors else {}),
                          **({"embedding": config.embedding} if config.embedding is not None else {})})
    return described


def _readable_id(id_key: bytes) -> Any:
    """A stored id key as the caller's id, or its bytes if it does not decode."""
    try:
        return user_id_from_key(id_key)
    except (ValueError, IndexError):
        return id_key
