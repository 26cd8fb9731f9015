"""Payload indexes: inverted indexes from a payload field's values to labels.

One LMDB database per collection (dupsort, fixed 12-byte values: a label and
its check, :mod:`vecdb.storage.codec`) holds every field's entries under
``field \\0 tag value`` keys, where the value encoding
preserves order (:mod:`vecdb.storage.keys`), so equality is one key and a
range is one cursor walk. Every record whose payload has the field at all
also gets a presence entry (tag 0), which answers ``$exists``.

An indexed field is typed: every stored value must be of the index's kind
(or None, or a list of such values, each indexed). Payloads that break this
are refused, so an index lookup always agrees with scanning the payloads.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Tuple

import lmdb
import numpy as np

from vecdb.errors import CorruptRecordError, InvalidPayloadError
from vecdb.payload_fields import MISSING, split_path, value_at
from vecdb.storage.codec import CHECK_BYTES, DamagedValue, ValueCodec
from vecdb.storage.keys import LABEL_BYTES, float_value_key, int_value_key, label_key

_TAGS = {"keyword": b"k", "integer": b"i", "float": b"f", "bool": b"b"}
_PRESENCE_TAG = b"\x00"
_MAX_VALUE_BYTES = 250
_FLOAT_EXACT_INT = 2**53


def _prefix(field: str) -> bytes:
    return field.encode("utf-8", "surrogatepass") + b"\x00"


def encode_value(kind: str, value: Any) -> Optional[bytes]:
    """The order-preserving encoding of ``value`` for an index of ``kind``,
    or None if the value is not of that kind (a lookup then falls back to a
    scan; a stored payload is refused by :func:`entry_keys`)."""
    if kind == "bool":
        return (b"\x01" if value else b"\x00") if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind == "integer":
        if isinstance(value, int) and -(2**63) <= value < 2**63:
            return int_value_key(value)
        return None
    if kind == "float":
        if isinstance(value, int) and abs(value) <= _FLOAT_EXACT_INT:
            return float_value_key(float(value))
        if isinstance(value, float) and math.isfinite(value):
            return float_value_key(value)
        return None
    if isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        return encoded if len(encoded) <= _MAX_VALUE_BYTES else None
    return None


def entry_keys(field: str, kind: str, payload: Dict[str, Any]) -> List[bytes]:
    """The index keys one payload contributes to ``field``'s index: its
    presence entry and one entry per distinct value. Raises
    InvalidPayloadError for a value the index cannot hold."""
    value = value_at(payload, split_path(field))
    if value is MISSING:
        return []
    prefix = _prefix(field)
    keys = {prefix + _PRESENCE_TAG}
    for item in value if isinstance(value, list) else (value,):
        if item is None:
            continue
        encoded = encode_value(kind, item)
        if encoded is None:
            raise InvalidPayloadError(
                f"payload field {field!r} has a {kind} index, which cannot hold {item!r} "
                f"({type(item).__name__}{', too long' if isinstance(item, str) else ''}); "
                f"store {kind} values there or drop the index"
            )
        keys.add(prefix + _TAGS[kind] + encoded)
    return sorted(keys)


class PayloadIndexes:
    """The payload indexes of one collection, over one LMDB database."""

    def __init__(self, database: Any, fields: Dict[str, str], codec: ValueCodec, collection: str) -> None:
        self.database = database
        self.fields = fields  # field path -> kind
        self._codec = codec
        self._collection = collection

    def add_many(self, txn: lmdb.Transaction[bytes], labels: List[int],
                 payloads: Iterable[Optional[Dict[str, Any]]]) -> None:
        """Index a batch of payloads, written in one sorted put call."""
        entries = [(key, label_key(label))
                   for label, payload in zip(labels, payloads) if payload
                   for field, kind in self.fields.items()
                   for key in entry_keys(field, kind, payload)]
        entries.sort()  # by key, then label: sealing keeps that order (the check follows the label)
        txn.cursor(db=self.database).putmulti(self._codec.seal_pairs(entries), dupdata=True)

    def remove(self, txn: lmdb.Transaction[bytes], label: int, payload: Dict[str, Any]) -> None:
        value = label_key(label)
        for field, kind in self.fields.items():
            for key in entry_keys(field, kind, payload):
                txn.delete(key, self._codec.seal(key, value), db=self.database)

    def build(self, txn: lmdb.Transaction[bytes], field: str, kind: str,
              records: Iterable[Tuple[int, Dict[str, Any]]]) -> None:
        """Index ``field`` over existing records (raises before the caller
        commits if one of them does not fit)."""
        labels_and_payloads = list(records)
        PayloadIndexes(self.database, {field: kind}, self._codec, self._collection).add_many(
            txn, [label for label, _ in labels_and_payloads], [payload for _, payload in labels_and_payloads])

    def drop_field(self, txn: lmdb.Transaction[bytes], field: str) -> None:
        prefix = _prefix(field)
        cursor = txn.cursor(db=self.database)
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete(dupdata=True):
                    break

    # Lookups: each returns the labels (int64, possibly repeated) whose
    # payload matches; None means "not answerable from the index, scan".

    def lookup_exists(self, txn: lmdb.Transaction[bytes], field: str) -> np.ndarray:
        return self._labels_of_keys(txn, [_prefix(field) + _PRESENCE_TAG])

    def lookup_equal(self, txn: lmdb.Transaction[bytes], field: str, operands: List[Any]) -> Optional[np.ndarray]:
        kind = self.fields[field]
        keys = []
        for operand in operands:
            encoded = encode_value(kind, operand)
            if encoded is None:
                return None
            keys.append(_prefix(field) + _TAGS[kind] + encoded)
        return self._labels_of_keys(txn, keys)

    def lookup_range(self, txn: lmdb.Transaction[bytes], field: str, operator: str, operand: Any) -> Optional[np.ndarray]:
        kind = self.fields[field]
        if kind == "bool" or (kind == "keyword") != isinstance(operand, str):
            return None
        encoded = encode_value(kind, operand)
        if encoded is None:
            return None
        start = _prefix(field) + _TAGS[kind]
        bound = start + encoded
        cursor = txn.cursor(db=self.database)
        keys: List[bytes] = []
        if operator in ("$gt", "$gte") and cursor.set_range(bound):
            for key in cursor.iternext_nodup(keys=True, values=False):
                if not key.startswith(start):
                    break
                if operator == "$gte" or key != bound:
                    keys.append(key)
        elif operator in ("$lt", "$lte") and cursor.set_range(start):
            for key in cursor.iternext_nodup(keys=True, values=False):
                if not key.startswith(start) or key > bound or (operator == "$lt" and key == bound):
                    break
                keys.append(key)
        return self._labels_of_keys(txn, keys)

    def _labels_of_keys(self, txn: lmdb.Transaction[bytes], keys: List[bytes]) -> np.ndarray:
        # MDB_GET_MULTIPLE reads a page of fixed-size duplicates per call and
        # py-lmdb packs them, with their keys, into one buffer when the keys
        # have one length: no Python object per label.
        by_length: Dict[int, List[bytes]] = {}
        for key in keys:
            by_length.setdefault(len(key), []).append(key)
        cursor = txn.cursor(db=self.database)
        parts = []
        for length, group in by_length.items():
            packed = cursor.getmulti(group, dupdata=True, dupfixed_bytes=LABEL_BYTES + CHECK_BYTES, keyfixed=True)
            try:
                records = self._codec.check_records(packed, length + LABEL_BYTES + CHECK_BYTES)
            except DamagedValue as damage:
                field = bytes(damage.key).split(b"\x00", 1)[0].decode(errors="replace")
                raise CorruptRecordError(
                    f"collection {self._collection!r}: the payload index of field {field!r} is damaged (checksum "
                    f"mismatch); drop_payload_index({field!r}) then create_payload_index({field!r}, ...) rebuilds "
                    "it from the payloads, or restore the database from a backup (vecdb restore)",
                    collection=self._collection) from None
            parts.append(np.ascontiguousarray(records[:, length:]).view(">u8").ravel())
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
