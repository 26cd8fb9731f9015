"""The databases under test: the embedded baseline and one cluster per (shards, replicas),
each holding the dataset in a collection with the same settings, filled the same way.

Every target gets the base vectors in the same batches through the same API
(``collection.upsert``, ids = row numbers, no payloads), so ingest points/s compare: an
upsert returns once durable on every shard (and, with replicas, once they caught up), as
an embedded one returns once committed.
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
    """One database under test: its collection holds the whole dataset. ``shards`` is None
    for the embedded database."""

    label: str
    shards: Optional[int]
    replicas: int
    collection: Any
    ingest: Ingest


def target_label(shards: Optional[int], replicas: int) -> str:
    """``"embedded"``, ``"1 shard"``, ``"4 shards + 1 replica"``..."""
    if shards is None:
        return EMBEDDED
    label = f"{shards} shard" + ("s" if shards != 1 else "")
    return label + (f" + {replicas} replica" + ("s" if replicas != 1 else "") if replicas else "")


def upsert_all(collection: Any, base: np.ndarray, batch: int) -> Ingest:
    """Upsert ``base`` in batches of ``batch`` rows (ids = row numbers); the time it took."""
    start = time.perf_counter()
    for first in range(0, len(base), batch):
        stop = min(first + batch, len(base))
        collection.upsert(list(range(first, stop)), base[first:stop])
    seconds = time.perf_counter() - start
    stored = collection.count()
    if stored != len(base):
        raise RuntimeError(f"the collection holds {stored} points after upserting {len(base)}")
    return Ingest(points=len(base), seconds=seconds, batch=batch)


def _filled(database: Any, label: str, shards: Optional[int], replicas: int, base: np.ndarray, metric: str,
            settings: IndexSettings, batch: int) -> Target:
    import vecdb

    collection = database.create_collection(COLLECTION, dim=base.shape[1], metric=metric,
                                            index=vecdb.HNSW(M=settings.M, ef_construction=settings.ef_construction))
    return Target(label, shards, replicas, collection, upsert_all(collection, base, batch))


@contextlib.contextmanager
def embedded_target(folder: Path, base: np.ndarray, metric: str, settings: IndexSettings,
                    batch: int) -> Iterator[Target]:
    """An embedded database in ``folder`` (``vecdb.open``) holding ``base``; closed on exit."""
    import vecdb
    from vecdb.progress import silent

    with vecdb.open(folder, progress=silent) as database:
        yield _filled(database, EMBEDDED, None, 0, base, metric, settings, batch)


@contextlib.contextmanager
def cluster_target(folder: Path, shards: int, replicas: int, base: np.ndarray, metric: str,
                   settings: IndexSettings, batch: int) -> Iterator[Target]:
    """A cluster in ``folder`` (``vecdb.cluster.open``, on the Ray this process is in or a
    new local one) holding ``base``; closed on exit, its actors stopped."""
    import vecdb.cluster

    with vecdb.cluster.open(folder, shards=shards, replicas=replicas) as database:
        yield _filled(database, target_label(shards, replicas), shards, replicas, base, metric, settings, batch)
