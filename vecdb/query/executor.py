"""Running a plan (:mod:`vecdb.plans`) on a collection's indexes
(:func:`execute`; :func:`graph_runner` for the common case, made once for
the searches of one state), with the points still waiting in the indexing
backlog searched exactly and merged in."""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from vecdb.index.backlog import merge_results
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
    graph, beam, backlog = main.graph, plan.ef or ef or max(main.ef_search, k), indexes.backlog
    if backlog is None:
        return lambda queries: graph.search_checked(queries, k, beam)

    def run(queries: np.ndarray) -> Result:
        waiting = backlog.view()  # before the graph: a point leaves the backlog only once the graph holds it
        found = graph.search_checked(queries, k, beam)
        return found if waiting is None else merge_results(found, waiting.search(queries, k, None), k)
    return run


def execute(plan: Plan, indexes: IndexSet, queries: np.ndarray, k: int, ef: Optional[int],
            allowed: Optional[np.ndarray], times: Optional[StageTimes] = None, *, indexed_any: bool = True) -> Result:
    """The k nearest labels and distances of each query under ``plan``
    (restricted to ``allowed``, a boolean mask over labels, if given). With
    ``times``, appends each stage's time and output size to it (the
    backlog's exact scan, when points wait, as one more stage).
    ``indexed_any=False``: the filter allows none of the indexed points
    (only the backlog is searched)."""
    waiting = indexes.backlog.view() if indexes.backlog is not None else None  # before the indexes (see graph_runner)
    if waiting is not None and allowed is not None:  # counted after the view: points it lacks are indexed
        indexed_any = indexes.main.count(allowed) > 0
    if indexed_any:
        found = _execute_plan(plan, indexes, queries, k, ef, allowed, times)
    else:
        found = np.zeros((queries.shape[0], 0), dtype=np.int64), np.zeros((queries.shape[0], 0), dtype=np.float32)
    if waiting is None:
        return found
    project = indexes.prefixes[plan.dims].project if isinstance(plan, Prefix) else None
    return merge_results(found, _timed(times, lambda: waiting.search(queries, k, allowed, project)), k)


def _execute_plan(plan: Plan, indexes: IndexSet, queries: np.ndarray, k: int, ef: Optional[int],
                  allowed: Optional[np.ndarray], times: Optional[StageTimes]) -> Result:
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
