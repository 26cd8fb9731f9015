"""Whether two systems return the same top k for each query.

Answers are kept as two (queries, k) arrays: ``ids`` (corpus rows, -1 past the last hit)
and ``scores`` (NaN past the last hit), best first.

Exact agreement (engines computing the same BM25): a query agrees when both return as many
hits, the i-th best scores match within SCORE_TOLERANCE for every i, each id returned by
both has matching scores, and the ids differ only among points whose score ties the
reference's k-th score within the tolerance (which of several tied points fills the last
places is the engine's choice). Overlap (an engine that scores slightly differently, such
as tantivy with its one-byte length norms): the share of ids two answers have in common.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SCORE_TOLERANCE = 1e-4
# Disagreeing queries quoted in full in the results.
EXAMPLES = 3


def pack(answers: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query (rows, scores) answers as the padded ``ids`` and ``scores`` arrays."""
    ids = np.full((len(answers), k), -1, dtype=np.int64)
    scores = np.full((len(answers), k), np.nan, dtype=np.float64)
    for position, (rows, values) in enumerate(answers):
        if len(rows) > k:
            raise ValueError(f"query {position}: {len(rows)} hits, more than k = {k}")
        ids[position, : len(rows)] = rows
        scores[position, : len(values)] = values
    return ids, scores


def _hits(ids: np.ndarray, scores: np.ndarray) -> dict[int, float]:
    valid = ids >= 0
    return dict(zip(ids[valid].tolist(), scores[valid].tolist()))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= SCORE_TOLERANCE


def query_agrees(found: dict[int, float], reference: dict[int, float]) -> bool:
    """One query's exact agreement (see the module's docstring); hits as id -> score."""
    if len(found) != len(reference):
        return False
    if not reference:
        return True
    ranked_found = sorted(found.values(), reverse=True)
    ranked_reference = sorted(reference.values(), reverse=True)
    if not all(_close(a, b) for a, b in zip(ranked_found, ranked_reference)):
        return False
    if not all(_close(found[i], reference[i]) for i in found.keys() & reference.keys()):
        return False
    cut = ranked_reference[-1]
    differing = (found.keys() - reference.keys()) | (reference.keys() - found.keys())
    return all(_close(found.get(i, reference.get(i, np.nan)), cut) for i in differing)


def exact_agreement(found: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray],
                    query_texts: Sequence[str]) -> dict[str, Any]:
    """How many queries agree exactly; the share with the same ids (the others differ among
    tied points, or disagree); the largest score difference between ids both returned; the
    first EXAMPLES disagreements in full."""
    agreeing, same_ids, largest = 0, 0, 0.0
    examples: list[dict[str, Any]] = []
    for query in range(len(query_texts)):
        mine, theirs = _hits(found[0][query], found[1][query]), _hits(reference[0][query], reference[1][query])
        shared = mine.keys() & theirs.keys()
        same_ids += mine.keys() == theirs.keys()
        largest = max([largest] + [abs(mine[i] - theirs[i]) for i in shared])
        if query_agrees(mine, theirs):
            agreeing += 1
        elif len(examples) < EXAMPLES:
            examples.append({"query": query, "text": query_texts[query],
                             "found": [[i, s] for i, s in mine.items()],
                             "reference": [[i, s] for i, s in theirs.items()]})
    return {"kind": "exact", "queries": len(query_texts), "agreeing": agreeing,
            "fraction": agreeing / len(query_texts) if query_texts else 1.0, "max_score_difference": largest,
            "same_ids": same_ids / len(query_texts) if query_texts else 1.0, "disagreements": examples}


def overlap(found: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Mean over queries of |found & reference| / max(|found|, |reference|) (1 when both are
    empty), and the share of queries with the same set of ids."""
    shares, same = [], 0
    for mine, theirs in zip(found[0], reference[0]):
        a, b = set(mine[mine >= 0].tolist()), set(theirs[theirs >= 0].tolist())
        shares.append(len(a & b) / max(len(a), len(b)) if a or b else 1.0)
        same += a == b
    return {"kind": "overlap", "queries": len(shares), "mean_overlap": float(np.mean(shares)) if shares else 1.0,
            "same_ids": same / len(shares) if shares else 1.0}
