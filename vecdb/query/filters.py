"""Payload filters: a Mongo-style query language, parsed into a small tree.

    {"lang": "en", "year": {"$gte": 2020}}                 # fields are ANDed
    {"$or": [{"lang": "en"}, {"tags": {"$in": ["ml", "db"]}}]}
    {"meta.author": {"$exists": True}, "year": {"$not": {"$lt": 2000}}}

Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $contains`` on
fields, ``$and $or $not`` to combine. ``$document`` is a point's document
(``upsert(documents=...)``), filterable like a field: ``{"$document":
{"$contains": "vector"}}``. Dotted paths step into nested dicts. Semantics follow
MongoDB's where it matters to users:

- a list value matches when any element does (``{"tags": "ml"}`` matches
  ``{"tags": ["ml", "db"]}``);
- ``$ne``, ``$nin`` and ``$not`` also match payloads without the field;
- comparisons (``$gt`` ...) only compare numbers with numbers and strings
  with strings; booleans are not numbers;
- ``{"field": None}`` matches a stored null, not a missing field
  (use ``$exists`` for that);
- ``$contains`` matches a string that holds the operand (a substring,
  case-sensitive), or a list holding such a string.

:meth:`Filter.matches` is the reference semantics, evaluated on one payload;
:mod:`vecdb.query.filter_eval` answers the same question for a whole collection,
from payload indexes where it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from vecdb.errors import InvalidFilterError
from vecdb.payload_fields import MISSING, split_path, value_at

COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
_FIELD_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$exists", "$not", "$contains") + COMPARISONS
# The pseudo-field a point's document is filtered by (not a payload key).
DOCUMENT = "$document"
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Condition:
    """One operator applied to the value at a field path."""

    path: str
    operator: str  # $eq $in $exists (true) $contains $gt $gte $lt $lte; negations are Not nodes
    operand: Any

    @property
    def parts(self) -> Tuple[str, ...]:
        return split_path(self.path)

    def matches(self, payload: Dict[str, Any]) -> bool:
        value = value_at(payload, self.parts)
        if self.operator == "$exists":
            return value is not MISSING
        if value is MISSING:
            return False
        candidates = [value] + (value if isinstance(value, list) else [])
        if self.operator == "$eq":
            return any(_equal(candidate, self.operand) for candidate in candidates)
        if self.operator == "$in":
            return any(_equal(candidate, option) for candidate in candidates for option in self.operand)
        if self.operator == "$contains":
            return any(isinstance(candidate, str) and self.operand in candidate for candidate in candidates)
        return any(_compare(candidate, self.operator, self.operand) for candidate in candidates)


@dataclass(frozen=True)
class And:
    children: Tuple["Filter", ...]

    def matches(self, payload: Dict[str, Any]) -> bool:
        return all(child.matches(payload) for child in self.children)


@dataclass(frozen=True)
class Or:
    children: Tuple["Filter", ...]

    def matches(self, payload: Dict[str, Any]) -> bool:
        return any(child.matches(payload) for child in self.children)


@dataclass(frozen=True)
class Not:
    child: "Filter"

    def matches(self, payload: Dict[str, Any]) -> bool:
        return not self.child.matches(payload)


Filter = Union[Condition, And, Or, Not]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _equal(value: Any, operand: Any) -> bool:
    return _kind(value) == _kind(operand) and value == operand


def _compare(value: Any, operator: str, operand: Any) -> bool:
    if _kind(value) != _kind(operand):
        return False
    if operator == "$gt":
        return value > operand
    if operator == "$gte":
        return value >= operand
    if operator == "$lt":
        return value < operand
    return value <= operand


MAX_FILTER_DEPTH = 32  # nested $and/$or/$not; deeper is a mistake or an attack on the stack


def parse_filter(spec: Any, depth: int = 0) -> Filter:
    """Parse and validate a filter dict; raises InvalidFilterError naming
    the offending part."""
    if depth > MAX_FILTER_DEPTH:
        raise InvalidFilterError(f"filter nests $and/$or/$not more than {MAX_FILTER_DEPTH} levels deep")
    if not isinstance(spec, dict):
        raise InvalidFilterError(f"a filter is a dict like {{'lang': 'en'}}, got {type(spec).__name__}")
    children: List[Filter] = []
    for key, value in spec.items():
        if not isinstance(key, str) or not key:
            raise InvalidFilterError(f"filter keys are field paths or $and/$or/$not, got {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise InvalidFilterError(f"{key} takes a non-empty list of filters, got {value!r}")
            parsed = tuple(parse_filter(item, depth + 1) for item in value)
            children.append(And(parsed) if key == "$and" else Or(parsed))
        elif key == "$not":
            children.append(Not(parse_filter(value, depth + 1)))
        elif key == DOCUMENT:
            children.append(_parse_field(key, value))
        elif key.startswith("$"):
            raise InvalidFilterError(f"unknown top-level operator {key!r}; use $and, $or or $not, $document, "
                                     "or a field name")
        else:
            children.append(_parse_field(key, value))
    return children[0] if len(children) == 1 else And(tuple(children))


def _parse_field(path: str, spec: Any) -> Filter:
    if "" in split_path(path):
        raise InvalidFilterError(f"field path {path!r} has an empty part")
    if not isinstance(spec, dict):
        return Condition(path, "$eq", _check_value(path, "$eq", spec))
    if not spec or not all(isinstance(key, str) and key.startswith("$") for key in spec):
        raise InvalidFilterError(
            f"the filter on {path!r} must be a value or a dict of operators like {{'$gte': 3}}, got {spec!r}"
        )
    children = [_parse_operator(path, operator, operand) for operator, operand in spec.items()]
    return children[0] if len(children) == 1 else And(tuple(children))


def _parse_operator(path: str, operator: str, operand: Any) -> Filter:
    if operator not in _FIELD_OPERATORS:
        raise InvalidFilterError(
            f"unknown operator {operator!r} on {path!r}; expected one of {' '.join(_FIELD_OPERATORS)}"
        )
    if operator == "$not":
        if not isinstance(operand, dict) or not operand:
            raise InvalidFilterError(f"$not on {path!r} takes a dict of operators, got {operand!r}")
        return Not(_parse_field(path, operand))
    if operator == "$exists":
        if not isinstance(operand, bool):
            raise InvalidFilterError(f"$exists on {path!r} takes true or false, got {operand!r}")
        condition = Condition(path, "$exists", True)
        return condition if operand else Not(condition)
    if operator in ("$in", "$nin"):
        if not isinstance(operand, (list, tuple)):
            raise InvalidFilterError(f"{operator} on {path!r} takes a list of values, got {operand!r}")
        options = tuple(_check_value(path, operator, item) for item in operand)
        condition = Condition(path, "$in", options)
        return Not(condition) if operator == "$nin" else condition
    if operator == "$contains":
        operand = _plain(operand)
        if not isinstance(operand, str) or not operand:
            raise InvalidFilterError(f"$contains on {path!r} takes a non-empty string, got {operand!r}")
        return Condition(path, "$contains", operand)
    if operator in COMPARISONS:
        operand = _plain(operand)
        if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
            raise InvalidFilterError(f"{operator} on {path!r} compares numbers or strings, got {operand!r}")
        return Condition(path, operator, operand)
    condition = Condition(path, "$eq", _check_value(path, operator, operand))
    return Not(condition) if operator == "$ne" else condition


def _plain(value: Any) -> Any:
    """numpy scalars (np.int64 from an array, say) as the Python values they
    hold, as a remote client sends them."""
    return value.item() if isinstance(value, np.generic) else value


def _check_value(path: str, operator: str, value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, float) and value != value:
        raise InvalidFilterError(f"{operator} on {path!r} cannot match NaN")
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [_check_value(path, operator, item) for item in value]
    raise InvalidFilterError(
        f"{operator} on {path!r} takes a string, number, bool, null or list, got {type(value).__name__}"
    )
