"""Byte encodings for LMDB keys.

LMDB sorts keys as byte strings, so every encoding here is order-preserving:
internal labels are big-endian (ingest appends at the end of the B-tree),
and payload values encode so that byte order equals value order.
"""

from __future__ import annotations

import struct
from typing import List, Union

import numpy as np

from vecdb.errors import InvalidArgumentError, InvalidDTypeError

UserId = Union[str, int]

LABEL_BYTES = 8
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SIGN_BIT = 1 << 63
_STR_TAG, _INT_TAG = b"s", b"i"
# LMDB's compiled-in key limit is 511 bytes; keep id keys well inside it.
MAX_ID_BYTES = 400


def label_key(label: int) -> bytes:
    """The key of an internal label: 8 bytes big-endian."""
    return label.to_bytes(LABEL_BYTES, "big")


def label_keys(labels: np.ndarray) -> List[bytes]:
    """The keys of many labels (>= 0) at once: :func:`label_key` of each,
    without a Python call per label (a re-rank reads hundreds)."""
    return np.ascontiguousarray(labels, dtype=">u8").reshape(-1).view("V8").tolist()


def labels_from_bytes(data: bytes) -> np.ndarray:
    """Concatenated big-endian labels (as stored) to an int64 array."""
    return np.frombuffer(data, dtype=">u8").astype(np.int64)


def labels_to_bytes(labels: np.ndarray) -> bytes:
    """An array of labels to concatenated big-endian bytes."""
    return np.asarray(labels, dtype=">u8").tobytes()


def check_user_id(value: object) -> UserId:
    """A caller's id as a plain ``str`` or ``int`` (numpy integers accepted);
    anything else is refused with the reason."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidDTypeError(f"ids are strings or integers, got the bool {value!r}")
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidArgumentError(f"integer id {value} does not fit in 64 bits")
        return value
    if isinstance(value, str):
        if not value:
            raise InvalidArgumentError("ids must not be empty strings")
        if not is_unicode_text(value):
            raise InvalidArgumentError(f"id {value!r} is not valid Unicode text (it holds a lone surrogate, which "
                                       "UTF-8, JSON and MessagePack cannot carry)")
        if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
            raise InvalidArgumentError(f"string id {value[:40]!r}... is longer than {MAX_ID_BYTES} bytes")
        return value
    raise InvalidDTypeError(f"ids are strings or integers, got {type(value).__name__} {value!r}")


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (no lone surrogates: Python strings
    may hold them, e.g. from os.fsdecode, but no wire format carries them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def user_id_key(user_id: UserId) -> bytes:
    """The key of a checked caller id; strings and integers never collide."""
    if isinstance(user_id, int):
        return _INT_TAG + ((user_id + _SIGN_BIT) & (2**64 - 1)).to_bytes(8, "big")
    return _STR_TAG + user_id.encode("utf-8", "surrogatepass")


def user_id_from_key(key: bytes) -> UserId:
    """Inverse of :func:`user_id_key`."""
    if key[:1] == _INT_TAG:
        return int.from_bytes(key[1:], "big") - _SIGN_BIT
    return bytes(key[1:]).decode("utf-8", "surrogatepass")


def int_value_key(value: int) -> bytes:
    """Order-preserving bytes of a 64-bit signed integer."""
    return (value + _SIGN_BIT).to_bytes(8, "big")


def float_value_key(value: float) -> bytes:
    """Order-preserving bytes of a finite float64: positive numbers get the
    sign bit set, negative numbers have every bit flipped."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(value) + 0.0))  # -0.0 -> 0.0
    bits = bits ^ (2**64 - 1) if bits & _SIGN_BIT else bits | _SIGN_BIT
    return bits.to_bytes(8, "big")
