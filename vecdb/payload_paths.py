"""Dotted paths into JSON-like payloads (``"meta.author"``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

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
