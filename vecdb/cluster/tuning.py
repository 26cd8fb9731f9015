"""tune() for a cluster: the plan is chosen on the merged result (what a
search returns), not on one shard's, and installed on every shard.

As :mod:`vecdb.query.tuning` does for one collection: pseudo-queries are
stored points drawn at random (from every shard, in proportion to its
points) or the caller's queries; their exact neighbours come from a scan of
every shard's stored vectors, merged by distance; each candidate plan runs
as a search of the whole cluster (every shard with that plan, the hits
merged), so its recall is the merged recall. Its latency is the slowest
shard's own time for the plan, measured on the shard, one query at a time
(a search waits for its slowest shard; the Ray round trip, the same for
every plan and far larger than the differences between plans, would
otherwise drown them). A collection with named vectors tunes one vector,
``using``, on the points that have it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, List, Optional, Union, cast

import numpy as np

from vecdb.errors import InvalidArgumentError
from vecdb.plans import Plan
from vecdb.query.tuning import split_queries, tune_plans
from vecdb.records import Hit
from vecdb.reports import TuneReport

if TYPE_CHECKING:
    from vecdb.cluster.collection import ClusterCollection


def tune_cluster(collection: "ClusterCollection", target_recall: float, k: int, queries: Union[int, np.ndarray],
                 seed: int, using: Optional[str]) -> TuneReport:
    """Tune ``collection``'s plan (of vector ``using``, resolved: None for a
    collection of one unnamed vector) on merged results and make it the
    default on every shard (the caller holds the collection's write lock)."""
    rng = np.random.default_rng(seed)
    counts = {shard: states[using].count
              for shard, states in collection._on_shards("training_states", direct=True).items()}
    total = sum(counts.values())
    if total < k + 2:
        raise InvalidArgumentError(f"tuning needs at least {k + 2} stored points; there are {total}")
    own: List[Any]
    if isinstance(queries, np.ndarray):
        if queries.shape[0] < 2:
            raise InvalidArgumentError("tuning needs at least 2 queries (half are held out)")
        vectors, own = queries[rng.permutation(queries.shape[0])], [None] * queries.shape[0]
    else:
        wanted = 2 * min(queries, total // 2)
        drawn = collection._on_shards("sample_points", direct=True, arguments=lambda shard: (
            math.ceil(wanted * counts[shard] / total), seed), using=using)
        ids = [point for shard in sorted(drawn) for point in drawn[shard][0]]
        matrix = np.vstack([drawn[shard][1] for shard in sorted(drawn)])
        order = rng.permutation(len(ids))[:wanted]
        vectors, own = matrix[order], [ids[row] for row in order]
    neighbours = _merged_exact_neighbours(collection, vectors, k + 1, using)
    shape = collection._on_shards("search_shape", shards=[0], direct=True, using=using)[0]

    def run(plan: Plan, batch: np.ndarray, top: int) -> List[List[Any]]:
        rows = cast(List[List[Hit]], collection.search(batch, top, plan=plan, with_payload=False,
                                                       using=using))  # a 2-D batch
        return [[hit.id for hit in row] for row in rows]

    def slowest_shard(plan: Plan, batch: np.ndarray, top: int) -> float:
        return max(collection._on_shards("time_plan", plan, batch, top, direct=True, using=using).values())

    report = tune_plans(run, shape, *split_queries(vectors, own, neighbours, k), target_recall, k, seed,
                        timer=slowest_shard)
    collection._on_shards("set_default_plan", report.plan, report.k, direct=True, using=using)
    return report


def _merged_exact_neighbours(collection: "ClusterCollection", queries: np.ndarray, k: int,
                             using: Optional[str]) -> List[List[Any]]:
    """Each query's k nearest stored points (with vector ``using``) over
    every shard (ids)."""
    answers = collection._on_shards("exact_neighbours", queries, k, direct=True, using=using)
    shards = sorted(answers)
    ids = [answers[shard][0] for shard in shards]
    distances = np.concatenate([answers[shard][1] for shard in shards], axis=1)
    neighbours = []
    for row in range(queries.shape[0]):
        candidates = [point for shard_ids in ids for point in shard_ids[row]]
        order = np.argsort(distances[row], kind="stable")[:k]
        neighbours.append([candidates[column] for column in order])
    return neighbours
