"""Running a plan (:mod:`vecdb.plans`) on a collection's indexes
(:func:`execute`; :func:`graph_runner` for the common case, made once for
the searches of one state)."""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from vecdb.index.label_index import GraphLabelIndex, Result
from vecdb.plans import Funnel, Graph, Plan, Prefix, Scan
from vecdb.index.prefix_index import IndexSet

# (seconds, results out per query on average) of each stage, in plan order.
StageTimes = List[Tuple[float, float]]
# A search of fixed plan, k, ef and filter: queries -> (labels, distances).
Runner = Callable[[np.ndarray], Result]


def graph_runner(plan: Plan, indexes: IndexSet, k: int, ef: Optional[int]) -> Optional[Runner]:
    """Unfiltered searches of a graph plan on a graph of vectors, as a
    function of the queries calling the native search directly (valid while
    ``indexes`` are): the layers between were a tenth of a one-query
    search's time. None for any other plan or index."""
    main = indexes.main
    if not (isinstance(plan, Graph) and isinstance(main, GraphLabelIndex)):
        return None
    graph, beam = main.graph, plan.ef or ef or max(main.ef_search, k)
    return lambda queries: graph.search_checked(queries, k, beam)


def execute(plan: Plan, indexes: IndexSet, queries: np.ndarray, k: int, ef: Optional[int],
            allowed: Optional[np.ndarray], times: Optional[StageTimes] = None) -> Result:
    """The k nearest labels and distances of each query under ``plan``
    (restricted to ``allowed``, a boolean mask over labels, if given). With
    ``times``, appends each stage's time and output size to it."""
    main = indexes.main
    if isinstance(plan, Scan):
        return _timed(times, lambda: main.exact_search(queries, k, allowed))
    if isinstance(plan, Graph):
        return _timed(times, lambda: main.search(queries, k, plan.ef or ef, allowed))
    prefix = indexes.prefixes[plan.dims]
    if isinstance(plan, Prefix):
        return _timed(times, lambda: prefix.search(queries, k, plan.ef or ef, allowed))
    assert isinstance(plan, Funnel)
    width = max(plan.candidates, k)
    beam = max(plan.ef or ef or 0, width)
    shortlist, _ = _timed(times, lambda: prefix.search(queries, width, beam, allowed))
    return _timed(times, lambda: main.rerank(queries, shortlist, k))


def _timed(times: Optional[StageTimes], run) -> Result:
    if times is None:
        return run()
    start = time.perf_counter()
    labels, distances = run()
    found = float(np.count_nonzero(labels >= 0)) / max(1, labels.shape[0])
    times.append((time.perf_counter() - start, found))
    return labels, distances
