"""Checks of scalar arguments shared by every layer (k, ef, limits, sizes):
pure Python, so the client and the settings classes use them without the
native core."""

from __future__ import annotations

import math
import operator
from typing import Any, List, Optional, Sequence

from vecdb.errors import InvalidArgumentError, InvalidDTypeError


def _as_int(value: Any, name: str) -> int:
    # bool is an int subclass, but k=True is a bug, not a request for 1.
    if isinstance(value, bool):
        raise InvalidDTypeError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidDTypeError(f"{name} must be an integer, got {value!r}") from None


# Integer parameters (k, ef, limits, cursors) stay below this: they size
# arrays or become 64-bit keys, and nothing larger is a meaningful request.
MAX_INT_PARAMETER = 2**63 - 1
# A search returns at most this many neighbours per query (its outputs are
# allocated at this width before the index is consulted).
MAX_K = 2**31 - 1


def positive_int(value: Any, name: str, minimum: int = 1, maximum: int = MAX_INT_PARAMETER) -> int:
    """Validate an integer parameter that must be in ``[minimum, maximum]``."""
    value = _as_int(value, name)
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    if value > maximum:
        raise InvalidArgumentError(f"{name} must be <= {maximum:,}, got {value:,}")
    return value


def check_timeout(timeout: Any) -> Optional[float]:
    """Validate a timeout in seconds (None: wait as long as it takes)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout < 0:
        raise InvalidArgumentError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
    return float(timeout)


def check_k(k: Any) -> int:
    """Validate ``k`` (a positive integer up to MAX_K) and return it as int."""
    return positive_int(k, "k", maximum=MAX_K)


def check_documents(documents: Any, count: int) -> Optional[List[Optional[str]]]:
    """An upsert's ``documents``: None, or one string (or None) per id,
    each valid Unicode (a lone surrogate cannot be stored as UTF-8)."""
    if documents is None:
        return None
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise InvalidArgumentError(f"documents must be a list with one string (or None) per id, "
                                   f"got {type(documents).__name__}")
    if len(documents) != count:
        raise InvalidArgumentError(f"got {len(documents)} documents for {count} ids")
    for row, text in enumerate(documents):
        if text is not None and not isinstance(text, str):
            raise InvalidArgumentError(f"document {row} must be a string or None, got {type(text).__name__}")
        if text is not None:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidArgumentError(f"document {row} is not valid Unicode text (it holds a lone surrogate, "
                                           "which UTF-8 cannot carry)") from None
    return list(documents)
