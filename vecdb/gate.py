"""A shared/exclusive gate (a readers-writer lock) for threads of one process.

Used where readers run native code with the GIL released over memory a
writer changes in place: the LMDB environment (a resize of the memory map
waits for every transaction) and the matrices of exact and code-scan
indexes (a row overwritten while a scan reads it would be read half old,
half new).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from vecdb.errors import VecdbError


class SharedExclusiveGate:
    """Many holders in shared mode, or one in exclusive mode; a waiting
    exclusive request stops new shared entries so a writer cannot starve,
    except from a thread that already holds the gate shared (it would wait
    for an exclusive request that waits for it)."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())  # never re-entered: a plain lock is faster
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0
        self._held = threading.local()  # .depth: this thread's shared entries

    def enter_shared(self) -> None:
        depth = getattr(self._held, "depth", 0)
        with self._condition:
            while not depth and (self._exclusive or self._exclusive_waiting):
                self._condition.wait()
            self._shared += 1
        self._held.depth = depth + 1

    def exit_shared(self) -> None:
        self._held.depth -= 1
        with self._condition:
            self._shared -= 1
            # Only an exclusive request waits for the shared count to drop:
            # wake it when the last shared holder leaves.
            if self._shared == 0 and self._exclusive_waiting:
                self._condition.notify_all()

    def held_by_this_thread(self) -> bool:
        return bool(getattr(self._held, "depth", 0))

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.enter_shared()
        try:
            yield
        finally:
            self.exit_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if self.held_by_this_thread():
            raise VecdbError("internal error: a thread holding a gate shared asked to hold it alone")
        with self._condition:
            self._exclusive_waiting += 1
            while self._exclusive or self._shared:
                self._condition.wait()
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()
