"""A parsed filter in the form the native payload filter takes
(``_core.PayloadFilter``: MessagePack payloads tested in place, see
csrc/filters/payload_filter.h), or None where that form cannot hold an
operand (a list, an integer past 64 bits, text that is not valid Unicode):
then the reference, :meth:`Filter.matches`, tests decoded payloads."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from vecdb import _core
from vecdb.query.filters import And, Condition, Filter, Not, Or

_OPERATORS = {"$exists": "exists", "$eq": "eq", "$in": "in", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


class _Unsupported(Exception):
    pass


def native_filter(node: Filter) -> Optional[Any]:
    """``node`` as a ``_core.PayloadFilter``, or None if it has an operand
    the native form cannot hold."""
    try:
        return _core.PayloadFilter(_spec(node))
    except _Unsupported:
        return None


def _spec(node: Filter) -> Tuple[Any, ...]:
    if isinstance(node, (And, Or)):
        return ("and" if isinstance(node, And) else "or", [_spec(child) for child in node.children])
    if isinstance(node, Not):
        return ("not", [_spec(node.child)])
    return _condition(node)


def _condition(node: Condition) -> Tuple[Any, ...]:
    operator = _OPERATORS.get(node.operator)
    if operator is None:  # $contains: tested on decoded payloads
        raise _Unsupported
    parts = [part.encode("utf-8") for part in node.parts]
    if operator == "exists":
        return (operator, parts)
    if operator == "in":
        return (operator, parts, [_operand(option) for option in node.operand])
    return (operator, parts, _operand(node.operand))


def _operand(value: Any) -> Tuple[Any, ...]:
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise _Unsupported
        return ("int", value < 0, abs(value))
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, str):
        try:
            return ("str", value.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: no stored text equals it, but let the reference say so
            raise _Unsupported from None
    raise _Unsupported  # a list: compared as a whole, the reference's way
