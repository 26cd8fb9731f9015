"""The databases under test: the embedded baseline and one cluster per (shards, replicas),
each holding the dataset in a collection with the same settings, filled the same way.

Every folder gets the base vectors in the same batches through the same API
(``collection.upsert``, ids = row numbers, no payloads), so ingest points/s compare: an
upsert returns once durable on every shard (and, with replicas, once they caught up), as
an embedded one returns once committed. One folder per shard count: the configurations
with other numbers of read replicas open the same folder (replicas read it; they hold
nothing of their own).

A target is open only while it is measured: every actor of a cluster is a Python process,
and the idle ones of clusters not under test would take CPU from the one that is (Ray's
workers poll in the background).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

COLLECTION = "bench"
EMBEDDED = "embedded"


@dataclass(frozen=True)
class IndexSettings:
    """The HNSW settings every target's collection is created with."""

    M: int
    ef_construction: int


@dataclass(frozen=True)
class Ingest:
    """How long the upserts of every point took, all batches together."""

    points: int
    seconds: float
    batch: int

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds


@dataclass(frozen=True)
class Target:
    """One database under test: a folder whose collection holds the whole dataset, opened
    for each measurement and closed after it. ``shards`` is None for the embedded database.
    ``ingest`` is None for a cluster that reuses the folder another configuration filled
    (the same shards, other read replicas)."""

    label: str
    shards: Optional[int]
    replicas: int
    folder: Path
    ingest: Optional[Ingest]


def target_label(shards: Optional[int], replicas: int) -> str:
    """``"embedded"``, ``"1 shard"``, ``"4 shards + 1 replica"``..."""
    if shards is None:
        return EMBEDDED
    label = f"{shards} shard" + ("s" if shards != 1 else "")
    return label + (f" + {replicas} replica" + ("s" if replicas != 1 else "") if replicas else "")


def upsert_all(collection: Any, base: np.ndarray, batch: int) -> Ingest:
    """Upsert ``base`` in batches of ``batch`` rows (ids = row numbers) and wait until every
    shard has indexed them; the time it took."""
    start = time.perf_counter()
    for first in range(0, len(base), batch):
        stop = min(first + batch, len(base))
        collection.upsert(list(range(first, stop)), base[first:stop])
    collection.wait_indexed()  # every shard's graph holds its points: searches measure the graphs
    seconds = time.perf_counter() - start
    stored = collection.count()
    if stored != len(base):
        raise RuntimeError(f"the collection holds {stored} points after upserting {len(base)}")
    return Ingest(points=len(base), seconds=seconds, batch=batch)


def _fill(database: Any, base: np.ndarray, metric: str, settings: IndexSettings, batch: int) -> Ingest:
    import vecdb

    collection = database.create_collection(COLLECTION, dim=base.shape[1], metric=metric,
                                            index=vecdb.HNSW(M=settings.M, ef_construction=settings.ef_construction))
    return upsert_all(collection, base, batch)


def build_embedded(folder: Path, base: np.ndarray, metric: str, settings: IndexSettings, batch: int) -> Target:
    """An embedded database in ``folder`` holding ``base``, closed again."""
    import vecdb
    from vecdb.progress import silent

    with vecdb.open(folder, progress=silent) as database:
        return Target(EMBEDDED, None, 0, folder, _fill(database, base, metric, settings, batch))


def build_cluster(folder: Path, shards: int, replicas: int, base: np.ndarray, metric: str, settings: IndexSettings,
                  batch: int) -> Target:
    """A cluster in ``folder`` (on the Ray this process is in, or a new local one) holding
    ``base``, closed again (its actors stopped)."""
    import vecdb.cluster

    with vecdb.cluster.open(folder, shards=shards, replicas=replicas) as database:
        ingest = _fill(database, base, metric, settings, batch)
    return Target(target_label(shards, replicas), shards, replicas, folder, ingest)


def reuse_cluster(built: Target, replicas: int) -> Target:
    """The cluster ``built`` filled, opened with ``replicas`` read replicas per shard."""
    assert built.shards is not None
    return Target(target_label(built.shards, replicas), built.shards, replicas, built.folder, None)


@contextlib.contextmanager
def opened(target: Target) -> Iterator[Any]:
    """``target``'s collection, its database open (a cluster's actors started, which reopen
    their shards' folders) until the block ends."""
    if target.shards is None:
        import vecdb
        from vecdb.progress import silent

        with vecdb.open(target.folder, progress=silent) as database:
            yield database.get_collection(COLLECTION)
    else:
        import vecdb.cluster

        with vecdb.cluster.open(target.folder, shards=target.shards, replicas=target.replicas) as database:
            yield database.get_collection(COLLECTION)
