"""Writes that span several collections' records in one LMDB transaction.

A collection's write has three phases: before the transaction (checks and
locks: its write lock, and for a delete its index lock), the records
written inside it, and after the commit (its in-memory indexes follow).
Each collection write method is a context manager yielding a
:class:`WriteStep` (entering it takes the locks, leaving it does the
after-commit work); :func:`commit_steps` enters several, writes all their
records in one transaction and leaves them. A collection's own ``upsert``
is one step; a named-vectors collection (:mod:`vecdb.named_vectors`)
commits the steps of its parts together, so a batch is all-or-nothing and
durable across them as for one collection.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, ContextManager, List, Optional, Sequence

from vecdb.storage.environment import Environment


class WriteStep:
    """One collection's records in a shared write transaction.

    ``store(txn)`` writes them (it may run again from scratch when LMDB's
    map grows); the step is ``committed`` with its ``result`` once the
    transaction commits. ``store=None``: nothing to write (e.g. a delete of
    ids the collection does not hold)."""

    def __init__(self, store: Optional[Callable[[Any], Any]]) -> None:
        self._store = store
        self.committed = False
        self.result: Any = None

    @property
    def writes(self) -> bool:
        return self._store is not None

    def store(self, txn: Any) -> Any:
        return None if self._store is None else self._store(txn)


def commit_steps(environment: Environment, steps: Sequence[ContextManager[WriteStep]]) -> List[Any]:
    """Enter every step (in order: callers keep one order of collections, so
    no two writes wait on each other's locks), write their records in one
    transaction, and leave them: each does its after-commit work, or, if the
    transaction failed, undoes what it did before it. Returns each step's
    result (None for a step with nothing to write)."""
    with ExitStack() as stack:
        entered = [stack.enter_context(step) for step in steps]
        writing = [step for step in entered if step.writes]
        results = environment.write(lambda txn: [step.store(txn) for step in writing]) if writing else []
        for step, result in zip(writing, results):
            step.committed, step.result = True, result
        return [step.result for step in entered]
