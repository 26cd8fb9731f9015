"""What crosses the HTTP boundary, shared by the server and the client so
both read and write the same shapes.

Bodies are JSON, or MessagePack when the request's ``Content-Type`` (and,
for responses, ``Accept``) is ``application/msgpack``. In MessagePack a
vector may also travel as ``bin``: little-endian float32, ``dim`` values
(a batch: ``n * dim`` values, row after row; named vectors, ``{name:
vectors}``, likewise per name, or per vector in a list with nulls for the
points without it). That is what the client sends and asks for: no float
formatting, no precision lost.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

import msgpack
import numpy as np

from vecdb.errors import DimensionMismatchError, InvalidArgumentError
from vecdb.records import Hit, Record
from vecdb.sparse import SparseVector

JSON = "application/json"
MSGPACK = "application/msgpack"
_FLOAT32_LE = np.dtype("<f4")


def vectors_from_wire(value: Any, dim: Optional[int], batch: bool) -> Any:
    """A vector (or batch) as sent: ``bin`` becomes a float32 array, a list
    the array numpy makes of it (once: the routes check its rank, the
    collection its values); what numpy cannot make an array of goes to the
    collection's own validation unchanged, which names the problem. ``dim``
    None: for a named vector the collection lacks, which it refuses before
    reading any vector; ``bin`` then goes on unread too."""
    if isinstance(value, list):
        try:
            return np.asarray(value)
        except (ValueError, TypeError):  # ragged
            return value
    if isinstance(value, str):  # not a text query: a server never embeds (clients do), a string is not numbers
        return np.asarray(value)
    if dim is None or not isinstance(value, (bytes, bytearray, memoryview)):
        return value
    size = len(value)
    if size % (4 * dim):
        raise DimensionMismatchError(f"binary vector data of {size} bytes is not a whole number of "
                                     f"{dim}-dimensional float32 vectors ({4 * dim} bytes each)")
    array = np.frombuffer(value, dtype=_FLOAT32_LE).astype(np.float32, copy=False)
    if batch:
        return array.reshape(-1, dim)
    if array.shape[0] != dim:
        raise DimensionMismatchError(f"vector has dimension {array.shape[0]}, expected {dim}")
    return array


def vector_to_wire(vector: np.ndarray, binary: bool) -> Any:
    return np.ascontiguousarray(vector, dtype=_FLOAT32_LE).tobytes() if binary else vector.tolist()


def vector_from_wire(value: Any) -> Union[np.ndarray, Dict[str, np.ndarray], None]:
    """A hit's or record's vector as sent: one, ``{name: vector}`` of a
    point with named vectors, or None (not asked for)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {name: _array_from_wire(vector) for name, vector in value.items()}
    return _array_from_wire(value)


def _array_from_wire(value: Any) -> np.ndarray:
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(value, dtype=_FLOAT32_LE).astype(np.float32)
    return np.asarray(value, dtype=np.float32)


def hit_to_wire(hit: Hit, binary: bool) -> Dict[str, Any]:
    return _with_point({"id": hit.id, "score": hit.score}, hit, binary)


def hit_from_wire(body: Dict[str, Any]) -> Hit:
    return Hit(id=body["id"], score=body["score"], payload=body.get("payload"),
               vector=vector_from_wire(body.get("vector")), document=body.get("document"))


def record_to_wire(record: Record, binary: bool) -> Dict[str, Any]:
    body = _with_point({"id": record.id}, record, binary)
    if record.sparse is not None:
        body["sparse"] = {name: vector.to_dict() for name, vector in record.sparse.items()}
    return body


def _with_point(body: Dict[str, Any], point: Union[Hit, Record], binary: bool) -> Dict[str, Any]:
    """``body`` with the point's payload and vector, when it has them."""
    if point.payload is not None:
        body["payload"] = point.payload
    if isinstance(point.vector, dict):  # named vectors
        body["vector"] = {name: vector_to_wire(vector, binary) for name, vector in point.vector.items()}
    elif point.vector is not None:
        body["vector"] = vector_to_wire(point.vector, binary)
    if point.document is not None:
        body["document"] = point.document
    return body


def record_from_wire(body: Dict[str, Any]) -> Record:
    sparse = body.get("sparse")
    return Record(id=body["id"], payload=body.get("payload"), vector=vector_from_wire(body.get("vector")),
                  sparse=None if sparse is None else {name: SparseVector(vector["indices"], vector["values"])
                                                      for name, vector in sparse.items()},
                  document=body.get("document"))


def error_to_wire(kind: str, message: str, status: int) -> Dict[str, Any]:
    """The body of every error response: ``{"error": {"type", "message", "status"}}``;
    ``type`` names a :mod:`vecdb.errors` class."""
    return {"error": {"type": kind, "message": message, "status": status}}


# Values MessagePack cannot carry (an arbitrary object in a payload or
# filter) travel as this extension, holding the type's name, so the server's
# validation refuses them with the same error an embedded call raises.
_OPAQUE = 0x7F


class Opaque:
    """A client-side value that has no JSON-like form."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


def _decode_extension(code: int, data: bytes) -> Any:
    if code == _OPAQUE:
        return Opaque(data.decode("utf-8", "replace"))
    raise InvalidArgumentError(f"unknown MessagePack extension type {code}")


def decode_msgpack(body: bytes) -> Any:
    """MessagePack; unpackb bounds every string, bin, array and map by the
    body's own length (which the server caps first)."""
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=_decode_extension)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        # TypeError: a map or array used as a map key (unhashable)
        raise InvalidArgumentError(f"request body is not valid MessagePack: {exc or type(exc).__name__}") from None


def encode_msgpack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=_plain)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (in results: stats, explanations), and
    anything else as an :class:`Opaque` marker."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, int):  # beyond MessagePack's 64 bits
        raise OverflowError(f"integer {value} does not fit in 64 bits")
    return msgpack.ExtType(_OPAQUE, type(value).__name__.encode())
