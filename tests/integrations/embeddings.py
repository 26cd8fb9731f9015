"""Deterministic local embeddings for the adapter tests: a bag of hashed
words, so texts sharing words are near each other and a query finds the
texts with its words (no model, no network)."""

from __future__ import annotations

import hashlib
import re
from typing import List

import numpy as np

DIM = 32


def bag_of_words(text: str, dim: int = DIM) -> List[float]:
    """The unit sum of one fixed random vector per lowercased word (a
    constant vector for a text without words)."""
    vector = np.zeros(dim)
    for word in re.findall(r"\w+", text.lower()):
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        vector += np.random.default_rng(seed).standard_normal(dim)
    if not vector.any():
        vector[0] = 1.0
    return (vector / np.linalg.norm(vector)).tolist()
