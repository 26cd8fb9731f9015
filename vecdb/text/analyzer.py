"""How text becomes terms, for indexing and for queries alike: words split
at Unicode word boundaries (runs of letters, digits and underscores in any
script: ``json_parse`` and ``x86`` stay whole), lowercased, stop words
dropped, then stemmed by a Snowball stemmer (PyStemmer, C)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, List, Tuple

import Stemmer

from vecdb.errors import InvalidPayloadError
from vecdb.text.settings import TextIndexSettings

_WORD = re.compile(r"\w+")


class Analyzer:
    """Turns text into the terms of one text index's settings."""

    def __init__(self, settings: TextIndexSettings) -> None:
        self._stopwords = frozenset(settings.stopwords)
        # Stemmer objects keep a cache and are not shared across threads
        # without the GIL; PyStemmer never releases it.
        self._stemmer = None if settings.language is None else Stemmer.Stemmer(settings.language)

    def terms(self, text: str) -> List[str]:
        """The terms of ``text``, in order, repeats kept."""
        words = _WORD.findall(text.lower())
        if self._stopwords:
            words = [word for word in words if word not in self._stopwords]
        return self._stemmer.stemWords(words) if self._stemmer is not None else words

    def counts(self, field: str, value: Any) -> Tuple[List[str], List[int]]:
        """A payload value's distinct terms and how often each occurs (a
        string, or a list of strings read as one text); InvalidPayloadError
        for anything else."""
        if isinstance(value, str):
            text = value
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            text = "\n".join(value)
        else:
            raise InvalidPayloadError(
                f"payload field {field!r} has a text index, which needs a string (or a list of strings); "
                f"got {type(value).__name__}")
        counted = Counter(self.terms(text))
        return list(counted), list(counted.values())
