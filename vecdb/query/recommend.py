"""Recommendations from examples ("more like these, not like those"), as
Qdrant's recommend API defines them:

- ``average_vector``: one search with ``avg(positive) + (avg(positive) -
  avg(negative))`` (just the positives' average without negatives);
- ``best_score``: each point scores its best similarity to a positive
  example if that is at least its best similarity to a negative one, else
  minus the square of the latter (so every point nearer a negative ranks
  below every point nearer a positive).

Similarities are higher-is-better: cosine similarity, dot product, or the
negated Euclidean distance for l2."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from vecdb.checks import check_k
from vecdb.errors import InvalidArgumentError
from vecdb.native.arrays import as_matrix
from vecdb.native.flat import pairwise_distances
from vecdb.query.arguments import check_finite
from vecdb.records import Hit, Record

# search(query, k, with_vector) -> hits (the backend's search with the
# recommend's filter, ef and with_payload); get(ids) -> records with vectors.
Search = Callable[[np.ndarray, int, bool], List[Hit]]
Get = Callable[[List[Any]], List[Record]]

STRATEGIES = ("average_vector", "best_score")


def check_strategy(strategy: Any) -> str:
    if strategy not in STRATEGIES:
        raise InvalidArgumentError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    return str(strategy)


def split_examples(examples: Any, what: str) -> Tuple[List[Any], List[Any]]:
    """A recommend's ``positive`` or ``negative``: each item a point id (a
    string or integer) or a vector; returns (ids, vectors) in order given."""
    if examples is None:
        return [], []
    if isinstance(examples, (str, bytes, int, np.ndarray, Mapping)) or not hasattr(examples, "__iter__"):
        raise InvalidArgumentError(f"{what} must be a list of point ids and/or vectors, got {type(examples).__name__}")
    ids: List[Any] = []
    vectors: List[Any] = []
    for item in examples:
        if isinstance(item, (str, int, np.integer)) and not isinstance(item, bool):
            ids.append(item.item() if isinstance(item, np.integer) else item)
        else:
            vectors.append(item)
    return ids, vectors


def average_query(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """The average_vector strategy's query."""
    average = positive.mean(axis=0)
    return average if not len(negative) else average + (average - negative.mean(axis=0))


def similarities(vectors: np.ndarray, examples: np.ndarray, metric: str) -> np.ndarray:
    """``(examples, points)`` similarities, higher is better."""
    distances = pairwise_distances(examples, vectors, metric=metric).astype(np.float64)
    return -np.sqrt(np.maximum(distances, 0.0)) if metric == "l2" else 1.0 - distances


def best_scores(vectors: np.ndarray, positive: np.ndarray, negative: np.ndarray, metric: str) -> np.ndarray:
    """The best_score strategy's score of each row of ``vectors``."""
    best_positive = similarities(vectors, positive, metric).max(axis=0)
    if not len(negative):
        return best_positive
    best_negative = similarities(vectors, negative, metric).max(axis=0)
    return np.where(best_positive >= best_negative, best_positive, -(best_negative ** 2))


def recommend(search: Search, get: Get, dim: int, metric: str, positive: Any, negative: Any, k: Any,
              strategy: Any, with_vector: bool) -> List[Hit]:
    """The recommendations of any backend, from its ``search`` and ``get``
    (see :meth:`vecdb.Collection.recommend`)."""
    strategy = check_strategy(strategy)
    k = check_k(k)
    positive_ids, positive_vectors = split_examples(positive, "positive")
    negative_ids, negative_vectors = split_examples(negative, "negative")
    if not positive_ids and not positive_vectors:
        raise InvalidArgumentError("recommend needs at least one positive example (a point id or a vector)")
    positives = _example_vectors(get, dim, positive_ids, positive_vectors, "positive")
    negatives = _example_vectors(get, dim, negative_ids, negative_vectors, "negative")
    excluded = set(positive_ids) | set(negative_ids)
    if strategy == "average_vector":
        hits = search(average_query(positives, negatives), k + len(excluded), with_vector)
        return [hit for hit in hits if hit.id not in excluded][:k]
    width = max(4 * k, 40) + len(excluded)
    while True:
        found: Dict[Any, Hit] = {}
        complete = True  # whether every example's search came back with fewer than width hits
        lists = []
        for example in positives:
            hits = search(example, width, True)
            complete &= len(hits) < width
            lists.append(hits)
            found.update((hit.id, hit) for hit in hits if hit.id not in excluded)
        candidates = list(found.values())
        vectors = [hit.vector for hit in candidates if isinstance(hit.vector, np.ndarray)]  # asked for: every hit has one
        scores = best_scores(np.stack(vectors), positives, negatives, metric) if vectors else np.zeros(0)
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])[:k]
        # A point no search returned scores at most its best similarity to a
        # positive example (below each list's last), or, nearer a negative
        # one, at most 0 (minus a square).
        if complete or len(order) == k and (not len(negatives) or scores[order[-1]] > 0) and all(
                scores[order[-1]] > _similarity(hits[-1].score, metric) for hits in lists):
            break  # no point any search left out can score above the k-th
        width *= 4
    return [replace(candidates[i], score=float(scores[i]), vector=candidates[i].vector if with_vector else None)
            for i in order]


def _example_vectors(get: Get, dim: int, ids: List[Any], vectors: List[Any], what: str) -> np.ndarray:
    """The vectors of a recommend's examples: the stored points' (an id
    that does not exist is refused) and the vectors given, checked."""
    rows: List[np.ndarray] = []
    if ids:
        records = {record.id: record.vector for record in get(ids) if isinstance(record.vector, np.ndarray)}
        missing = [point for point in ids if point not in records]
        if missing:
            raise InvalidArgumentError(f"{what} example point {missing[0]!r} does not exist")
        rows.extend(records[point] for point in ids)
    if vectors:
        matrix, _ = as_matrix(vectors, "float32", dim, f"{what} example vectors")
        check_finite(matrix, f"{what} example vectors")
        rows.extend(matrix)
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)


def _similarity(score: float, metric: str) -> Optional[float]:
    """A hit's score as a higher-is-better similarity (l2 hits report distances)."""
    return -score if metric == "l2" else score
