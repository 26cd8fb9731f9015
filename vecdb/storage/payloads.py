"""Validating payloads and encoding them as msgpack."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import msgpack
import numpy as np

from vecdb.errors import InvalidPayloadError
from vecdb.storage.keys import is_unicode_text

_MAX_DEPTH = 32


def encode_payloads(payloads: Any, count: int) -> Tuple[List[Dict[str, Any]], List[Optional[bytes]]]:
    """Check ``payloads`` (None, or one dict-or-None per point) and return the
    normalized dicts and their msgpack encodings (None for an empty payload)."""
    if payloads is None:
        return [{} for _ in range(count)], [None] * count
    if isinstance(payloads, dict) or not isinstance(payloads, Sequence):
        raise InvalidPayloadError(f"payloads must be a list with one dict (or None) per id, got {type(payloads).__name__}")
    if len(payloads) != count:
        raise InvalidPayloadError(f"got {len(payloads)} payloads for {count} ids")
    dicts: List[Dict[str, Any]] = []
    blobs: List[Optional[bytes]] = []
    for row, payload in enumerate(payloads):
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise InvalidPayloadError(f"payload {row} must be a dict or None, got {type(payload).__name__}")
        if not _is_flat(payload):
            payload = _normalize(payload, f"payload {row}", 0)
        dicts.append(payload)
        try:
            blobs.append(msgpack.packb(payload, use_bin_type=True) if payload else None)
        except UnicodeEncodeError:
            raise InvalidPayloadError(f"{_invalid_text(payload, f'payload {row}')} is not valid Unicode text (it "
                                      "holds a lone surrogate, which UTF-8, JSON and MessagePack cannot carry)") from None
    return dicts, blobs


def _invalid_text(value: Any, where: str) -> str:
    """Where in ``value`` the first string that is not valid Unicode is."""
    if isinstance(value, str) and not is_unicode_text(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and not is_unicode_text(key):
            return f"{where}: the key {key!r}"
        found = _invalid_text(item, f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]")
        if found:
            return found
    return ""


_FLAT_SCALARS = (str, bool, float, int, type(None))


def _is_flat(payload: Dict[str, Any]) -> bool:
    """The common payload: string keys, plain scalar values (no NaN), no
    nesting. Checked in one pass; anything else takes the full walk."""
    for key, value in payload.items():
        if type(key) is not str or type(value) not in _FLAT_SCALARS or value != value:
            return False
        if type(value) is int and not -(2**63) <= value < 2**64:
            return False
    return True


def _normalize(value: Any, where: str, depth: int) -> Any:
    """JSON-like values only: dicts with string keys, lists, str, int, float,
    bool, None (numpy scalars become Python ones)."""
    if depth > _MAX_DEPTH:
        raise InvalidPayloadError(f"{where} is nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise InvalidPayloadError(f"{where}: integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise InvalidPayloadError(f"{where} is NaN, which no filter can match; store null instead")
        return value
    if isinstance(value, dict):
        normalized = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidPayloadError(f"{where} has the non-string key {key!r}; payload keys are strings")
            normalized[key] = _normalize(item, f"{where}.{key}", depth + 1)
        return normalized
    if isinstance(value, (list, tuple)):
        return [_normalize(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise InvalidPayloadError(
        f"{where} holds a {type(value).__name__}, which is not JSON-like "
        "(use dicts, lists, strings, numbers, booleans and None)"
    )
