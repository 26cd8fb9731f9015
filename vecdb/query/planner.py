"""The query planner: turns a search (k, filter, ef, dims, plan) into a plan
(:mod:`vecdb.plans`) by comparing estimated costs.

Inputs: the collection's size, its indexes (a graph or exact main index,
PQ codes or vectors, MRL prefix indexes) and, for a filtered search, how
many points the filter allows. That count is exact: the search needs the
filter's mask anyway (payload indexes answer it with one lookup per
condition, and masks are cached per filter), so counting its bits is the
cheapest estimate there is.

Costs are in microseconds of one thread for one query, from a model whose
constants were fitted on this project's reference machine: what matters is
their ratios, which decide the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

from vecdb.errors import InvalidArgumentError
from vecdb.plans import Funnel, Graph, Plan, Prefix, Scan

# Cost model, microseconds of one thread per query; each constant's provenance: bench/results/planner/calibration.md
SCAN_CALL_US = 35.0
SCAN_SLOT_US = 0.00186
SCAN_VECTOR_US = 0.0113
SCAN_ELEMENT_US = 0.000666
GRAPH_CALL_US = 60.0
GRAPH_NODE_US = 0.50
GRAPH_ELEMENT_US = 0.000525
GRAPH_VISITS_PER_EF = 4.0
GRAPH_VISITS_BASE = 50.0
GRAPH_FILTER_EXPONENT = 0.9
GRAPH_FILTER_SLOT_US = 0.0004
# Not from the calibration (run before filtered searches walked two hops): native searches of
# 50k x 384 (M=16) at ef 32 and 64 with 5-25% allowed took 2.0-2.8x an unfiltered search's time.
GRAPH_TWO_HOP_FACTOR = 2.5
RERANK_CALL_US = 20.0
RERANK_VECTOR_US = 0.1
RERANK_ELEMENT_US = 0.00045
LMDB_RERANK_US = 3.0
ADC_CODE_BYTE_US = 0.0004

# Untuned MRL collections funnel through the largest prefix of at most
# DEFAULT_PREFIX_SHARE of the dimension, re-ranking DEFAULT_CANDIDATES_PER_K
# candidates per requested neighbour (at least DEFAULT_MIN_CANDIDATES):
# conservative settings; Collection.tune() finds the cheapest that meet a
# recall target.
DEFAULT_PREFIX_SHARE = 1 / 3
DEFAULT_CANDIDATES_PER_K = 10
DEFAULT_MIN_CANDIDATES = 100

# When a filtered graph search walks two hops (csrc/hnsw/graph.h, "Filtered
# search": kTwoHopMinLists, kTwoHopMaxShare): filters letting through a share
# s of the points with TWO_HOP_MIN_LISTS / (2 * M) <= s < TWO_HOP_MAX_SHARE.
TWO_HOP_MIN_LISTS = 1.5
TWO_HOP_MAX_SHARE = 0.25
# An HNSW index's exact scan under a filter keeping fewer than one point in
# this many looks the allowed ids up rather than testing every slot
# (csrc/hnsw/hnsw_index.h, kSparseFilterSlots).
SPARSE_FILTER_SLOTS = 8
# A repeated filter (its mask cached) scans the same vectors again: while they
# fit in RESIDENT_SCAN_BYTES, a share of a server CPU's last-level cache, they
# come from there, at RESIDENT_SCAN_FACTOR of a vector's cost. From the
# calibration's scans of the same mask against a fresh one per query
# (npm-minilm-384, bench/results/planner/calibration.json): 5,000 allowed
# (7.7 MB) 207 against 606 us, 1,500 82 against 182 us (per vector 0.35x);
# 15,000 (23 MB) 1,640 against 1,862 us, no longer held.
RESIDENT_SCAN_FACTOR = 0.35
RESIDENT_SCAN_BYTES = 8 << 20


@dataclass(frozen=True)
class SearchShape:
    """What the planner knows about a collection."""

    count: int  # points in the main index
    dim: int
    main_kind: str  # "graph", "exact", "pq-graph" or "pq-scan"
    ef_search: int  # the collection's default beam width
    graph_m: int = 16  # HNSW links per node: where a filtered graph search walks two hops
    prefix_dims: Tuple[int, ...] = ()  # prefix indexes that exist now
    prefix_kind: str = "graph"  # "graph" or "exact"
    pq_m: int = 0  # code bytes (PQ main index)
    pq_rerank: int = 0  # candidates a PQ main index re-ranks
    default_plan: Optional[Plan] = None  # from Collection.tune()
    default_plan_k: int = 0  # the k it was tuned for: used for searches of at most that many
    prefixes_missing: str = ""  # why prefix indexes are not there yet (empty: they are, or none were asked for)


@dataclass(frozen=True)
class Choice:
    """A chosen plan, why, and the estimates behind it (shared by every
    search that made the same choice: read, never change)."""

    plan: Plan
    reason: str
    cost_us: float
    estimates: Dict[str, Any]
    alternatives: Tuple[Tuple[Plan, float], ...]  # every plan considered, with its estimated microseconds


# Searches repeat: the same collection state, k and filter size give the
# same choice, so it is computed once (all arguments are hashable values).
@lru_cache(maxsize=1024)
def choose(shape: SearchShape, k: int, *, allowed: Optional[int], ef: Optional[int] = None,
           dims: Optional[int] = None, plan: Optional[Plan] = None, repeated: bool = False) -> Choice:
    """The plan for a search of ``k`` neighbours; ``allowed`` is how many
    points the filter lets through (None: no filter); ``repeated``: the
    filter ran before (its mask was cached), so a scan may find the allowed
    vectors in the CPU's cache."""
    selectivity = 1.0 if allowed is None or shape.count == 0 else min(1.0, allowed / shape.count)
    estimates = {"points": shape.count, "allowed": shape.count if allowed is None else allowed,
                 "selectivity": selectivity, "k": k, "repeated_filter": repeated and allowed is not None}
    if plan is not None and dims is not None:
        raise InvalidArgumentError("pass dims= or plan=, not both (dims=d is plan=vecdb.plans.Prefix(dims=d))")
    if dims is not None:
        plan = Prefix(dims=dims, ef=ef)
    if plan is not None:
        check_available(plan, shape)
        cost = estimate(plan, shape, k, selectivity, ef, repeated)
        return Choice(plan, "requested", cost, estimates, ((plan, cost),))
    tuned = _tuned_plan(shape, k, ef)
    if tuned is not None and allowed is None:  # tune() measured it against the rest: no estimate overrides that
        cost = estimate(tuned, shape, k, selectivity, ef, repeated)
        return Choice(tuned, _reason(tuned, shape, allowed, tuned), cost, estimates, ((tuned, cost),))
    candidates = _candidate_plans(shape, k, allowed, ef, tuned)
    costed = tuple((candidate, estimate(candidate, shape, k, selectivity, ef, repeated)) for candidate in candidates)
    best, cost = min(costed, key=lambda item: item[1])
    return Choice(best, _reason(best, shape, allowed, tuned), cost, estimates, costed)


def check_available(plan: Plan, shape: SearchShape) -> None:
    """Raise InvalidArgumentError if the collection cannot run ``plan``."""
    if isinstance(plan, Graph) and shape.main_kind not in ("graph", "pq-graph"):
        why = ("it searches exactly until its PQ codebooks are trained" if shape.main_kind == "exact" and shape.pq_m
               else "its index is vecdb.Flat()" if shape.main_kind in ("exact", "pq-scan") else "")
        raise InvalidArgumentError(f"a Graph plan needs an HNSW index; this collection has none ({why})")
    if isinstance(plan, (Funnel, Prefix)) and plan.dims not in shape.prefix_dims:
        if shape.prefixes_missing:
            raise InvalidArgumentError(f"no prefix index of {plan.dims} dimensions yet: {shape.prefixes_missing}")
        if not shape.prefix_dims:
            raise InvalidArgumentError(f"dims={plan.dims}: the collection has no prefix indexes "
                                       "(create it with mrl_dims=[...])")
        raise InvalidArgumentError(f"dims={plan.dims} is not an indexed prefix; the collection indexes "
                                   f"{list(shape.prefix_dims)} (mrl_dims), and {shape.dim} in full")


def estimate(plan: Plan, shape: SearchShape, k: int, selectivity: float, ef: Optional[int],
             repeated: bool = False) -> float:
    """Estimated microseconds of one query under ``plan`` (``repeated``: as in :func:`choose`)."""
    return sum(cost for _, cost in stages(plan, shape, k, selectivity, ef, repeated))


def stages(plan: Plan, shape: SearchShape, k: int, selectivity: float,
           ef: Optional[int], repeated: bool = False) -> List[Tuple[str, float]]:
    """The stages ``plan`` runs, in order, with their estimated microseconds."""
    n, allowed = shape.count, max(1.0, selectivity * shape.count)
    pq = shape.main_kind.startswith("pq")
    if isinstance(plan, Scan):
        if pq:
            width = max(shape.pq_rerank, k)
            return [(f"PQ code scan ({shape.pq_m} bytes) -> {width} candidates", _adc_scan(n, allowed, shape.pq_m)),
                    (f"exact re-rank from LMDB -> top {k}", _lmdb_rerank(width))]
        resident = repeated and selectivity < 1.0 and allowed * shape.dim * 4 <= RESIDENT_SCAN_BYTES
        return [(f"exact scan ({shape.dim} dims{', cached' if resident else ''}) -> top {k}",
                 _scan(n, allowed, shape.dim, shape.main_kind == "graph", resident))]
    if isinstance(plan, Graph):
        beam = max(plan.ef or ef or shape.ef_search, k)
        if pq:
            width = max(shape.pq_rerank, k)
            return [(f"HNSW over PQ codes (ef={max(beam, width)}) -> {width} candidates",
                     _graph(n, max(beam, width), selectivity, shape.pq_m, shape.graph_m)),
                    (f"exact re-rank from LMDB -> top {k}", _lmdb_rerank(width))]
        return [(f"HNSW ({shape.dim} dims, ef={beam}) -> top {k}",
                 _graph(n, beam, selectivity, shape.dim, shape.graph_m))]
    if isinstance(plan, Funnel):  # the beam is at least the shortlist (see vecdb.query.executor)
        width = max(plan.candidates, k)
        beam = max(plan.ef or ef or 0, width)
    else:
        width, beam = k, max(plan.ef or ef or shape.ef_search, k)
    if shape.prefix_kind == "exact":
        shortlist = (f"exact scan of the {plan.dims}-dim prefix -> {width}", _scan(n, allowed, plan.dims))
    else:
        shortlist = (f"HNSW over the {plan.dims}-dim prefix (ef={beam}) -> {width}",
                     _graph(n, beam, selectivity, plan.dims, shape.graph_m))
    if isinstance(plan, Prefix):
        return [shortlist]
    rerank = ((f"exact re-rank from LMDB ({shape.dim} dims) -> top {k}", _lmdb_rerank(width)) if pq
              else (f"exact re-rank in RAM ({shape.dim} dims) -> top {k}", _rerank(width, shape.dim)))
    return [shortlist, rerank]


def backlog_stage(waiting: int, dim: int, k: int, selectivity: float) -> Tuple[str, float]:
    """The stage every plan ends with while ``waiting`` points wait for the
    background indexer (see :mod:`vecdb.index.backlog`)."""
    return (f"exact scan of the {waiting:,} points waiting to be indexed, merged -> top {k}",
            _scan(waiting, max(1.0, selectivity * waiting), dim))


def default_funnel(shape: SearchShape, k: int) -> Funnel:
    """The funnel an untuned MRL collection runs."""
    fitting = [d for d in shape.prefix_dims if d <= DEFAULT_PREFIX_SHARE * shape.dim]
    dims = max(fitting) if fitting else min(shape.prefix_dims)
    return Funnel(dims=dims, candidates=max(DEFAULT_MIN_CANDIDATES, DEFAULT_CANDIDATES_PER_K * k))


def _tuned_plan(shape: SearchShape, k: int, ef: Optional[int]) -> Optional[Plan]:
    """The plan Collection.tune() stored, if it applies to this search
    (tuned for at least k neighbours; a search's own ef replaces its beam)."""
    plan = shape.default_plan
    if plan is None or k > shape.default_plan_k or not _runnable(plan, shape):
        return None
    if ef is not None and isinstance(plan, (Graph, Funnel)):
        plan = replace(plan, ef=ef)
    return plan


def _candidate_plans(shape: SearchShape, k: int, allowed: Optional[int], ef: Optional[int],
                     tuned: Optional[Plan]) -> List[Plan]:
    plans: List[Plan] = [Scan()]
    if tuned is not None:
        plans.append(tuned)
    elif shape.prefix_dims:
        plans.append(default_funnel(shape, k))
    elif shape.main_kind in ("graph", "pq-graph"):
        plans.append(Graph(ef=ef))
    if allowed is not None and shape.main_kind in ("graph", "pq-graph") and not any(isinstance(p, Graph)
                                                                                  for p in plans):
        plans.append(Graph(ef=ef))
    return plans


def _runnable(plan: Plan, shape: SearchShape) -> bool:
    try:
        check_available(plan, shape)
    except InvalidArgumentError:
        return False
    return True


def _reason(plan: Plan, shape: SearchShape, allowed: Optional[int], tuned: Optional[Plan]) -> str:
    if isinstance(plan, Scan):
        if allowed is not None:
            return "the filter keeps few enough points that scanning them is cheaper than a filtered graph search"
        if shape.main_kind in ("exact", "pq-scan"):
            return "the collection's index is a scan (vecdb.Flat)"
        return "the collection is small enough that a scan is cheaper than a graph search"
    if plan is tuned:
        return "the collection's tuned plan (Collection.tune)"
    if isinstance(plan, Funnel):
        return "MRL prefix index: shortlist on the prefix, re-rank at full dimension (untuned defaults)"
    return "graph search is cheaper than a scan at this size" + (" and filter selectivity" if allowed else "")


def _scan(n: float, allowed: float, dims: int, looks_up_few: bool = False, resident: bool = False) -> float:
    """An exact scan of ``allowed`` of ``n`` points; ``looks_up_few``: the scan
    reads a filter keeping under 1 in SPARSE_FILTER_SLOTS points id by id
    instead of testing every slot (an HNSW index's, csrc/hnsw/hnsw_index.h);
    ``resident``: the allowed vectors are in the CPU's cache."""
    slots = 0.0 if looks_up_few and allowed * SPARSE_FILTER_SLOTS < n else n
    per_vector = (SCAN_VECTOR_US + SCAN_ELEMENT_US * dims) * (RESIDENT_SCAN_FACTOR if resident else 1.0)
    return SCAN_CALL_US + SCAN_SLOT_US * slots + per_vector * allowed


def _graph(n: float, ef: int, selectivity: float, dims: int, m: int) -> float:
    visits = (GRAPH_VISITS_PER_EF * ef + GRAPH_VISITS_BASE) * _filtered_visits(selectivity, m)
    filtering = GRAPH_FILTER_SLOT_US * n if selectivity < 1.0 else 0.0
    return GRAPH_CALL_US + filtering + (GRAPH_NODE_US + GRAPH_ELEMENT_US * dims) * min(visits, max(n, 1.0))


def _filtered_visits(selectivity: float, m: int) -> float:
    """How many times an unfiltered search's work a graph search under a filter
    keeping ``selectivity`` does: a two-hop walk scores only allowed points, a
    walk through every point visits more the fewer it may return."""
    if selectivity >= 1.0:
        return 1.0
    if TWO_HOP_MIN_LISTS / (2 * max(m, 1)) <= selectivity < TWO_HOP_MAX_SHARE:
        return GRAPH_TWO_HOP_FACTOR
    return 1.0 / max(selectivity, 1e-9) ** GRAPH_FILTER_EXPONENT


def _rerank(candidates: int, dims: int) -> float:
    return RERANK_CALL_US + (RERANK_VECTOR_US + RERANK_ELEMENT_US * dims) * candidates


def _lmdb_rerank(candidates: int) -> float:
    return LMDB_RERANK_US * candidates


def _adc_scan(n: float, allowed: float, m: int) -> float:
    return SCAN_CALL_US + SCAN_SLOT_US * n + ADC_CODE_BYTE_US * allowed * max(m, 1)
