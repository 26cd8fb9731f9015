"""What a text index is set up with: its language (stemming), stop words
and BM25 parameters, checked once and stored with the collection's config."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import Stemmer

from vecdb.errors import InvalidArgumentError
from vecdb.text.stopwords import BUILT_IN


@dataclass(frozen=True)
class TextIndexSettings:
    """``language``: a Snowball stemmer's name (``Stemmer.algorithms()``:
    "english", "french", "german", ...) or None for no stemming;
    ``stopwords``: the words left out (lowercase, before stemming);
    ``k1``, ``b``: BM25's term-frequency saturation and length
    normalisation (Lucene's defaults)."""

    language: Optional[str] = "english"
    stopwords: Tuple[str, ...] = ()
    k1: float = 1.2
    b: float = 0.75

    @classmethod
    def new(cls, language: Any = "english", stopwords: Any = None, k1: Any = 1.2,
            b: Any = 0.75) -> "TextIndexSettings":
        """Checked settings; ``stopwords=None`` takes the language's
        built-in list (English has one), False none, a list those words."""
        if language is not None:
            if not isinstance(language, str) or language.lower() not in Stemmer.algorithms():
                raise InvalidArgumentError(
                    f"language must be None (no stemming) or one of {', '.join(sorted(Stemmer.algorithms()))}; "
                    f"got {language!r}")
            language = language.lower()
        return cls(language=language, stopwords=_stopwords(stopwords, language), k1=_number(k1, "k1", 0.0, math.inf),
                   b=_number(b, "b", 0.0, 1.0))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TextIndexSettings":
        return cls(language=data["language"], stopwords=tuple(data["stopwords"]), k1=float(data["k1"]),
                   b=float(data["b"]))

    def to_dict(self) -> Dict[str, Any]:
        return {"language": self.language, "stopwords": list(self.stopwords), "k1": self.k1, "b": self.b}


def _stopwords(stopwords: Any, language: Optional[str]) -> Tuple[str, ...]:
    if stopwords is None:
        return tuple(BUILT_IN.get(language or "", ()))
    if stopwords is False:
        return ()
    if isinstance(stopwords, str) or not isinstance(stopwords, Sequence) or \
            not all(isinstance(word, str) and word for word in stopwords):
        raise InvalidArgumentError("stopwords must be None (the language's list), False, or a list of words")
    return tuple(sorted({word.lower() for word in stopwords}))


def _number(value: Union[int, float], name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be a finite number between {low:g} and {high:g}, got {value!r}")
    return float(value)
