"""The native payload filter (csrc/filters, tested on stored MessagePack in
place) against the reference semantics, Filter.matches, on nasty payloads
on purpose: ints against floats at 2^53 and the 64-bit edges, booleans
beside 0 and 1, nulls, nested maps and lists, missing fields, non-ASCII
text, empty strings."""

from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdb
from vecdb.query.filters import parse_filter
from vecdb.query.native_filter import native_filter

CHECK = 4  # stored values end in a 4-byte check the native filter skips

# One small pool for stored values and operands, so that they meet often (ties
# tell >= from >), with the edges where kinds and widths differ.
scalars = st.sampled_from([None, True, False, 0, 1, -1, 1.0, -0.0, 0.5, 2**53, 2**53 + 1, 2.0**53, 2**63 - 1,
                           2**63, -(2**63), 2**64 - 1, 2.0**64, -33, 255, float("inf"), "", "a", "é", "b", "\U0001F600"])
comparable = st.one_of(scalars.filter(lambda value: value is not None and not isinstance(value, bool)),
                       st.floats(allow_nan=False), st.integers(-(2**63), 2**64 - 1))
fields = st.sampled_from(["a", "b"])
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(fields, inner, max_size=3)), max_leaves=6)
payloads = st.dictionaries(fields, values, max_size=3)
paths = st.sampled_from(["a", "a", "b", "a.b", "a.a", "b.a.b", "c"])


def _scalars_in(value):
    if isinstance(value, dict):
        return [found for item in value.values() for found in _scalars_in(item)]
    if isinstance(value, list):
        return [found for item in value for found in _scalars_in(item)]
    return [value]


def _filters(operands):
    """Filters whose operands are drawn from ``operands`` (the stored values, mostly)."""
    ordered = operands.filter(lambda value: value is not None and not isinstance(value, bool))
    conditions = st.one_of(
        st.builds(lambda path, value: {path: value}, paths, operands),
        st.builds(lambda path, op, value: {path: {op: value}}, paths, st.sampled_from(["$eq", "$ne"]), operands),
        st.builds(lambda path, op, value: {path: {op: value}}, paths,
                  st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), st.one_of(ordered, comparable)),
        st.builds(lambda path, op, options: {path: {op: options}}, paths, st.sampled_from(["$in", "$nin"]),
                  st.lists(operands, max_size=3)),
        st.builds(lambda path, flag: {path: {"$exists": flag}}, paths, st.booleans()))
    return st.recursive(conditions, lambda inner: st.one_of(
        st.builds(lambda items: {"$and": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"$or": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"$not": item}, inner)), max_leaves=5)


def _stored(payload: dict) -> bytes:
    return msgpack.packb(payload, use_bin_type=True) + b"\x00" * CHECK


@settings(max_examples=500, deadline=None)
@given(batch=st.lists(payloads, min_size=1, max_size=8), data=st.data())
def test_native_verdicts_are_the_reference_ones(batch, data):
    stored_values = [value for payload in batch for value in _scalars_in(payload)]
    spec = data.draw(_filters(st.sampled_from(stored_values) | scalars if stored_values else scalars))
    node = parse_filter(spec)
    native = native_filter(node)
    assert native is not None  # every operand here has a native form
    pairs = [(label.to_bytes(8, "big"), _stored(payload)) for label, payload in enumerate(batch)]
    labels, verdicts = native.match(pairs, CHECK)
    assert labels.tolist() == list(range(len(batch)))
    expected = [int(node.matches(payload)) for payload in batch]
    assert verdicts.tolist() == expected, (spec, batch)


def test_operands_without_a_native_form_fall_back_to_the_reference():
    assert native_filter(parse_filter({"a": [1, 2]})) is None  # a list compared whole
    assert native_filter(parse_filter({"a": {"$gt": 2**70}})) is None
    assert native_filter(parse_filter({"a": {"$in": [1, [2]]}})) is None
    assert native_filter(parse_filter({"a": 1, "b": {"$lt": "x"}})) is not None


def test_a_payload_that_does_not_parse_is_left_to_the_reference():
    native = native_filter(parse_filter({"a": 1}))
    truncated = msgpack.packb({"a": "a long enough string"})[:-3] + b"\x00" * CHECK
    _, verdicts = native.match([(b"\x00" * 8, truncated)], CHECK)
    assert verdicts.tolist() == [2]


def test_collections_filter_unindexed_fields_as_the_reference_does(tmp_path):
    """Through a collection: the scan of payloads, grouped with indexed
    conditions, falls back per operand, and matches the reference."""
    rng = np.random.default_rng(5)
    stored = [{"n": i, "tag": ["x", "y", "z"][i % 3], "meta": {"v": i % 7}} if i % 5 else {} for i in range(300)]
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=4)
        col.upsert(list(range(300)), rng.standard_normal((300, 4)).astype(np.float32), stored)
        col.create_payload_index("tag", "keyword")
        for spec in ({"n": {"$lt": 100}}, {"meta.v": {"$in": [1, 3]}, "tag": "x"},
                     {"$or": [{"tag": "y"}, {"n": {"$gte": 290}}, {"meta.v": 0}]},
                     {"n": {"$gt": 2**70}}, {"meta": {"$exists": False}}, {"tag": {"$ne": "z"}, "n": [1, 2]}):
            node = parse_filter(spec)
            assert col.count(filter=spec) == sum(node.matches(payload) for payload in stored), spec
