"""A named upsert's vectors (checked on the driver by
:func:`vecdb.query.arguments.check_named_vectors`, as the embedded collection
checks them, so bad input never reaches a shard) split by shard."""

from __future__ import annotations

from typing import Dict, List, Optional, Union

import numpy as np

from vecdb.query.arguments import NamedRows

# What a shard is sent of a named upsert: per vector name, a matrix (every
# point of the shard's part of the batch has the vector) or a vector or
# None per point; a name no point of the part has is left out.
ShardVectors = Dict[str, Union[np.ndarray, List[Optional[np.ndarray]]]]


def split_by_shard(given: NamedRows, groups: Dict[int, List[int]], count: int) -> Dict[int, ShardVectors]:
    """Each shard's part of a checked named upsert of ``count`` points, the
    shard holding the points at positions ``groups[shard]``."""
    split: Dict[int, ShardVectors] = {shard: {} for shard in groups}
    for name, (rows, matrix) in given.items():
        position = np.full(count, -1)  # each point's row in matrix, -1 for a point without the vector
        position[rows] = np.arange(len(rows))
        for shard, points in groups.items():
            found = position[points]
            if (found >= 0).all():
                split[shard][name] = matrix[found]
            elif (found >= 0).any():
                split[shard][name] = [matrix[row] if row >= 0 else None for row in found]
    return split
