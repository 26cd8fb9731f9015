"""The hybrid quality benchmark's relevance set and measures (python -m bench.hybrid.quality):
queries are made from their target's own words as the docstring says, seeded, and the
measures count what they claim. (Its end-to-end run needs wordllama, a bench extra.)"""

from __future__ import annotations

import re

import pytest

from bench.hybrid.quality import KEYWORDS, MIN_WORDS, measure, relevance_set

TEXTS = [f"package {i} parses json fast with {'rare' + str(i)} and common words here" for i in range(40)] + [
    "too short", "json json json"]


def test_queries_come_from_their_targets_words():
    sets = relevance_set(TEXTS, 20, seed=3)
    assert sets == relevance_set(TEXTS, 20, seed=3) and sets != relevance_set(TEXTS, 20, seed=4)
    for name in ("partial", "keywords"):
        pairs = sets[name]
        assert len(pairs) == 20 and len({rows[0] for rows, _ in pairs}) == 20
        for rows, query in pairs:
            assert len(rows) == 1 and len(re.findall(r"\w+", TEXTS[rows[0]])) >= MIN_WORDS
            target_words = re.findall(r"\w+", TEXTS[rows[0]].lower())
            assert set(query.lower().split()) <= set(target_words)
    for rows, query in sets["partial"]:
        assert query in " ".join(re.findall(r"\w+", TEXTS[rows[0]]))  # a run of its words, in order
    for rows, query in sets["keywords"]:
        assert len(query.split()) == KEYWORDS and f"rare{rows[0]}" in query.split()  # its rarest word first


def test_measures():
    found = [[5, 1, 2], [9, 8, 7], [3]]
    relevant = [[1], [7, 8], [4]]
    scores = measure(found, relevant)
    assert scores["recall@1"] == 0
    assert scores["recall@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert scores["mrr@10"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert measure([[4]], [[4, 5]]) == {"recall@1": 1.0, "recall@10": 0.5, "mrr@10": 1.0}
