"""How vecdb seals the values it stores in LMDB (storage format 2).

LMDB checksums nothing, so every value vecdb writes carries four more bytes:
a CRC-32C (:func:`vecdb._core.crc32c`, the SSE4.2 instruction where there
is one) over the named database's name, the key and the value. Reading
checks it before anything is decoded, so damage surfaces as
:class:`~vecdb.errors.CorruptRecordError` instead of a wrong vector, a
wrong payload or a decoder's exception. Covering the key and the database
too means a damaged key (a vector filed under another label) and a page of
another database reached through a damaged pointer are caught as well.

One :class:`ValueCodec` per named database; the main database (collection
settings) uses :data:`MAIN`. Only the format key itself is stored bare: it
says how everything else is stored.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from vecdb import _core

CHECK_BYTES = 4
T = TypeVar("T")


class DamagedValue(Exception):
    """A stored value failed its check, or is missing where it must be
    (internal: the store turns it into a CorruptRecordError that names the
    collection and point)."""

    def __init__(self, database: bytes, key: bytes, state: str = "damaged (checksum mismatch)") -> None:
        super().__init__(database, key)
        self.database = database
        self.key = key
        self.state = state


class ValueCodec:
    """Seals and checks the values of one named database."""

    __slots__ = ("database", "seed")

    def __init__(self, database: bytes) -> None:
        self.database = database
        self.seed = _core.crc32c(b"vecdb\x00" + database)  # the check's starting state: the database's name

    def seal(self, key: bytes, value: Any) -> bytes:
        """The bytes to store for ``value`` (bytes or any contiguous buffer)."""
        return _core.seal_value(self.seed, key, value)

    def seal_pairs(self, pairs: List[Tuple[bytes, bytes]]) -> List[Tuple[bytes, bytes]]:
        """``(key, value)`` pairs (a list, bytes) as ``(key, bytes to store)``."""
        return _core.seal_pairs(self.seed, pairs)

    def seal_rows(self, keys: bytes, rows: np.ndarray) -> np.ndarray:
        """Fixed-size rows (``(n, ...)``, C-contiguous), each sealed with its
        key (``keys``: n keys of one size, concatenated): an ``(n, row bytes
        + 4)`` uint8 array whose rows are the values to store."""
        return _core.seal_rows(self.seed, keys, rows, rows[0].nbytes if len(rows) else 1)

    def open(self, key: bytes, stored: Optional[bytes]) -> Optional[memoryview]:
        """The value ``key`` holds, checked, without its check bytes (None
        stays None: nothing stored)."""
        if stored is None:
            return None
        if not _core.value_intact(self.seed, key, stored):
            raise DamagedValue(self.database, key)
        return memoryview(stored)[:-CHECK_BYTES]

    def check_pairs(self, pairs: Sequence[Tuple[bytes, bytes]]) -> None:
        """Check ``(key, stored value)`` pairs as py-lmdb returns them."""
        damaged = self.first_damaged(pairs)
        if damaged >= 0:
            raise DamagedValue(self.database, pairs[damaged][0])

    def first_damaged(self, pairs: Sequence[Tuple[bytes, bytes]]) -> int:
        """The index of the first ``(key, stored value)`` pair that fails its
        check, or -1."""
        return _core.first_damaged_pair(self.seed, pairs)

    def opened(self, pairs: Sequence[Tuple[bytes, bytes]]) -> Dict[bytes, bytes]:
        """``{key: value}`` of ``(key, stored value)`` pairs (a list), once
        every value passed its check, without the check bytes."""
        values, damaged = _core.opened_values(self.seed, pairs)
        if damaged >= 0:
            raise DamagedValue(self.database, pairs[damaged][0])
        return values

    def keys_of(self, pairs: Sequence[Tuple[bytes, bytes]]) -> bytes:
        """The keys of ``(key, stored value)`` pairs (a list), concatenated,
        once every value passed its check."""
        keys, damaged = _core.checked_keys(self.seed, pairs)
        if damaged >= 0:
            raise DamagedValue(self.database, pairs[damaged][0])
        return keys

    def opened_rows(self, pairs: Sequence[Tuple[bytes, bytes]], row_bytes: int) -> Tuple[np.ndarray, bytes]:
        """The values of ``(key, stored value)`` pairs (a list), each
        ``row_bytes`` long with its check, checked: an ``(n, row_bytes - 4)``
        uint8 array, and the pairs' keys concatenated."""
        rows, keys, damaged = _core.opened_rows(self.seed, pairs, row_bytes)
        if damaged >= 0:
            raise DamagedValue(self.database, pairs[damaged][0])
        return rows, keys

    def check_records(self, packed: Union[bytes, memoryview], record_bytes: int) -> np.ndarray:
        """Packed records that each hold their key, value and check (what
        py-lmdb's getmulti packs for fixed-size keys and values), checked:
        an ``(n, record_bytes - 4)`` uint8 view."""
        damaged = _core.first_damaged_row(self.seed, None, packed, record_bytes)
        if damaged >= 0:
            raise DamagedValue(self.database, bytes(packed[damaged * record_bytes:(damaged + 1) * record_bytes]))
        return np.frombuffer(packed, dtype=np.uint8).reshape(-1, record_bytes)[:, :-CHECK_BYTES]


MAIN = ValueCodec(b"")


def open_all(codec: ValueCodec, pairs: Iterable[Tuple[bytes, bytes]]) -> List[Tuple[bytes, memoryview]]:
    """``(key, value)`` pairs checked and without their check bytes."""
    pairs = list(pairs)
    codec.check_pairs(pairs)
    return [(key, memoryview(value)[:-CHECK_BYTES]) for key, value in pairs]


def in_chunks(items: Iterable[T], size: int) -> Iterator[List[T]]:
    """``items`` in lists of ``size`` (the last may be shorter): a cursor's
    records checked a batch per native call."""
    chunk: List[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
