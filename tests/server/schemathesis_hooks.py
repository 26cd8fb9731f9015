"""Schemathesis hooks for tests/server/test_server_schema.py: MessagePack both
ways (the API takes and answers application/msgpack beside JSON) and raw
archives for uploads."""

from __future__ import annotations

from typing import Any

import msgpack
import schemathesis


def _packable(value: Any) -> Any:
    """MessagePack carries integers of at most 64 bits: a larger one goes
    as a float, as any msgpack client would have to send it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -2**63 <= value < 2**64:
        return float(value)
    if isinstance(value, list):
        return [_packable(item) for item in value]
    if isinstance(value, dict):
        return {key: _packable(item) for key, item in value.items()}
    return value


@schemathesis.serializer("application/msgpack")
def to_msgpack(context: Any, value: Any) -> bytes:
    return msgpack.packb(_packable(value), use_bin_type=True)


@schemathesis.serializer("application/x-tar")
def to_tar(context: Any, value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@schemathesis.deserializer("application/msgpack")
def from_msgpack(context: Any, response: Any) -> Any:
    return msgpack.unpackb(response.content, raw=False, strict_map_key=False)
