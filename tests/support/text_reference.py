"""Brute-force oracles for the inverted index: BM25 (Lucene's variant) and
sparse dot products scored point by point, and a comparison of a top-k
result with them that allows only what ties allow."""

from __future__ import annotations

import math
from typing import Dict, Hashable, List, Mapping, Sequence

import numpy as np

Terms = Mapping[str, float]


def bm25_scores(documents: Mapping[Hashable, Terms], query: Terms, k1: float = 1.2,
                b: float = 0.75) -> Dict[Hashable, float]:
    """Every document sharing a term with ``query``: its BM25 score, with
    idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and a document's length the
    sum of its term frequencies."""
    live = {label: terms for label, terms in documents.items() if terms}
    if not live:
        return {}
    n = len(live)
    average = sum(sum(terms.values()) for terms in live.values()) / n
    scores: Dict[Hashable, float] = {}
    for term, weight in query.items():
        holders = [label for label, terms in live.items() if term in terms]
        idf = math.log(1 + (n - len(holders) + 0.5) / (len(holders) + 0.5))
        for label in holders:
            tf = live[label][term]
            length = sum(live[label].values())
            scores[label] = scores.get(label, 0.0) + weight * idf * tf / (tf + k1 * (1 - b + b * length / average))
    return scores


def dot_scores(documents: Mapping[Hashable, Terms], query: Terms) -> Dict[Hashable, float]:
    """Every document sharing a term with ``query``: its dot product with it."""
    scores: Dict[Hashable, float] = {}
    for label, terms in documents.items():
        shared = [term for term in query if term in terms]
        if shared:
            scores[label] = sum(query[term] * terms[term] for term in shared)
    return scores


def assert_top_k(labels: Sequence, scores: Sequence[float], expected: Mapping[Hashable, float], k: int,
                 rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """``labels``/``scores`` are the top ``k`` of ``expected`` (label ->
    score): the same scores in order, each label's own score, and the same
    labels except where scores tie (within the tolerance) at the cut."""
    ranked: List = sorted(expected, key=lambda label: (-expected[label], label))[:k]
    assert len(labels) == len(ranked), (list(labels), ranked)
    assert len(set(labels)) == len(labels)
    np.testing.assert_allclose(np.asarray(scores, dtype=np.float64),
                               [expected[label] for label in ranked], rtol=rtol, atol=atol)
    for label, score in zip(labels, scores):
        assert label in expected, label
        assert math.isclose(expected[label], score, rel_tol=rtol, abs_tol=atol), (label, expected[label], score)
    if ranked:
        cut = expected[ranked[-1]]
        tied = {label for label, score in expected.items() if math.isclose(score, cut, rel_tol=rtol, abs_tol=atol)}
        assert set(labels) - tied == set(ranked) - tied
