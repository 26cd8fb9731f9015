"""Merging the shards' answers into the one a single database would give:
best first, equal scores in insertion order (each answer carries its
points' cluster-wide order, see :mod:`vecdb.cluster.shard`); the shards'
BM25 statistics into the whole collection's; and a hybrid search's
branches, each merged over the shards, fused as one collection fuses them."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

from vecdb.fusion import Fusion
from vecdb.index.term_indexes import Corpus
from vecdb.metrics import higher_is_better
from vecdb.query.fusion import branch_weights, fuse
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
# orders (those of the index searched: they break ties), payloads and
# vectors (None unless asked for), and the points' own orders where they
# differ from the first (None: the same). A named vector's index numbers a
# point from when it got that vector; a hybrid search fuses its hits with
# the other branches' by the point's order. Last, their documents (None
# unless asked for and some hit has one).
HitColumns = Tuple[List[Any], List[float], List[int], Optional[List[Any]], Optional[List[Any]], Optional[List[int]],
                   Optional[List[Optional[str]]]]


def merge_hits(per_shard: Sequence[HitColumns], k: int, higher_first: bool) -> List[Hit]:
    """The best ``k`` of the shards' hits for one query (the highest scores
    if ``higher_first``, else the lowest), equal scores in insertion order
    (each shard's columns are in that order already)."""
    return [hit for _, hit in merge_ordered(per_shard, k, higher_first)]


def merge_ordered(per_shard: Sequence[HitColumns], k: int, higher_first: bool) -> List[Tuple[int, Hit]]:
    """:func:`merge_hits`, each hit with its point's insertion order."""
    sign = -1.0 if higher_first else 1.0
    ranked = heapq.merge(*([(sign * score, order, shard, position)
                            for position, (score, order) in enumerate(zip(columns[1], columns[2]))]
                           for shard, columns in enumerate(per_shard)))
    hits = []
    for _, order, shard, position in itertools.islice(ranked, k):
        ids, scores, _, payloads, vectors, point_orders, documents = per_shard[shard]
        hits.append((order if point_orders is None else point_orders[position],
                     Hit(id=ids[position], score=scores[position],
                         payload=None if payloads is None else payloads[position],
                         vector=None if vectors is None else vectors[position],
                         document=None if documents is None else documents[position])))
    return hits


def fuse_branches(fusion: Fusion, per_shard: Sequence[Sequence[HitColumns]], width: int, k: int,
                  vector_first: bool) -> List[Hit]:
    """A hybrid search's best ``k``: each branch (the shards' lists at the
    same position, scores higher-is-better) merged to its best ``width``
    over the shards, then fused as a collection fuses its own branches,
    with the points' insertion orders in place of its labels (so ties
    break alike); scores rounded to float32, as a collection's hits are."""
    branches = [merge_ordered([answer[branch] for answer in per_shard], width, higher_first=True)
                for branch in range(len(per_shard[0]))] if per_shard else []
    found = {order: hit for branch in branches for order, hit in branch}
    orders, scores = fuse(fusion, [(np.array([order for order, _ in branch], dtype=np.int64),
                                    np.array([hit.score for _, hit in branch], dtype=np.float64))
                                   for branch in branches],
                          branch_weights(fusion, len(branches), vector_first), k)
    return [replace(found[int(order)], score=float(np.float32(score))) for order, score in zip(orders, scores)]


def merge_batches(answers: Dict[int, List[HitColumns]], queries: int, k: int, metric: str) -> List[List[Hit]]:
    """Per query, the best ``k`` of every shard's hits for it."""
    higher_first = higher_is_better(metric)
    return [merge_hits([answer[row] for answer in answers.values()], k, higher_first) for row in range(queries)]


def merge_in_order(per_shard: Sequence[Sequence[Tuple[int, T]]], limit: int) -> List[Tuple[int, T]]:
    """The first ``limit`` of the shards' (order, item) lists, each in order."""
    return list(itertools.islice(heapq.merge(*per_shard, key=lambda pair: pair[0]), limit))


def sum_text_statistics(per_shard: Sequence[Corpus]) -> Corpus:
    """The BM25 statistics of a query over the whole collection: the
    shards' points, text lengths and term frequencies added up (every
    shard counts its own points once; a point lives on one shard)."""
    frequencies: Dict[str, float] = {}
    for _, _, shard_frequencies in per_shard:
        for term, count in shard_frequencies.items():
            frequencies[term] = frequencies.get(term, 0.0) + count
    return (sum(points for points, _, _ in per_shard), sum(length for _, length, _ in per_shard), frequencies)
