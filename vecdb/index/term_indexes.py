"""The in-memory inverted indexes of a collection (``_core.InvertedIndex``,
top-k by block-max MaxScore): for each text-indexed payload field, its
analyzer and a BM25 index over the labels of the points whose payload has
text there; for each declared sparse vector, a dot-product index.

A collection changes them right after each commit, under its write lock
(as it does its vector indexes), from what it analyzed and checked before
the commit and stored in it (:mod:`vecdb.storage.text_entries`)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from vecdb import _core
from vecdb.errors import InvalidArgumentError
from vecdb.payload_fields import MISSING, split_path, value_at
from vecdb.storage.text_entries import Analyzed, Sparse
from vecdb.text.analyzer import Analyzer
from vecdb.text.settings import TextIndexSettings

# BM25's collection statistics for a query: (points with text, their total
# length, {term: points holding it}).
Corpus = Tuple[float, float, Dict[str, float]]


class TextIndex:
    """One field's analyzer and inverted index."""

    def __init__(self, field: str, settings: TextIndexSettings) -> None:
        self.field = field
        self.settings = settings
        self.analyzer = Analyzer(settings)
        self.index = _core.InvertedIndex("bm25", k1=settings.k1, b=settings.b)

    def analyze(self, payloads: Iterable[Optional[Dict[str, Any]]]) -> List[Optional[Analyzed]]:
        """Each payload's terms for this field (None: no text there)."""
        path = split_path(self.field)
        found: List[Optional[Analyzed]] = []
        for payload in payloads:
            value = MISSING if not payload else value_at(payload, path)
            found.append(None if value is MISSING or value is None else self.analyzer.counts(self.field, value))
        return found

    def set(self, labels: Sequence[int], analyzed: Sequence[Optional[Analyzed]]) -> None:
        """Points' terms as analyzed (None or no terms: not in the index)."""
        terms: List[str] = []
        counts: List[int] = []
        offsets = np.zeros(len(labels) + 1, dtype=np.int64)
        for row, item in enumerate(analyzed):
            if item is not None:
                terms.extend(item[0])
                counts.extend(item[1])
            offsets[row + 1] = len(terms)
        self.index.set(np.asarray(labels, dtype=np.int64), offsets, terms, np.asarray(counts, dtype=np.float32))

    def query_terms(self, text: str) -> List[str]:
        """The distinct terms of a query."""
        return list(dict.fromkeys(self.analyzer.terms(text)))

    def search(self, text: str, k: int, allowed: Optional[np.ndarray],
               corpus: Optional[Corpus] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels for ``text`` and their BM25 scores (best
        first), among ``allowed`` (a packed bitset by label, or None),
        scored with ``corpus`` statistics if given (see :meth:`statistics`)."""
        terms, weights, statistics = self._query(text, corpus)
        return self.index.search(terms, weights, k, allowed, statistics)

    def start_search(self, text: str, k: int, allowed: Optional[np.ndarray], corpus: Optional[Corpus] = None) -> Any:
        """:meth:`search` started on the native background thread (the text
        analyzed here first), for a caller to overlap with its own work:
        ``.result()`` gives what :meth:`search` returns."""
        terms, weights, statistics = self._query(text, corpus)
        return self.index.start_search(terms, weights, k, allowed, statistics)

    def _query(self, text: str, corpus: Optional[Corpus]) -> Tuple[List[str], np.ndarray, Any]:
        """A query's terms, their weights and the statistics to score them with (None: this index's)."""
        terms = self.query_terms(text)
        statistics = None if corpus is None else (corpus[0], corpus[1], [corpus[2].get(t, 0.0) for t in terms])
        return terms, np.ones(len(terms), dtype=np.float32), statistics

    def statistics(self, text: str) -> Corpus:
        """What BM25 scores ``text`` with here: (points with text, their
        total length, {term: points holding it}). Summed over a sharded
        collection's shards and given back to :meth:`search`, every shard
        scores as one index over all of them would."""
        terms = self.query_terms(text)
        points, length, frequencies = self.index.statistics(terms)
        return points, length, dict(zip(terms, frequencies.tolist()))


class SparseIndex:
    """One sparse vector's inverted index (dot product)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.index = _core.InvertedIndex("dot")

    def set(self, labels: Sequence[int], vectors: Sequence[Optional[Sparse]]) -> None:
        """Points' sparse vectors (None: not in the index)."""
        present = [vector for vector in vectors if vector is not None]
        offsets = np.zeros(len(labels) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([0 if vector is None else len(vector[0]) for vector in vectors])
        indices = np.concatenate([vector[0] for vector in present]) if present else np.zeros(0, dtype=np.uint32)
        values = np.concatenate([vector[1] for vector in present]) if present else np.zeros(0, dtype=np.float32)
        self.index.set_sparse(np.asarray(labels, dtype=np.int64), offsets, indices, values)

    def search(self, query: Sparse, k: int, allowed: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` points with the largest dot product with ``query``
        among those sharing a dimension with it (best first)."""
        return self.index.search_sparse(query[0], query[1], k, allowed)

    def start_search(self, query: Sparse, k: int, allowed: Optional[np.ndarray]) -> Any:
        """:meth:`search` started on the native background thread (see :meth:`TextIndex.start_search`)."""
        return self.index.start_sparse_search(query[0], query[1], k, allowed)


class TermIndexes:
    """The inverted indexes of one collection: text by field, sparse vectors by name."""

    def __init__(self, settings: Mapping[str, TextIndexSettings], sparse: Sequence[str] = ()) -> None:
        self.by_field = {field: TextIndex(field, spec) for field, spec in settings.items()}
        self.by_sparse = {name: SparseIndex(name) for name in sparse}

    def find(self, field: Any) -> TextIndex:
        """The text index ``field`` names, or the only one (None);
        InvalidArgumentError naming what exists otherwise."""
        if field is None:
            if len(self.by_field) == 1:
                return next(iter(self.by_field.values()))
            if not self.by_field:
                raise InvalidArgumentError("the collection has no text index: create_text_index(field) makes one")
            raise InvalidArgumentError(f"the collection has {len(self.by_field)} text indexes "
                                       f"({', '.join(sorted(self.by_field))}): say which with text_field=")
        index = self.by_field.get(field) if isinstance(field, str) else None
        if index is None:
            raise InvalidArgumentError(f"text_field {field!r} has no text index (text indexes: "
                                       f"{', '.join(sorted(self.by_field)) or 'none'})")
        return index

    def with_index(self, index: TextIndex) -> "TermIndexes":
        """These indexes with ``index`` added (or replacing its field's)."""
        changed = TermIndexes({})
        changed.by_field = {**self.by_field, index.field: index}
        changed.by_sparse = self.by_sparse
        return changed

    def without(self, field: str) -> "TermIndexes":
        changed = TermIndexes({})
        changed.by_field = {name: index for name, index in self.by_field.items() if name != field}
        changed.by_sparse = self.by_sparse
        return changed

    def analyze(self, payloads: Sequence[Optional[Dict[str, Any]]]) -> Dict[str, List[Optional[Analyzed]]]:
        """Each indexed field's terms of each payload (raises
        InvalidPayloadError for a value that is not text)."""
        return {field: index.analyze(payloads) for field, index in self.by_field.items()}

    def set(self, labels: np.ndarray, analyzed: Mapping[str, Sequence[Optional[Analyzed]]],
            sparse: Mapping[str, Sequence[Optional[Sparse]]]) -> None:
        """Points written: their text's terms by field, their sparse vectors by name."""
        self.set_text(labels, analyzed)
        label_list = labels.tolist()
        for name, sparse_index in self.by_sparse.items():
            sparse_index.set(label_list, sparse[name])

    def set_text(self, labels: np.ndarray, analyzed: Mapping[str, Sequence[Optional[Analyzed]]]) -> None:
        """Points whose payload changed (their sparse vectors did not)."""
        label_list = labels.tolist()
        for field, index in self.by_field.items():
            index.set(label_list, analyzed[field])

    def remove(self, labels: np.ndarray) -> None:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        for text_index in self.by_field.values():
            text_index.index.remove(labels)
        for sparse_index in self.by_sparse.values():
            sparse_index.index.remove(labels)
