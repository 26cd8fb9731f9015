"""Payload fields: dotted paths into JSON-like payloads (``"meta.author"``)
and the kinds of value a payload index may hold. Pure Python: the client
checks fields with it before a request leaves."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple

from vecdb.errors import InvalidArgumentError, InvalidDTypeError, InvalidPayloadError

KINDS = ("keyword", "integer", "float", "bool")  # what a payload index may hold
_MAX_FIELD_BYTES = 200
MISSING = object()  # a path that leads nowhere (distinct from a stored None)


def split_path(path: str) -> Tuple[str, ...]:
    return tuple(path.split("."))


def value_at(payload: Dict[str, Any], parts: Tuple[str, ...]) -> Any:
    """The value at a split dotted path, or :data:`MISSING`. Paths step into
    nested dicts only (not into lists)."""
    value: Any = payload
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def check_field(field: Any) -> str:
    """A payload index's field path: a non-empty string of dotted parts."""
    if not isinstance(field, str) or not field or "\x00" in field or "" in split_path(field):
        raise InvalidArgumentError(f"payload index field must be a dotted path like 'meta.lang', got {field!r}")
    if len(field.encode("utf-8", "surrogatepass")) > _MAX_FIELD_BYTES:
        raise InvalidArgumentError(f"payload index field {field[:40]!r}... is longer than {_MAX_FIELD_BYTES} bytes")
    return field


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise InvalidArgumentError(f"unknown payload index kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def without_paths(payload: Dict[str, Any], paths: List[Tuple[str, ...]]) -> Dict[str, Any]:
    """A copy of ``payload`` without the values at ``paths`` (each a
    :func:`split_path`; a path that leads nowhere is skipped). Objects on
    the way are copied, never changed in place."""
    result = dict(payload)
    for path in paths:
        parent = result
        for part in path[:-1]:
            child = parent.get(part)
            if not isinstance(child, dict):
                break
            parent[part] = child = dict(child)
            parent = child
        else:
            parent.pop(path[-1], None)
    return result


PayloadChange = Callable[[Dict[str, Any]], Dict[str, Any]]


def payload_update(payload: Any, merge: Any) -> PayloadChange:
    """``update_payload``'s change, checked: set the keys of ``payload`` and
    keep the others (``merge``), or replace the whole payload."""
    if not isinstance(payload, dict):
        raise InvalidPayloadError(f"payload must be a dict, got {type(payload).__name__}")
    if not isinstance(merge, bool):
        raise InvalidDTypeError(f"merge must be true or false, got {merge!r}")
    return (lambda old: {**old, **payload}) if merge else (lambda old: dict(payload))


def keys_removal(keys: Any) -> PayloadChange:
    """``delete_payload_keys``'s change, checked: remove these keys (dotted paths)."""
    if isinstance(keys, str) or not isinstance(keys, Sequence) or not keys:
        raise InvalidArgumentError("keys must be a non-empty list of payload keys, e.g. ['draft']")
    paths = [split_path(check_field(key)) for key in keys]
    return lambda old: without_paths(old, paths)
