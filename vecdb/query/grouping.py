"""search(..., group_by=...): the best hits per value of a payload field,
for any backend (it needs only the backend's own search)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Dict, List

import numpy as np

from vecdb.checks import MAX_K, check_k, positive_int
from vecdb.errors import InvalidArgumentError
from vecdb.payload_fields import MISSING, check_field, split_path, value_at
from vecdb.query.arguments import check_flags
from vecdb.records import Group, Hit

# Hits per group of a grouped search at most.
MAX_GROUP_SIZE = 1_000


def grouped_search(search: Callable[[int], List[Hit]], query: Any, k: Any, group_by: Any, group_size: Any,
                   with_payload: Any) -> List[Group]:
    """Up to ``k`` groups of up to ``group_size`` hits, groups best first:
    ``search(width)`` (the search asked for, ``width`` hits with payloads)
    is run with more and more hits until the groups are full or the
    collection has no more to give."""
    k, path = check_k(k), split_path(check_field(group_by))
    group_size = positive_int(group_size, "group_size", maximum=MAX_GROUP_SIZE)
    with_payload = check_flags(with_payload, False)[0]
    if query is not None and np.ndim(query) != 1:
        raise InvalidArgumentError("group_by takes one query vector (1-D), not a batch")
    width = min(max(k * group_size * 2, 10), MAX_K)
    while True:
        hits = search(width)
        groups: Dict[Any, Group] = {}
        for hit in hits:
            value = value_at(hit.payload or {}, path)
            for key in (value if isinstance(value, list) else [value]):
                if value is MISSING or not isinstance(key, (str, int, float, bool)):
                    continue
                group = groups.get(key)
                if group is None and len(groups) < k:
                    group = groups[key] = Group(key=key, hits=[])
                if group is not None and len(group.hits) < group_size:
                    group.hits.append(hit)
        full = len(groups) == k and all(len(group.hits) == group_size for group in groups.values())
        if full or len(hits) < width or width >= MAX_K:
            break
        width = min(width * 4, MAX_K)
    if not with_payload:
        for group in groups.values():
            group.hits = [replace(hit, payload=None) for hit in group.hits]
    return list(groups.values())
