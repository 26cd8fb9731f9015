"""A lexical embedding with no model: feature hashing of words and word
pairs. Texts sharing words get similar vectors; synonyms do not. For tests,
demos and a baseline, and usable anywhere since it needs nothing installed."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from vecdb.checks import positive_int
from vecdb.embeddings.protocol import check_texts, unit_rows

_WORD = re.compile(r"\w+")
# Pairs of adjacent words count half as much as words: they add word order
# without letting a shared phrase outweigh shared vocabulary.
_PAIR_WEIGHT = 0.5
MAX_DIM = 65536


@functools.lru_cache(maxsize=65536)
def _feature_hash(feature: str) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and these
    # vectors are stored and compared across processes and machines.
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")


def _features(text: str) -> Tuple[Tuple[str, float], ...]:
    words = _WORD.findall(text.lower())
    pairs = [f"{first} {second}" for first, second in zip(words, words[1:])]
    return tuple([(f"w:{word}", 1.0) for word in words] + [(f"p:{pair}", _PAIR_WEIGHT) for pair in pairs])


class Hashing:
    """Feature hashing of lowercased words and adjacent word pairs into
    ``dim`` buckets, each with a hash-chosen sign (so collisions cancel out
    on average instead of piling up), L2-normalized. A text without words
    embeds as the zero vector. Deterministic across processes and machines.
    """

    kind = "hashing"

    def __init__(self, dim: int = 64) -> None:
        self.dim = positive_int(dim, "dim", maximum=MAX_DIM)
        self.name = f"hashing/{self.dim}"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in _features(text):
                hashed = _feature_hash(feature)
                sign = 1.0 if hashed >> 63 else -1.0
                vectors[row, hashed % self.dim] += sign * weight
        return unit_rows(vectors)

    def config(self) -> Dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "dim": self.dim}

    def __repr__(self) -> str:
        return f"Hashing(dim={self.dim})"
