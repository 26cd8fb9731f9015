"""A collection's vectors stored densely: rows in blocks (storage format 3).

One LMDB record per point wasted a third of the vectors' pages: a leaf page
(4096 bytes) holds two 384-d rows (1540 bytes each) and leaves the rest
empty. So rows of ``rows_per_block(dim)`` consecutive labels share one
record, a block:

- key: the block number, ``label >> shift``, 8 bytes big-endian (labels
  grow, so new blocks are appended at the end of the B-tree);
- value: a header, the bitmap of the block's rows that are present (bit
  ``label & (rows - 1)``, little-endian bit order, at least 4 bytes so the
  rows stay 4-byte aligned) sealed with the key ``b"#" + block key``, then
  the rows' slots, up to the last present row (a block being filled grows
  as it fills). Each slot holds the float32 row and its own check, sealed
  with the row's label key exactly as a format-2 record was: damage is
  reported naming the point, and the change log's digests are unchanged.

A slot whose bit is clear holds zeros sealed with the inverse of their
check, so it never passes: a read trusts a row on its own check and reads
the header only for a slot that fails it, to tell an absent row from a
damaged one (scans, writes and ``vecdb check`` always check headers). A
block with no row left is deleted.

Blocks are about 64-128 KiB (at most 1024 rows, at least one): values that
big go to LMDB overflow pages, which waste less than a page per block.
:func:`rows_per_block` is a pure function of the dimension, part of the
storage format: changing it would need a new format version.

Reads take values as buffers into the map where they can
(:meth:`vecdb.storage.environment.Environment.zero_copy`): a re-rank reads
a few rows of hundreds of blocks, and copying whole blocks would cost more
than the reads.
"""

from __future__ import annotations

import operator
from typing import Any, Iterable, Iterator, List, Optional, Tuple

import lmdb
import numpy as np

from vecdb import _core
from vecdb.native.arrays import unique_first
from vecdb.storage.codec import CHECK_BYTES, DamagedValue, ValueCodec
from vecdb.storage.keys import LABEL_BYTES, label_key, label_keys, labels_from_bytes, labels_to_bytes

MAX_BLOCK_BYTES = 128 << 10
MAX_BLOCK_ROWS = 1024
HEADER_MARK = b"#"  # a header's seal key: distinct from every (8-byte) label key
_HEADER_KEYS = np.dtype([("mark", "S1"), ("block", ">u8")])

Pairs = List[Tuple[bytes, bytes]]


def rows_per_block(dim: int) -> int:
    """How many rows of ``dim`` float32 a block holds: the largest power of
    two, at most :data:`MAX_BLOCK_ROWS`, whose rows fit :data:`MAX_BLOCK_BYTES`
    (one when a single row is bigger). Never changes for a stored collection."""
    row_bytes = 4 * dim + CHECK_BYTES
    rows = 1
    while rows * 2 <= MAX_BLOCK_ROWS and rows * 2 * row_bytes <= MAX_BLOCK_BYTES:
        rows *= 2
    return rows


def header_key(block_key: bytes) -> bytes:
    return HEADER_MARK + bytes(block_key)


def block_of_header_key(key: bytes) -> Optional[int]:
    """The block number a header's seal key names (None: not a header's)."""
    if len(key) == 1 + LABEL_BYTES and key[:1] == HEADER_MARK:
        return int.from_bytes(key[1:], "big")
    return None


class VectorBlocks:
    """The block layout of one collection's vectors database: reads and
    writes rows inside a caller's transaction. Damage raises DamagedValue
    (the store names the point)."""

    def __init__(self, codec: ValueCodec, dim: int) -> None:
        self._codec = codec
        self._seed = codec.seed
        self.dim = dim
        self.rows = rows_per_block(dim)
        self.shift = self.rows.bit_length() - 1
        self.row_bytes = 4 * dim + CHECK_BYTES
        self._bitmap_bytes = max(4, self.rows // 8)
        self._header_bytes = self._bitmap_bytes + CHECK_BYTES
        self._header = slice(0, self._header_bytes)

    def labels_in(self, block: int) -> Tuple[int, int]:
        """The first and last label block ``block`` can hold."""
        return block << self.shift, ((block + 1) << self.shift) - 1

    # ---- reads ----

    def rows_of(self, txn: lmdb.Transaction[Any], database: Any, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The stored rows of ``labels`` (int64), checked: an ``(n, dim)``
        float32 matrix (zeros where a label has no row) and which labels
        have one. Each block is read once, and its rows copied natively
        (a re-rank reads a hundred rows per search).

        A slot is read without its header: a row that passes its own check
        is stored (an absent row's slot never passes). Only for a slot that
        fails, or lies past its block's end, is the header read, checked,
        to tell an absent row from a damaged one."""
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        keys, position = _core.block_keys(labels, self.shift)
        # One lookup a block: cheaper than getmulti's (key, value) pairs.
        values: List[Any] = list(map(txn.cursor(db=database).get, keys))
        matrix = np.empty((len(labels), self.dim), dtype=np.float32)
        passed = _core.gather_sealed_rows(self._seed, values, labels, position, self.rows, self._header_bytes, matrix)
        if passed.all():
            return matrix, passed
        failed = ~passed
        slots = labels & (self.rows - 1)
        present = passed.copy()
        present[failed] = self._bits(labels_from_bytes(b"".join(keys)), values, position[failed], slots[failed])
        if present[failed].any():  # stored, by the header, yet its slot failed: damaged
            first = int(np.flatnonzero(failed & present)[0])
            value = values[position[first]]
            within = self._header_bytes + int(slots[first] + 1) * self.row_bytes <= len(value)
            raise DamagedValue(self._codec.database, label_key(int(labels[first])),
                               "damaged (checksum mismatch)" if within else "cut off (its block ends before it)")
        matrix[failed] = 0
        return matrix, present

    def _bits(self, blocks: np.ndarray, values: List[Any], position: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Whether the checked headers of ``blocks[position]`` say slots
        ``slots`` hold rows (False for a missing block)."""
        found = sorted({block for block in position.tolist() if values[block] is not None})
        bitmaps = np.zeros((len(values), self._bitmap_bytes), dtype=np.uint8)
        if found:
            bitmaps[found] = self._bitmaps(blocks[found], [values[block] for block in found])
        return (bitmaps[position, slots >> 3] >> (slots & 7)) & 1 == 1

    def _bitmaps(self, blocks: np.ndarray, values: List[Any]) -> np.ndarray:
        """The present-row bitmaps of found blocks, ``(len(blocks), bitmap
        bytes)`` uint8, once every header passed its check."""
        headers = b"".join(map(operator.itemgetter(self._header), values))
        if len(headers) != len(values) * self._header_bytes:
            short = next(i for i, value in enumerate(values) if len(value) < self._header_bytes)
            raise self._damaged_header(blocks[short], "damaged (shorter than its header)")
        keys = np.empty(len(blocks), dtype=_HEADER_KEYS)
        keys["mark"], keys["block"] = HEADER_MARK, blocks
        damaged = _core.first_damaged_row(self._seed, keys.tobytes(), headers, self._header_bytes)
        if damaged >= 0:
            raise self._damaged_header(blocks[damaged])
        return np.frombuffer(headers, dtype=np.uint8).reshape(len(values), self._header_bytes)[:, :self._bitmap_bytes]

    def _checked_floats(self, labels: np.ndarray, rows: Any) -> np.ndarray:
        """Sealed rows (concatenated) of ``labels``, checked, as an
        ``(n, dim)`` float32 view."""
        damaged = _core.first_damaged_row(self._seed, labels_to_bytes(labels), rows, self.row_bytes)
        if damaged >= 0:
            raise DamagedValue(self._codec.database, label_key(int(labels[damaged])))
        sealed = np.frombuffer(rows, dtype=np.uint8).reshape(len(labels), self.row_bytes)
        return sealed[:, :4 * self.dim].view("<f4")

    def open_block(self, key: bytes, value: Any) -> Tuple[np.ndarray, np.ndarray]:
        """A stored block, its header checked and its length with it: the
        labels of its present rows, and those rows, sealed (``(n, row
        bytes)`` uint8; a view of ``value`` when every slot is present)."""
        block = int.from_bytes(key, "big")
        bits = np.unpackbits(self._bitmaps(np.array([block], dtype=np.int64), [value])[0], bitorder="little")
        present = np.flatnonzero(bits)
        slots, loose = divmod(len(value) - self._header_bytes, self.row_bytes)
        # A block's value ends with its last present row.
        if loose or not len(present) or present[-1] + 1 != slots or slots > self.rows:
            raise self._damaged_header(block, "damaged (its length disagrees with its header)")
        rows = np.frombuffer(value, dtype=np.uint8, offset=self._header_bytes).reshape(slots, self.row_bytes)
        if len(present) < slots:
            rows = rows[present]
        return (block << self.shift) + present, rows

    def first_damaged(self, labels: np.ndarray, rows: np.ndarray) -> int:
        """The index of the first of these sealed rows (of ``labels``) that
        fails its check, or -1."""
        return _core.first_damaged_row(self._seed, labels_to_bytes(labels), rows, self.row_bytes)

    def chunks(self, txn: lmdb.Transaction[Any], database: Any, size: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Every stored row in label order, checked, ``size`` at a time, as
        ``(labels, (n, dim) float32 matrix)``: each block read once, each
        row copied once."""
        labels = np.empty(size, dtype=np.int64)
        matrix = np.empty((size, self.dim), dtype=np.float32)
        filled = 0
        for key, value in txn.cursor(db=database):
            block_labels, rows = self.open_block(key, value)
            floats = self._checked_floats(block_labels, rows)
            taken = 0
            while taken < len(block_labels):
                count = min(size - filled, len(block_labels) - taken)
                labels[filled:filled + count] = block_labels[taken:taken + count]
                matrix[filled:filled + count] = floats[taken:taken + count]
                filled += count
                taken += count
                if filled == size:
                    yield labels, matrix
                    labels = np.empty(size, dtype=np.int64)
                    matrix = np.empty((size, self.dim), dtype=np.float32)
                    filled = 0
        if filled:
            yield labels[:filled], matrix[:filled]

    # ---- writes ----

    def put_rows(self, txn: lmdb.Transaction[bytes], database: Any, labels: np.ndarray, sealed: np.ndarray) -> Pairs:
        """Store sealed rows (``(n, row bytes)`` uint8) of distinct labels:
        each block touched is read once and written once. Returns the new
        blocks, past every stored one, for the caller to append."""
        order = np.argsort(labels, kind="stable")
        return self._rewrite(txn, database, labels[order], sealed[order])

    def delete_rows(self, txn: lmdb.Transaction[bytes], database: Any, labels: np.ndarray) -> None:
        """Remove the rows of ``labels`` (those stored); a block left empty
        is deleted."""
        self._rewrite(txn, database, np.sort(labels), None)

    def _rewrite(self, txn: lmdb.Transaction[bytes], database: Any, labels: np.ndarray,
                 sealed: Optional[np.ndarray]) -> Pairs:
        blocks, starts = unique_first(labels >> self.shift)
        ends = np.append(starts[1:], len(labels))
        keys = label_keys(blocks)
        stored = dict(txn.cursor(db=database).getmulti(keys))
        appended = []
        for key, start, end in zip(keys, starts.tolist(), ends.tolist()):
            old = stored.get(key)
            value = self._new_value(key, old, labels[start:end], None if sealed is None else sealed[start:end])
            if value is None:
                if old is not None:
                    txn.delete(key, db=database)
            elif old is not None:
                txn.put(key, value, db=database)
            else:
                appended.append((key, value))
        return appended

    def _new_value(self, key: bytes, old: Optional[bytes], labels: np.ndarray,
                   sealed: Optional[np.ndarray]) -> Optional[bytes]:
        """Block ``key`` (``old``: as stored, or None) with the rows of
        ``labels`` set to ``sealed``, or removed when that is None; None if
        no row is left."""
        present = np.zeros(self.rows, dtype=bool)
        slots = np.zeros((self.rows, self.row_bytes), dtype=np.uint8)
        if old is not None:
            old_labels, old_rows = self.open_block(key, old)
            present[old_labels & (self.rows - 1)] = True
            slots[old_labels & (self.rows - 1)] = old_rows
        touched = labels & (self.rows - 1)
        present[touched] = sealed is not None
        if sealed is not None:
            slots[touched] = sealed
        if not present.any():
            return None
        used = int(np.flatnonzero(present)[-1]) + 1
        # An absent row's slot holds zeros sealed with the inverse of their
        # check: it never passes, so a read can trust a slot that does.
        absent = np.flatnonzero(~present[:used])
        if len(absent):
            tombstones = self._codec.seal_rows(labels_to_bytes((int.from_bytes(key, "big") << self.shift) + absent),
                                               np.zeros((len(absent), self.dim), dtype="<f4"))
            tombstones[:, -CHECK_BYTES:] ^= 0xFF
            slots[absent] = tombstones
        bitmap = np.zeros(self._bitmap_bytes, dtype=np.uint8)
        packed = np.packbits(present, bitorder="little")
        bitmap[:len(packed)] = packed
        return self._codec.seal(header_key(key), bitmap) + slots[:used].tobytes()

    def blocks_from_rows(self, chunks: Iterable[Tuple[np.ndarray, np.ndarray]]) -> Iterator[Pairs]:
        """Blocks (``(key, value)`` pairs, a list per chunk) of sealed rows
        given in increasing label order as ``(labels, (n, row bytes) uint8)``
        chunks: what an upgrade writes."""
        pending_labels = np.zeros(0, dtype=np.int64)
        pending_rows = np.zeros((0, self.row_bytes), dtype=np.uint8)
        for labels, rows in chunks:
            pending_labels = np.concatenate([pending_labels, labels])
            pending_rows = np.concatenate([pending_rows, rows])
            # Rows of the last block may continue in the next chunk.
            whole = int(np.searchsorted(pending_labels, (int(pending_labels[-1]) >> self.shift) << self.shift)) \
                if len(pending_labels) else 0
            yield self._blocks(pending_labels[:whole], pending_rows[:whole])
            pending_labels, pending_rows = pending_labels[whole:], pending_rows[whole:]
        yield self._blocks(pending_labels, pending_rows)

    def _blocks(self, labels: np.ndarray, rows: np.ndarray) -> Pairs:
        blocks, starts = unique_first(labels >> self.shift)
        ends = np.append(starts[1:], len(labels))
        return [(key, value) for key, start, end in zip(label_keys(blocks), starts.tolist(), ends.tolist())
                if (value := self._new_value(key, None, labels[start:end], rows[start:end])) is not None]

    def _damaged_header(self, block: int, state: str = "damaged (checksum mismatch)") -> DamagedValue:
        return DamagedValue(self._codec.database, header_key(label_key(int(block))), state)
