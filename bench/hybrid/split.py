"""Where a hybrid search's time goes, measured inside the real call without changing vecdb.

For an instrumented pass (after the timed runs, never during them), this process wraps
with timers the three steps ``Collection._search_branches`` runs: the dense branch
(``Searcher.dense_branch``), the text branch and the fusion (``vecdb.collection.fuse``). The
text branch runs on a native background thread while the caller runs the dense branch: its
time here is what the caller spends on it, starting it (``TextIndex.start_search``: the
query's analysis, ``TextIndex.query_terms``, timed apart too, and the hand-off) and then
waiting for its result. What the call spends outside these is "the rest": checking the
arguments, reading one consistent state, building the hits. These are vecdb's private names: when a build lacks one, the split
is skipped with the reason, and the timed results do not depend on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import vecdb.collection as collection_module

STEPS = ("dense_branch", "text_branch", "text_analysis", "fusion")


class _Clock:
    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STEPS, 0.0)

    def timed(self, step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        seconds = self.seconds

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[step] += time.perf_counter() - start
        return wrapper


def unavailable(collection: Any) -> str | None:
    """Why this build's collections cannot be split, or None."""
    searcher, terms = getattr(collection, "_searcher", None), getattr(collection, "_terms", None)
    if searcher is None or not hasattr(searcher, "dense_branch"):
        return "Collection._searcher.dense_branch not found"
    if terms is None or not hasattr(terms, "find"):
        return "Collection._terms.find not found"
    if not hasattr(terms.find(None), "start_search"):
        return "TextIndex.start_search not found"
    if not hasattr(collection_module, "fuse"):
        return "vecdb.collection.fuse not found"
    return None


class _TimedPending:
    """A started text search whose wait for the result counts as text branch time."""

    def __init__(self, pending: Any, clock: _Clock) -> None:
        self.result = clock.timed("text_branch", pending.result)


@contextmanager
def _instrumented(collection: Any, clock: _Clock) -> Iterator[None]:
    searcher, text_index = collection._searcher, collection._terms.find(None)
    originals = (collection_module.fuse,)
    start_search = clock.timed("text_branch", text_index.start_search)
    searcher.dense_branch = clock.timed("dense_branch", searcher.dense_branch)
    text_index.start_search = lambda *args, **kwargs: _TimedPending(start_search(*args, **kwargs), clock)
    text_index.query_terms = clock.timed("text_analysis", text_index.query_terms)
    collection_module.fuse = clock.timed("fusion", collection_module.fuse)
    try:
        yield
    finally:
        (collection_module.fuse,) = originals
        for owner, name in ((searcher, "dense_branch"), (text_index, "start_search"), (text_index, "query_terms")):
            del owner.__dict__[name]  # the class's method shows through again


def split(collection: Any, call: Callable[[int], Any], queries: int, passes: int) -> dict[str, float]:
    """Microseconds per call of the whole call and of each step over ``passes`` instrumented
    passes over the queries (the rest = the call minus the dense branch, text branch and
    fusion; text analysis is part of the text branch)."""
    clock = _Clock()
    total = 0.0
    with _instrumented(collection, clock):
        for _ in range(passes):
            for position in range(queries):
                start = time.perf_counter()
                call(position)
                total += time.perf_counter() - start
    calls = queries * passes
    measured = {step: seconds / calls * 1e6 for step, seconds in clock.seconds.items()}
    measured["call"] = total / calls * 1e6
    measured["rest"] = measured["call"] - measured["dense_branch"] - measured["text_branch"] - measured["fusion"]
    return measured
