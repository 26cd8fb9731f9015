"""vecdb past one machine: a database whose collections are spread over
shards, each an embedded vecdb database served by a Ray actor, behind the
embedded API (:class:`vecdb.api.DatabaseAPI`).

    import vecdb.cluster
    with vecdb.cluster.open("/data/vecdb", shards=4) as db:
        docs = db.create_collection("docs", dim=384)

Needs Ray (``pip install "vecdb-engine[ray]"``); importing this package
does not load it, :func:`open` does. See :mod:`vecdb.cluster.database`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Union

from vecdb.collection import DEFAULT_INDEX_BACKLOG

if TYPE_CHECKING:
    from pathlib import Path

    from vecdb.cluster.database import ClusterDatabase


def open(path: Union[str, os.PathLike], shards: Optional[int] = None, *,  # noqa: A001 - vecdb.cluster.open
         replicas: int = 0, address: Optional[str] = None, allow_partial: bool = False,
         index_backlog: int = DEFAULT_INDEX_BACKLOG) -> "ClusterDatabase":
    """Open the cluster database at ``path`` (created with ``shards``
    shards, default 2, if it has no catalog yet; a later open finds its
    shard count there).

    ``address``: the Ray cluster to run the shards on (``"auto"``: the one
    this machine belongs to; ``"ray://host:10001"``: a remote one); None
    starts a local Ray, or uses the one this process already joined
    (``ray.init``). Shard ``i`` keeps its data in ``path/shard-00i/`` on the
    node it was placed on, and is pinned there.

    ``replicas``: read replicas per shard, each an actor on the shard's node
    with its folder opened read-only (LMDB's one writer and many readers),
    taking turns with the shard's own actor at answering searches and other
    reads: how one shard uses several cores (each actor is one Python
    process). A write returns once its shards' replicas have caught up
    with it. Each replica holds its own copy of the shard's index in RAM.

    A shard that does not answer (its actor died and Ray is restarting it)
    fails calls with :class:`vecdb.errors.ShardUnavailableError`; with
    ``allow_partial`` (also settable later: ``db.allow_partial = True``)
    searches answer from the other shards instead, their results'
    ``missing_shards`` naming the shards left out.

    ``index_backlog``: as for :func:`vecdb.open`, per shard (when a shard's
    actor already runs, the value it was started with stays).
    """
    from vecdb.cluster.database import open_cluster

    return open_cluster(path, shards, replicas=replicas, address=address, allow_partial=allow_partial,
                        index_backlog=index_backlog)


def restore(backup: Union[str, os.PathLike], destination: Union[str, os.PathLike]) -> "Path":
    """Restore a cluster backup folder (:meth:`ClusterDatabase.backup`)
    into ``destination``, a missing or empty folder; then
    ``vecdb.cluster.open(destination)`` serves it. See
    :func:`vecdb.cluster.backup.restore_cluster`."""
    from vecdb.cluster.backup import restore_cluster

    return restore_cluster(backup, destination)
