"""A writer process for the crash tests: upserts numbered batches (and now and
then deletes part of an earlier one) into a database until it is killed,
printing each batch number after its call returned.

    python -m tests.support.crash_writer PATH FIRST_BATCH [--lag]

``--lag`` keeps the background indexer from indexing anything (this thread
holds the collection's index lock): every upserted point stays in the
backlog, searched exactly, and snapshots are stamped before it.
"""

from __future__ import annotations

import sys

import numpy as np

import vecdb
from vecdb import collection

DIM = 16
BATCH = 40


def batch_ids(batch: int) -> list:
    return [f"b{batch}-{row}" for row in range(BATCH)]


def batch_vectors(batch: int) -> np.ndarray:
    return np.random.default_rng(batch).standard_normal((BATCH, DIM)).astype(np.float32)


def deleted_ids(batch: int) -> list:
    """Every fifth batch deletes the first quarter of the batch before it."""
    return batch_ids(batch - 1)[: BATCH // 4] if batch % 5 == 0 and batch > 0 else []


def main() -> None:
    path, first = sys.argv[1], int(sys.argv[2])
    # Snapshot every 150 changes, so kills land during snapshots too and a
    # reopen never replays more than that.
    collection.SNAPSHOT_MIN_CHANGES, collection.SNAPSHOT_SHARE = 150, 0.0
    db = vecdb.open(path, index_backlog=32_768)  # background indexing: kills land while it lags
    col = db.get_or_create_collection("crash", dim=DIM, index=vecdb.HNSW(M=6, ef_construction=32))
    if "--lag" in sys.argv[3:]:
        col._index_lock.acquire()
    # Finish the batch before `first` (its delete may not have run before the kill).
    col.delete(ids=deleted_ids(first - 1) or ["-"])
    batch = first
    while True:
        col.upsert(ids=batch_ids(batch), vectors=batch_vectors(batch),
                   payloads=[{"batch": batch, "row": row} for row in range(BATCH)])
        if deleted_ids(batch):
            col.delete(ids=deleted_ids(batch))
        print(batch, flush=True)
        batch += 1


if __name__ == "__main__":
    main()
