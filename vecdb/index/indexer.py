"""The background indexer: moves a collection's backlog of committed
points (:mod:`vecdb.index.backlog`) into its indexes, off the write path.

One thread per collection, started when points wait and ending when none
do. It moves :data:`CHUNK` points at a time under the collection's index
lock (which writers take only to change points the indexes already hold,
or to delete), so a write waits at most one chunk. While writes keep
coming it leaves a core to the writer (the graph's insert runs on one
thread fewer): the writer's own work is what makes a write return. A
caller may do the same work on its own thread (:meth:`Indexer.step`, on
every core): a writer whose backlog passed its limit does, which is the
backpressure, and so does ``wait_indexed``.
"""

from __future__ import annotations

import threading
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import numpy as np

from vecdb.index.backlog import Backlog
from vecdb.native.arrays import HARDWARE_THREADS

# Points moved per step: large enough for the graph's batch insert to keep
# every core busy, small enough that a writer waiting for the lock waits
# tens of milliseconds.
CHUNK = 512
# The background thread leaves a core to writers while the last write came
# this recently (seconds).
WRITES_RECENT = 0.25

# Adds points (labels, full vectors) to every index of the collection, the
# graphs inserting on so many threads (None: every core).
AddToIndexes = Callable[[np.ndarray, np.ndarray, Optional[int]], None]
# How long the background thread sleeps while others wait for the lock.
_YIELD_SECONDS = 0.0005


class IndexLock:
    """A collection's index lock: held to change what its indexes hold.
    Reentrant (a step of the indexer snapshots with it held). The
    background thread lets every other thread waiting for it go first
    (:meth:`after_others`): a lock released and taken again at once by the
    same thread would starve a writer for as long as points wait."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._count_lock = threading.Lock()
        self._waiting = 0

    def acquire(self) -> None:
        with self._count_lock:
            self._waiting += 1
        self._lock.acquire()
        with self._count_lock:
            self._waiting -= 1

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> "IndexLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    @contextmanager
    def after_others(self) -> Iterator[None]:
        """Hold the lock once no other thread waits for it."""
        while self._waiting:
            time.sleep(_YIELD_SECONDS)
        with self._lock:
            yield


class Indexer:
    """Moves ``backlog`` into the indexes through ``add``, under
    ``index_lock``; ``after_step`` runs after each step, with the lock held
    (the collection snapshots there when due), ``when_idle`` once the
    backlog is empty after writes, without it (the collection trains its
    codebooks or rotation there, when due)."""

    def __init__(self, name: str, backlog: Backlog, index_lock: IndexLock, add: AddToIndexes,
                 after_step: Callable[[], None], when_idle: Callable[[], None]) -> None:
        self._name = name
        self._backlog = backlog
        self._index_lock = index_lock
        self._add = add
        self._after_step = after_step
        self._when_idle = when_idle
        self._state_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._idle_work_due = False  # writes came since when_idle last ran
        self._last_write = 0.0  # time.monotonic() of the last start()
        self._idle_lock = threading.Lock()  # held while it runs

    def start(self) -> None:
        """Make sure a thread works on the backlog (call after appending)."""
        with self._state_lock:
            self._idle_work_due = True
            self._last_write = time.monotonic()
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name=f"vecdb-indexer-{self._name}", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """No more background work (the collection closes or is dropped):
        the thread ends after its step in flight; the caller takes the
        index lock to wait for that step."""
        with self._state_lock:
            self._stopped = True

    def step(self, threads: Optional[int] = None, background: bool = False) -> bool:
        """Move one chunk into the indexes on this thread (the graphs
        inserting on ``threads`` threads; None: every core); False if
        nothing waited. ``background``: after any other thread waiting for
        the index lock."""
        with self._index_lock.after_others() if background else self._index_lock:
            rows, labels, vectors = self._backlog.oldest(CHUNK)
            if not len(rows):
                return False
            self._add(labels, vectors, threads)
            self._backlog.indexed(rows)
            self._after_step()
        return True

    def finish(self, timeout: Optional[float] = None) -> bool:
        """Index everything waiting and run ``when_idle`` if writes came
        since it last ran, on this thread (waiting for the background
        thread's run of it, if one is under way); False if ``timeout``
        seconds passed first. Call without the collection's write lock
        (``when_idle`` takes it)."""
        if not self.drain(timeout):
            return False
        self._idle_work(in_background=False)
        return True

    def _idle_work(self, in_background: bool) -> None:
        with self._idle_lock:
            with self._state_lock:
                # Once stopped, only the closing caller runs it (the collection may be gone after).
                if in_background and self._stopped:
                    return
                due, self._idle_work_due = self._idle_work_due, False
            if due:
                self._when_idle()

    def drain(self, timeout: Optional[float] = None) -> bool:
        """Index everything waiting, on this thread (with the background
        thread taking turns); False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._backlog):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self.step()
        return True

    def _run(self) -> None:
        try:
            while True:
                with self._state_lock:
                    if self._stopped or not len(self._backlog):
                        self._thread = None
                        break
                    writing = time.monotonic() - self._last_write < WRITES_RECENT
                self.step(max(1, HARDWARE_THREADS - 1) if writing else None, background=True)
            self._idle_work(in_background=True)
        except Exception as exc:  # committed points stay in the backlog: searched exactly, indexed on the next try
            with self._state_lock:
                self._thread = None
            warnings.warn(f"collection {self._name!r}: background indexing failed ({exc!r}); the points waiting are "
                          "searched exactly and indexed when the next write or wait_indexed() tries again",
                          RuntimeWarning, stacklevel=1)
