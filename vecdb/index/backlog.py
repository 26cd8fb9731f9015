"""Points committed to LMDB but not yet in a collection's graph: the
indexing backlog.

An upsert returns once its batch is committed; the collection's indexer
(:mod:`vecdb.index.indexer`) moves the new points from here into the
graph (and the prefix indexes) afterwards. Until then every search scans
the backlog exactly and merges what it finds with the graph's answer
(:func:`merge_results`), so a search sees every committed point: the
graph's lag shows in speed, never in results.

Writers and the indexer change the backlog under its own lock; searches
read a :class:`BacklogView` without one. A view is never changed once
made: appends write rows past every view's end, a point replaced again
gets a new row (its old one leaves the next view's mask), and rows move
only into new arrays.
"""

from __future__ import annotations

import threading
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from vecdb.native.flat import knn

Result = Tuple[np.ndarray, np.ndarray]
# Maps full vectors to what an index of a prefix holds (PrefixLabelIndex.project).
Projection = Callable[[np.ndarray], np.ndarray]


class BacklogView:
    """The backlog as one search sees it: rows of vectors, their labels,
    and which rows are current (None: all)."""

    __slots__ = ("rows", "labels", "live", "metric")

    def __init__(self, rows: np.ndarray, labels: np.ndarray, live: Optional[np.ndarray], metric: str) -> None:
        self.rows = rows
        self.labels = labels
        self.live = live
        self.metric = metric

    def passing(self, allowed: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Which rows are current and ``allowed`` (a boolean mask over
        labels) lets through (None: all rows)."""
        mask = self.live
        if allowed is not None:
            inside = self.labels < len(allowed)
            passes = np.zeros(len(self.labels), dtype=bool)
            passes[inside] = allowed[self.labels[inside]]
            mask = passes if mask is None else mask & passes
        return mask

    def count(self, allowed: Optional[np.ndarray]) -> int:
        """How many points ``allowed`` lets through."""
        mask = self.passing(allowed)
        return len(self.labels) if mask is None else int(np.count_nonzero(mask))

    def search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray],
               project: Optional[Projection] = None) -> Result:
        """The k nearest backlog labels of each query (exactly), among those
        ``allowed`` (a boolean mask over labels; None: all) lets through;
        with ``project``, of the projected vectors (a prefix index's plan)."""
        mask = self.passing(allowed)
        if mask is not None and not mask.any():
            return _empty(queries.shape[0])
        rows = self.rows if project is None else project(self.rows)
        found, distances = knn(rows, project(queries) if project else queries, min(k, len(rows)),
                               metric=self.metric, allowed=mask)
        return np.where(found >= 0, self.labels[np.maximum(found, 0)], -1), distances


class Backlog:
    """Committed points waiting to be indexed, oldest first, each with the
    change sequence of the commit that wrote it (a point upserted again
    while waiting keeps only its newest vector)."""

    def __init__(self, dim: int, metric: str) -> None:
        self._dim = dim
        self._metric = metric
        self._lock = threading.Lock()
        # Rows are numbered for callers from 0 when first appended; arrays
        # start at row _first (rows move to the front when the arrays grow).
        self._first = 0
        # The newest change sequence of a point handed to indexed() so far.
        self.indexed_through = 0
        self._reset()

    def _reset(self) -> None:
        self._rows = np.zeros((0, self._dim), dtype=np.float32)
        self._labels = np.zeros(0, dtype=np.int64)
        self._sequences = np.zeros(0, dtype=np.int64)
        self._live = np.zeros(0, dtype=bool)
        self._row_of: Dict[int, int] = {}  # label -> its current row (in the arrays)
        self._head = 0  # rows before it are indexed or replaced
        self._end = 0
        self._view: Optional[BacklogView] = None

    def __len__(self) -> int:
        return len(self._row_of)

    def view(self) -> Optional[BacklogView]:
        """What a search scans (None: nothing waits). Take it before
        searching the graph: a point leaves the backlog only after it is in
        the graph, so one of the two always holds it."""
        return self._view

    def holds(self, labels: np.ndarray) -> np.ndarray:
        """Which of ``labels`` wait here."""
        row_of = self._row_of
        return np.fromiter((int(label) in row_of for label in labels), dtype=bool, count=len(labels))

    def append(self, labels: np.ndarray, vectors: np.ndarray, sequence: int) -> None:
        """Add points committed at ``sequence`` (later than any here);
        labels already waiting keep only these new vectors."""
        with self._lock:
            count = len(labels)
            if self._end + count > len(self._rows):
                self._grow(count)
            start, end = self._end, self._end + count
            self._rows[start:end] = vectors
            self._labels[start:end] = labels
            self._sequences[start:end] = sequence
            self._live[start:end] = True
            for row, label in enumerate(labels.tolist(), start):
                replaced = self._row_of.get(label)
                if replaced is not None:
                    self._live[replaced] = False
                self._row_of[label] = row
            self._end = end
            self._publish()

    def discard(self, labels: np.ndarray) -> None:
        """Forget the points of ``labels`` (deleted); others are skipped."""
        with self._lock:
            for label in labels.tolist():
                row = self._row_of.pop(label, None)
                if row is not None:
                    self._live[row] = False
            self._publish()

    def oldest(self, count: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``count`` of the longest-waiting points: their row numbers
        (for :meth:`indexed`), labels and vectors (copies). They end where a
        commit's points end when one does within them, so the indexes often
        hold whole commits (what a snapshot needs). One caller at a time
        takes and hands back rows (the indexer's lock)."""
        with self._lock:
            live = self._head + np.flatnonzero(self._live[self._head:self._end])
            rows = live[:count]
            if len(live) > count:
                sequences = self._sequences[rows]
                ends = np.flatnonzero(sequences[1:] != sequences[:-1])
                if self._sequences[live[count]] == sequences[-1] and len(ends):
                    rows = rows[: ends[-1] + 1]
            return self._first + rows, self._labels[rows], self._rows[rows]

    def indexed(self, numbers: np.ndarray) -> None:
        """The points of rows ``numbers`` (from :meth:`oldest`; appends may
        have moved them since) are in the indexes now; a row whose point was
        replaced or deleted meanwhile is no longer current and stays."""
        with self._lock:
            rows = numbers - self._first
            if len(rows):
                self.indexed_through = max(self.indexed_through, int(self._sequences[rows].max()))
            for row, label in zip(rows.tolist(), self._labels[rows].tolist()):
                if self._row_of.get(label) == row:
                    del self._row_of[label]
                    self._live[row] = False
            if not self._row_of:
                self._first += self._end
                self._reset()
                return
            live = np.flatnonzero(self._live[self._head:self._end])
            self._head += int(live[0])
            self._publish()

    def oldest_sequence(self) -> Optional[int]:
        """The change sequence of the longest-waiting point (None: none)."""
        with self._lock:
            if not self._row_of:
                return None
            first = self._head + int(np.flatnonzero(self._live[self._head:self._end])[0])
            return int(self._sequences[first])

    def memory_bytes(self) -> int:
        return self._rows.nbytes + self._labels.nbytes + self._sequences.nbytes + self._live.nbytes

    def _grow(self, count: int) -> None:
        """Room for ``count`` more rows, in new arrays (views keep the old
        ones), the waiting rows moved to the front."""
        waiting = self._end - self._head
        capacity = max(64, 2 * (waiting + count))
        rows = np.zeros((capacity, self._dim), dtype=np.float32)
        labels = np.zeros(capacity, dtype=np.int64)
        sequences = np.zeros(capacity, dtype=np.int64)
        live = np.zeros(capacity, dtype=bool)
        old = slice(self._head, self._end)
        rows[:waiting], labels[:waiting] = self._rows[old], self._labels[old]
        sequences[:waiting], live[:waiting] = self._sequences[old], self._live[old]
        self._row_of = {label: row - self._head for label, row in self._row_of.items()}
        self._rows, self._labels, self._sequences, self._live = rows, labels, sequences, live
        self._first += self._head
        self._head, self._end = 0, waiting

    def _publish(self) -> None:
        if not self._row_of:
            self._view = None
            return
        window = slice(self._head, self._end)
        live = self._live[window]
        self._view = BacklogView(self._rows[window], self._labels[window],
                                 None if live.all() else live.copy(), self._metric)


def merge_results(first: Result, second: Result, k: int) -> Result:
    """The k nearest of two searches' answers for the same queries (labels
    ``-1`` padded), each label once (at its smaller distance), ties broken
    by the smaller label. Vectorized over the queries: a batch merges in a
    few array passes."""
    labels = np.concatenate([first[0], second[0]], axis=1).astype(np.int64, copy=False)
    distances = np.concatenate([first[1], second[1]], axis=1).astype(np.float32, copy=False)
    queries, width = labels.shape
    if queries <= _FEW_QUERIES:
        return _merge_each(labels, distances, min(k, width))
    distances = np.where(labels < 0, np.float32(np.inf), distances).ravel()
    labels = labels.ravel()
    rows = np.repeat(np.arange(queries), width)
    # A label in both answers (the indexer moving it meanwhile): keep its first copy by distance.
    by_label = np.lexsort((distances, labels, rows))
    repeated = np.zeros(len(labels), dtype=bool)
    repeated[1:] = ((labels[by_label][1:] == labels[by_label][:-1]) & (rows[by_label][1:] == rows[by_label][:-1])
                    & (labels[by_label][1:] >= 0))
    gone = by_label[repeated]
    labels[gone], distances[gone] = -1, np.inf
    # Per query (the rows key first keeps each query's block together): by distance, then label, padding last.
    order = np.lexsort((np.where(labels < 0, np.iinfo(np.int64).max, labels), distances, rows)).reshape(queries, width)
    keep = min(k, width)
    return labels[order][:, :keep], distances[order][:, :keep]


# Up to this many queries, merging query by query costs less than the array
# passes (each a few microseconds whatever the size).
_FEW_QUERIES = 8


def _merge_each(labels: np.ndarray, distances: np.ndarray, keep: int) -> Result:
    """:func:`merge_results` of the concatenated answers, query by query."""
    out_labels = np.full((labels.shape[0], keep), -1, dtype=np.int64)
    out_distances = np.full((labels.shape[0], keep), np.inf, dtype=np.float32)
    for row, (row_labels, row_distances) in enumerate(zip(labels.tolist(), distances.tolist())):
        best: Dict[int, float] = {}
        for label, distance in zip(row_labels, row_distances):
            if label >= 0 and distance < best.get(label, np.inf):
                best[label] = distance
        for column, (label, distance) in enumerate(sorted(best.items(), key=_by_distance)[:keep]):
            out_labels[row, column], out_distances[row, column] = label, distance
    return out_labels, out_distances


def _by_distance(pair: Tuple[int, float]) -> Tuple[float, int]:
    return pair[1], pair[0]


def _empty(queries: int) -> Result:
    return np.zeros((queries, 0), dtype=np.int64), np.zeros((queries, 0), dtype=np.float32)
