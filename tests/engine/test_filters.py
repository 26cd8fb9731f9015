"""The filter language: parsing, errors, and the reference semantics."""

from __future__ import annotations

import pytest

from vecdb.errors import InvalidFilterError
from vecdb.query.filters import parse_filter

DOC = {"lang": "en", "year": 2021, "score": 0.5, "tags": ["ml", "db"], "draft": False,
       "meta": {"author": "ada", "pages": 12}, "note": None}


@pytest.mark.parametrize("spec, expected", [
    ({"lang": "en"}, True),
    ({"lang": "fr"}, False),
    ({"lang": {"$eq": "en"}}, True),
    ({"lang": {"$ne": "en"}}, False),
    ({"missing": {"$ne": "x"}}, True),          # $ne matches a missing field
    ({"year": {"$gte": 2020, "$lt": 2022}}, True),
    ({"year": {"$gt": 2021}}, False),
    ({"year": {"$lte": 2021.0}}, True),          # ints and floats compare
    ({"year": {"$gt": "2000"}}, False),          # numbers never compare with strings
    ({"score": {"$lt": 1}}, True),
    ({"tags": "ml"}, True),                      # a list matches when an element does
    ({"tags": {"$in": ["x", "db"]}}, True),
    ({"tags": {"$nin": ["ml"]}}, False),
    ({"tags": ["ml", "db"]}, True),              # whole-list equality
    ({"lang": {"$in": []}}, False),
    ({"missing": {"$nin": ["x"]}}, True),
    ({"draft": False}, True),
    ({"draft": 0}, False),                       # booleans are not numbers
    ({"meta.author": "ada"}, True),
    ({"meta.pages": {"$gte": 10}}, True),
    ({"meta.missing": {"$exists": False}}, True),
    ({"meta": {"$exists": True}}, True),
    ({"note": None}, True),                      # a stored null
    ({"missing": None}, False),                  # ...not a missing field
    ({"note": {"$exists": True}}, True),
    ({"$or": [{"lang": "fr"}, {"year": 2021}]}, True),
    ({"$and": [{"lang": "en"}, {"year": 2020}]}, False),
    ({"$not": {"lang": "fr"}}, True),
    ({"year": {"$not": {"$gt": 2000}}}, False),
    ({"lang": "en", "year": {"$gte": 2022}}, False),
    ({"missing": {"$gt": 1}}, False),
])
def test_reference_semantics(spec, expected):
    assert parse_filter(spec).matches(DOC) is expected


@pytest.mark.parametrize("spec, message", [
    ("lang", "a filter is a dict"),
    ({"lang": {"$regex": "e"}}, "unknown operator '$regex'"),
    ({"$nor": []}, "unknown top-level operator"),
    ({"$or": []}, "non-empty list"),
    ({"$and": {"a": 1}}, "non-empty list"),
    ({"year": {"$gt": [1]}}, "compares numbers or strings"),
    ({"year": {"$gt": True}}, "compares numbers or strings"),
    ({"tags": {"$in": "ml"}}, "takes a list"),
    ({"a": {"$exists": 1}}, "takes true or false"),
    ({"a": {"$not": 3}}, "takes a dict of operators"),
    ({"a": {"x": 1}}, "must be a value or a dict of operators"),
    ({"a": {}}, "must be a value or a dict of operators"),
    ({"a..b": 1}, "empty part"),
    ({"a": float("nan")}, "NaN"),
    ({"a": {1, 2}}, "takes a string, number"),
    ({3: 1}, "filter keys are field paths"),
])
def test_malformed_filters_are_named(spec, message):
    with pytest.raises(InvalidFilterError, match=message.replace("$", r"\$").replace("(", r"\(")):
        parse_filter(spec)


def test_invalid_filter_is_a_value_error_with_status_400():
    with pytest.raises(ValueError) as caught:
        parse_filter({"a": {"$bad": 1}})
    assert caught.value.http_status == 400
