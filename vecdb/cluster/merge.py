"""Merging the shards' answers into the one a single database would give:
best first, equal scores in insertion order (each answer carries its
points' cluster-wide order, see :mod:`vecdb.cluster.shard`)."""

from __future__ import annotations

import heapq
import itertools
from typing import Dict, List, Sequence, Tuple, TypeVar

from vecdb.metrics import higher_is_better
from vecdb.records import Hit

T = TypeVar("T")


class ShardHits(List[Hit]):
    """A search's hits (a list, best first) from the shards that answered:
    ``missing_shards`` names those that did not (``allow_partial=True``)."""

    missing_shards: Tuple[int, ...] = ()


class ShardResults(List[List[Hit]]):
    """A batch search's hits, one list per query, from the shards that
    answered; ``missing_shards`` names those that did not."""

    missing_shards: Tuple[int, ...] = ()


def merge_hits(per_shard: Sequence[Sequence[Tuple[int, Hit]]], k: int, metric: str) -> List[Hit]:
    """The best ``k`` of the shards' (order, hit) lists, each best first."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    merged = heapq.merge(*per_shard, key=lambda pair: (sign * pair[1].score, pair[0]))
    return [hit for _, hit in itertools.islice(merged, k)]


def merge_batches(answers: Dict[int, List[List[Tuple[int, Hit]]]], queries: int, k: int,
                  metric: str) -> List[List[Hit]]:
    """Per query, the best ``k`` of every shard's hits for it."""
    return [merge_hits([answer[row] for answer in answers.values()], k, metric) for row in range(queries)]


def merge_in_order(per_shard: Sequence[Sequence[Tuple[int, T]]], limit: int) -> List[Tuple[int, T]]:
    """The first ``limit`` of the shards' (order, item) lists, each in order."""
    return list(itertools.islice(heapq.merge(*per_shard, key=lambda pair: pair[0]), limit))
