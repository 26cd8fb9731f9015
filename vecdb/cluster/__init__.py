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

if TYPE_CHECKING:
    from vecdb.cluster.database import ClusterDatabase


def open(path: Union[str, os.PathLike], shards: Optional[int] = None, *,  # noqa: A001 - vecdb.cluster.open
         address: Optional[str] = None, allow_partial: bool = False) -> "ClusterDatabase":
    """Open the cluster database at ``path`` (created with ``shards``
    shards, default 2, if it has no catalog yet; a later open finds its
    shard count there).

    ``address``: the Ray cluster to run the shards on (``"auto"``: the one
    this machine belongs to; ``"ray://host:10001"``: a remote one); None
    starts a local Ray, or uses the one this process already joined
    (``ray.init``). Shard ``i`` keeps its data in ``path/shard-00i/`` on the
    node it was placed on, and is pinned there.

    A shard that does not answer (its actor died and Ray is restarting it)
    fails calls with :class:`vecdb.errors.ShardUnavailableError`; with
    ``allow_partial`` (also settable later: ``db.allow_partial = True``)
    searches answer from the other shards instead, their results'
    ``missing_shards`` naming the shards left out.
    """
    from vecdb.cluster.database import open_cluster

    return open_cluster(path, shards, address=address, allow_partial=allow_partial)
