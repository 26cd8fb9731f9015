"""What a collection reports about its searches: :class:`Explanation`
(:meth:`vecdb.Collection.explain`: the plan a search runs, why, its
estimated cost and the estimates behind it, and, when executed, what each
stage took) and :class:`TuneReport` (:meth:`vecdb.Collection.tune`: the
plans tried and the one kept). Pure data, shared by every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from vecdb.plans import Plan, plan_from_dict, plan_to_dict


@dataclass
class Stage:
    """One step of a plan."""

    description: str
    estimated_us: float  # per query
    actual_us: Optional[float] = None  # per query, when executed
    results: Optional[float] = None  # results it passed on, per query, when executed


@dataclass
class Explanation:
    """The plan of one search (see :meth:`vecdb.Collection.explain`).

    Attributes:
        plan: the plan object (pass it as ``search(..., plan=...)`` to force
            it); of a hybrid search, its vector branch's; None for a search
            by text or a sparse vector alone.
        reason: why the planner chose it ("requested" if it was forced).
        estimated_us: the cost model's estimate per query (one thread).
        estimates: the inputs: ``points``, ``allowed`` (points the filter
            lets through; an exact count), ``selectivity``, ``k``.
        alternatives: every plan considered, with its estimate.
        stages: the plan's steps, with actual time and output size per query
            when executed.
        executed: whether the search ran; then ``total_us`` is its
            measured time per query (filter evaluation included).
    """

    plan: Optional[Plan]
    description: str
    reason: str
    estimated_us: float
    estimates: Dict[str, Any]
    alternatives: List[Tuple[str, float]]
    stages: List[Stage] = field(default_factory=list)
    executed: bool = False
    total_us: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"plan": None if self.plan is None else plan_to_dict(self.plan), "description": self.description, "reason": self.reason,
                "estimated_us": self.estimated_us, "estimates": dict(self.estimates),
                "alternatives": [{"plan": text, "estimated_us": cost} for text, cost in self.alternatives],
                "stages": [vars(stage).copy() for stage in self.stages], "executed": self.executed,
                "total_us": self.total_us}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Explanation":
        """The inverse of :meth:`to_dict` (what a remote database returns)."""
        return cls(plan=None if data["plan"] is None else plan_from_dict(data["plan"]), description=data["description"], reason=data["reason"],
                   estimated_us=data["estimated_us"], estimates=dict(data["estimates"]),
                   alternatives=[(item["plan"], item["estimated_us"]) for item in data["alternatives"]],
                   stages=[Stage(**stage) for stage in data["stages"]], executed=data["executed"],
                   total_us=data["total_us"])

    def __str__(self) -> str:
        estimates = self.estimates
        lines = [f"plan: {self.description}", f"why: {self.reason}",
                 f"estimated: {self.estimated_us:,.0f} us per query"
                 + (f"; measured: {self.total_us:,.0f} us" if self.total_us is not None else ""),
                 f"points: {estimates['points']:,}, allowed by filter: {estimates['allowed']:,} "
                 f"(selectivity {estimates['selectivity']:.4g})", "stages:"]
        for number, stage in enumerate(self.stages, 1):
            actual = ("" if stage.actual_us is None
                      else f"; took {stage.actual_us:,.0f} us, passed on {stage.results:,.1f}")
            lines.append(f"  {number}. {stage.description}: est. {stage.estimated_us:,.0f} us{actual}")
        if len(self.alternatives) > 1:
            lines.append("considered:")
            lines += [f"  {text}: est. {cost:,.0f} us" for text, cost in self.alternatives]
        return "\n".join(lines)


@dataclass
class TuneReport:
    """What :meth:`vecdb.Collection.tune` tried and chose.

    Attributes:
        plan: the chosen plan, now the collection's default.
        recall: its recall@k on the tuning pseudo-queries.
        held_out_recall: its recall@k on a second sample it was not chosen on.
        trials: every plan tried: ``plan`` (dict), ``description``,
            ``recall``, ``latency_us`` (measured, one query per call),
            ``estimated_us`` (cost model), ``meets_target``.
    """

    plan: Plan
    recall: float
    held_out_recall: float
    target_recall: float
    k: int
    queries: int
    seed: int
    trials: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"plan": plan_to_dict(self.plan), "recall": self.recall, "held_out_recall": self.held_out_recall,
                "target_recall": self.target_recall, "k": self.k, "queries": self.queries, "seed": self.seed,
                "trials": [dict(trial) for trial in self.trials]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TuneReport":
        """The inverse of :meth:`to_dict` (what a remote database returns)."""
        return cls(**{**data, "plan": plan_from_dict(data["plan"])})

    def __str__(self) -> str:
        lines = [f"target recall@{self.k} >= {self.target_recall} on {self.queries} pseudo-queries (seed {self.seed})",
                 f"chosen: {self.plan.describe(self.k)}: recall {self.recall:.3f}, "
                 f"held-out {self.held_out_recall:.3f}", "",
                 f"{'plan':<72} {'recall':>7} {'est us':>8} {'meas us':>8}"]
        for trial in self.trials:
            mark = "*" if trial["plan"] == plan_to_dict(self.plan) else " "
            lines.append(f"{mark}{trial['description']:<71} {trial['recall']:>7.3f} {trial['estimated_us']:>8.0f} "
                         f"{trial['latency_us']:>8.0f}")
        return "\n".join(lines)
