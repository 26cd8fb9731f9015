"""Text indexes' stored terms: for each text-indexed field and point, the
distinct terms of its text and how often each occurs, in one LMDB database
per collection (``<key>:text``), under ``field \\0 label`` keys, each value
sealed like every stored value (msgpack of ``[terms, counts]``). Sparse
vectors live there too, under ``\\x01name \\0 label`` (a payload field
never starts with that byte), as msgpack of ``[indices, values]`` (uint32
and float32 little-endian bytes). So do the points' documents (their text as
given to ``upsert(documents=...)``), under ``\x02 \0 label``, as UTF-8.

They are the durable half of a text index: written in the upsert's or
delete's own transaction, so they always agree with the payloads, and read
back to build the in-memory inverted indexes (:mod:`vecdb.index.term_indexes`)
when a collection opens, or to replay what another process wrote."""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence, Tuple

import lmdb
import msgpack
import numpy as np

from vecdb.storage.codec import ValueCodec, in_chunks, open_all
from vecdb.storage.keys import LABEL_BYTES, label_key

# A text's distinct terms and how often each occurs in it.
Analyzed = Tuple[List[str], List[int]]
_CHUNK = 4096  # entries checked per native call while reading a field's


# A checked sparse vector: uint32 indices, float32 values.
Sparse = Tuple[np.ndarray, np.ndarray]


def sparse_entry_field(name: str) -> str:
    """The entry field sparse vector ``name`` is stored under."""
    return "\x01" + name


# The entry field documents are stored under (a payload field never starts with \x02).
DOCUMENT_FIELD = "\x02"


def _sparse_value(vector: Sparse) -> bytes:
    return msgpack.packb([vector[0].astype("<u4").tobytes(), vector[1].astype("<f4").tobytes()])


def _sparse_of(value: Any) -> Sparse:
    indices, values = msgpack.unpackb(value)
    return np.frombuffer(indices, dtype="<u4"), np.frombuffer(values, dtype="<f4")


def _text_of(value: Any) -> str:
    return bytes(value).decode("utf-8")


def _prefix(field: str) -> bytes:
    return field.encode("utf-8", "surrogatepass") + b"\x00"


class TextEntries:
    """The stored terms of one collection's text indexes, over one LMDB database."""

    def __init__(self, database: Any, codec: ValueCodec) -> None:
        self.database = database
        self._codec = codec

    def put(self, txn: lmdb.Transaction[bytes], field: str, labels: Sequence[int],
            analyzed: Sequence[Optional[Analyzed]]) -> None:
        """Store each point's terms for ``field`` (None: it has no text there)."""
        self._put(txn, field, labels, [None if terms is None else msgpack.packb(terms) for terms in analyzed])

    def put_sparse(self, txn: lmdb.Transaction[bytes], name: str, labels: Sequence[int],
                   vectors: Sequence[Optional[Sparse]]) -> None:
        """Store each point's sparse vector ``name`` (None: it has none)."""
        self._put(txn, sparse_entry_field(name), labels,
                  [None if vector is None else _sparse_value(vector) for vector in vectors])

    def put_documents(self, txn: lmdb.Transaction[bytes], labels: Sequence[int],
                      documents: Sequence[Optional[str]]) -> None:
        """Store each point's document (None: it has none)."""
        self._put(txn, DOCUMENT_FIELD, labels,
                  [None if text is None else text.encode("utf-8") for text in documents])

    def read_documents(self, txn: lmdb.Transaction[bytes], labels: Sequence[int]) -> List[Optional[str]]:
        """The documents of these points (None where a point has none)."""
        return [None if value is None else _text_of(value) for value in self._read_values(txn, DOCUMENT_FIELD, labels)]

    def read_document_field(self, txn: lmdb.Transaction[bytes]) -> Iterator[Tuple[List[int], List[str]]]:
        """Every point's document, in label order, a chunk at a time."""
        for labels, values in self._read_raw(txn, DOCUMENT_FIELD):
            yield labels, [_text_of(value) for value in values]

    def _put(self, txn: lmdb.Transaction[bytes], field: str, labels: Sequence[int],
             values: Sequence[Optional[bytes]]) -> None:
        prefix = _prefix(field)
        for label, value in zip(labels, values):
            key = prefix + label_key(label)
            if value is None:
                txn.delete(key, db=self.database)
            else:
                txn.put(key, self._codec.seal(key, value), db=self.database)

    def read_sparse_field(self, txn: lmdb.Transaction[bytes], name: str) -> Iterator[Tuple[List[int], List[Sparse]]]:
        """Every point's sparse vector ``name``, in label order, a chunk at a time."""
        for labels, values in self._read_raw(txn, sparse_entry_field(name)):
            yield labels, [_sparse_of(value) for value in values]

    def read_sparse(self, txn: lmdb.Transaction[bytes], name: str, labels: Sequence[int]) -> List[Optional[Sparse]]:
        return [None if value is None else _sparse_of(value)
                for value in self._read_values(txn, sparse_entry_field(name), labels)]

    def delete(self, txn: lmdb.Transaction[bytes], fields: Sequence[str], labels: Sequence[int]) -> None:
        for field in fields:
            prefix = _prefix(field)
            for label in labels:
                txn.delete(prefix + label_key(label), db=self.database)

    def drop_field(self, txn: lmdb.Transaction[bytes], field: str) -> None:
        prefix = _prefix(field)
        cursor = txn.cursor(db=self.database)
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break

    def read_field(self, txn: lmdb.Transaction[bytes], field: str) -> Iterator[Tuple[List[int], List[Analyzed]]]:
        """Every point's terms for ``field``, in label order, a chunk at a
        time (checked; DamagedValue for one that is not intact)."""
        for labels, values in self._read_raw(txn, field):
            yield labels, [msgpack.unpackb(value) for value in values]

    def read(self, txn: lmdb.Transaction[bytes], field: str, labels: Sequence[int]) -> List[Optional[Analyzed]]:
        """The terms of these points for ``field`` (None where a point has none)."""
        return [None if value is None else msgpack.unpackb(value) for value in self._read_values(txn, field, labels)]

    def _read_raw(self, txn: lmdb.Transaction[bytes], field: str) -> Iterator[Tuple[List[int], List[memoryview]]]:
        prefix = _prefix(field)
        cursor = txn.cursor(db=self.database)
        if not cursor.set_range(prefix):
            return
        entries = _until_prefix_ends(cursor.iternext(keys=True, values=True), prefix)
        for chunk in in_chunks(entries, _CHUNK):
            opened = open_all(self._codec, chunk)
            yield [int.from_bytes(key[-LABEL_BYTES:], "big") for key, _ in opened], [value for _, value in opened]

    def _read_values(self, txn: lmdb.Transaction[bytes], field: str, labels: Sequence[int]) -> List[Optional[memoryview]]:
        prefix = _prefix(field)
        return [self._codec.open(key, txn.get(key, db=self.database))
                for key in (prefix + label_key(label) for label in labels)]


def _until_prefix_ends(entries: Iterator[Tuple[bytes, bytes]], prefix: bytes) -> Iterator[Tuple[bytes, bytes]]:
    for key, value in entries:
        if not key.startswith(prefix):
            return
        yield key, value
