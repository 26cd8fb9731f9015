"""The frame the index layer's own binary formats share: an 8-byte magic, a
little-endian uint32 version, the format's own header fields (its
parameters and sizes), then a checksum, so that a file of another kind, of
an unknown version, cut short or damaged is refused with
:class:`~vecdb.errors.CorruptIndexError` instead of being misread.

Two closings, both kept byte for byte from the formats that had them
before this module:

- sealed (:meth:`Frame.seal`, :meth:`Frame.unseal`): header, payload, then
  an 8-byte ``checksum64`` of both; the payload's size follows from the
  header fields. The PCA rotation and the PQ code snapshot.
- a checked header (:meth:`Frame.header`, :meth:`Frame.read_header`): the
  header ends in a CRC-32 of itself, and what follows is read by its own
  (checksummed) format. The index snapshot file, whose header precedes a
  graph or a code snapshot.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, BinaryIO, Callable, Sequence, Tuple

from vecdb import _core
from vecdb.errors import CorruptIndexError

_CHECKSUM = struct.Struct("<Q")


class Frame:
    """One format: what it is called in errors, its magic and version, and
    its header fields after them (a ``struct`` format, little-endian)."""

    def __init__(self, what: str, magic: bytes, version: int, fields: str) -> None:
        self.what = what
        self.magic = magic
        self.version = version
        self._sealed = struct.Struct("<8sI" + fields)
        self._checked = struct.Struct("<8sI" + fields + "I")  # the fields, then a CRC-32 of what precedes it

    @property
    def header_size(self) -> int:
        """Bytes of a sealed frame's header (a checked header has 4 more)."""
        return self._sealed.size

    def seal(self, fields: Tuple, payload: bytes) -> bytes:
        """The header, ``payload`` and the checksum of both."""
        body = self._sealed.pack(self.magic, self.version, *fields) + payload
        return body + _CHECKSUM.pack(_core.checksum64(body))

    def unseal(self, data: bytes, payload_size: Callable[[Tuple], int]) -> Tuple[Tuple, memoryview]:
        """The header fields and the payload of sealed ``data``, whose payload
        holds ``payload_size(fields)`` bytes."""
        if len(data) < self._sealed.size + _CHECKSUM.size:
            raise CorruptIndexError(f"{self.what} is truncated ({len(data)} bytes)")
        fields = self._fields(self._sealed.unpack_from(data))
        expected = self._sealed.size + payload_size(fields) + _CHECKSUM.size
        if len(data) != expected:
            raise CorruptIndexError(f"{self.what} has {len(data)} bytes, its header says {expected}: truncated "
                                    "or corrupt")
        body = data[:-_CHECKSUM.size]
        if _CHECKSUM.unpack_from(data, len(body))[0] != _core.checksum64(body):
            raise CorruptIndexError(f"{self.what} is corrupt (checksum mismatch)")
        return fields, memoryview(body)[self._sealed.size:]

    def header(self, fields: Tuple) -> bytes:
        """A header that ends in its own CRC-32."""
        unchecked = self._checked.pack(self.magic, self.version, *fields, 0)[:-4]
        return unchecked + struct.pack("<I", zlib.crc32(unchecked))

    def read_header(self, handle: BinaryIO) -> Tuple:
        """The fields of the checked header read from ``handle`` (left just
        after it, where the payload starts)."""
        data = handle.read(self._checked.size)
        if len(data) != self._checked.size:
            raise CorruptIndexError(f"{self.what} is truncated ({len(data)} bytes of header)")
        *stored, crc = self._checked.unpack(data)
        fields = self._fields(stored)
        if crc != zlib.crc32(data[:-4]):
            raise CorruptIndexError(f"{self.what} is corrupt (header checksum mismatch)")
        return fields

    def _fields(self, unpacked: Sequence[Any]) -> Tuple:
        magic, version, *fields = unpacked
        if magic != self.magic:
            raise CorruptIndexError(f"{self.what} has the wrong magic bytes ({bytes(magic)!r})")
        if version != self.version:
            raise CorruptIndexError(f"{self.what} has format version {version}; this vecdb reads version "
                                    f"{self.version}")
        return tuple(fields)
