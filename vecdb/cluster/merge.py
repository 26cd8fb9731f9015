"""Merging the shards' answers into the one a single database would give:
best first, equal scores in insertion order (each answer carries its
points' cluster-wide order, see :mod:`vecdb.cluster.shard`)."""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar

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


# One query's hits from one shard, best first, as columns (cheaper to pickle
# than Hit objects, and only the merged best k become Hits): ids, scores,
# orders, and payloads and vectors (None unless asked for).
HitColumns = Tuple[List[Any], List[float], List[int], Optional[List[Any]], Optional[List[Any]]]


def merge_hits(per_shard: Sequence[HitColumns], k: int, metric: str) -> List[Hit]:
    """The best ``k`` of the shards' hits for one query, equal scores in
    insertion order (each shard's columns are in that order already)."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    ranked = heapq.merge(*([(sign * score, order, shard, position)
                            for position, (score, order) in enumerate(zip(columns[1], columns[2]))]
                           for shard, columns in enumerate(per_shard)))
    hits = []
    for _, _, shard, position in itertools.islice(ranked, k):
        ids, scores, _, payloads, vectors = per_shard[shard]
        hits.append(Hit(id=ids[position], score=scores[position],
                        payload=None if payloads is None else payloads[position],
                        vector=None if vectors is None else vectors[position]))
    return hits


def merge_batches(answers: Dict[int, List[HitColumns]], queries: int, k: int, metric: str) -> List[List[Hit]]:
    """Per query, the best ``k`` of every shard's hits for it."""
    return [merge_hits([answer[row] for answer in answers.values()], k, metric) for row in range(queries)]


def merge_in_order(per_shard: Sequence[Sequence[Tuple[int, T]]], limit: int) -> List[Tuple[int, T]]:
    """The first ``limit`` of the shards' (order, item) lists, each in order."""
    return list(itertools.islice(heapq.merge(*per_shard, key=lambda pair: pair[0]), limit))
