"""Recall@k of a server's answers, and the smallest search ef that reaches the target recall
("at equal recall": each system is measured at its own cheapest ef reaching the same target)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Sequence

import numpy as np

from bench.datasets import Dataset
from bench.recall import recall_at_k

DEFAULT_EF_CANDIDATES = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def ids_matrix(answers: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """One row of ``k`` ids per answer, -1 where an answer had fewer."""
    matrix = np.full((len(answers), k), -1, dtype=np.int64)
    for row, ids in enumerate(answers):
        found = list(ids)[:k]
        matrix[row, :len(found)] = found
    return matrix


def answers_recall(answers: Mapping[int, Sequence[int]], true_ids: np.ndarray, dataset: Dataset) -> float:
    """Mean recall@k (k = ``true_ids.shape[1]``) over the queries answered: ``answers`` maps a
    query's row to the ids returned for it, best first."""
    rows = np.array(sorted(answers), dtype=np.int64)
    if rows.size == 0:
        raise ValueError("no answers to compute recall from")
    found = ids_matrix([answers[row] for row in rows], true_ids.shape[1])
    return recall_at_k(found, true_ids[rows], dataset.base, dataset.queries[rows], dataset.metric)


@dataclass(frozen=True)
class EfChoice:
    """The ef chosen, the recall it reached, and every (ef, recall) tried on the way."""

    ef: int
    recall: float
    sweep: List[Dict[str, float]] = field(default_factory=list)


def choose_ef(recall_at: Callable[[int], float], candidates: Sequence[int], target: float) -> EfChoice:
    """The smallest of ``candidates`` whose recall (``recall_at(ef)``) is at least ``target``.
    Candidates are tried in increasing order and the sweep stops at the first that reaches it;
    raises ValueError when none does."""
    sweep: List[Dict[str, float]] = []
    for ef in sorted(set(candidates)):
        recall = recall_at(ef)
        sweep.append({"ef": ef, "recall": recall})
        if recall >= target:
            return EfChoice(ef=ef, recall=recall, sweep=sweep)
    tried = ", ".join(f"ef={point['ef']}: {point['recall']:.4f}" for point in sweep)
    raise ValueError(f"no ef reached recall {target}: {tried}")
