"""Which shard holds a point.

A point's shard comes from its id's canonical bytes (the key LMDB stores it
under, :func:`vecdb.storage.keys.user_id_key`, so ``1`` and ``"1"`` are
different points here as everywhere), hashed with BLAKE2b: stable across
processes, machines and Python versions, unlike the salted ``hash()``.
The 64-bit hash picks a shard by jump consistent hashing (Lamping and
Veach, 2014): growing a cluster from n to n + 1 shards moves only the
points the new shard takes, about 1/(n + 1) of them, and no point moves
between two old shards.
"""

from __future__ import annotations

import hashlib
from typing import Dict, List, Sequence

from vecdb.checks import positive_int
from vecdb.storage.keys import check_user_id, user_id_key

# Jump consistent hashing's linear congruential step (the paper's constant).
_JUMP_MULTIPLIER = 2862933555777941757
_MASK64 = (1 << 64) - 1


def jump_hash(key: int, buckets: int) -> int:
    """The bucket in ``[0, buckets)`` of a 64-bit key (jump consistent hash)."""
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shard_of_key(id_key: bytes, shards: int) -> int:
    """The shard of the point stored under ``id_key``."""
    digest = hashlib.blake2b(id_key, digest_size=8).digest()
    return jump_hash(int.from_bytes(digest, "little"), shards)


def group_by_shard(ids: Sequence[object], shards: int) -> Dict[int, List[int]]:
    """The positions in ``ids`` that each shard holds, in order, for the
    shards that hold any. Every id is checked first (as an embedded write
    checks it), so a bad id refuses the batch before any shard sees it."""
    shards = positive_int(shards, "shards")
    keys = [user_id_key(check_user_id(point_id)) for point_id in ids]
    groups: Dict[int, List[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(shard_of_key(key, shards), []).append(position)
    return groups
