"""Fusing the branches of a hybrid search (see :mod:`vecdb.fusion` for
what each fusion computes)."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from vecdb import _core
from vecdb.fusion import RRF, Fusion

# One branch's result: labels best first, their scores (higher is better).
Branch = Tuple[np.ndarray, np.ndarray]


def branch_weights(fusion: Fusion, count: int, vector_first: bool) -> List[float]:
    """The weights of ``count`` branches, the vector branch first if
    ``vector_first``: with ``alpha``, the vector branch weighs ``alpha``
    and the others share ``1 - alpha``; without, each weighs 1."""
    if fusion.alpha is None:
        return [1.0] * count
    if not vector_first:
        return [1.0 / count] * count
    alpha = float(fusion.alpha)
    return [alpha] + [(1.0 - alpha) / (count - 1)] * (count - 1)


def fuse(fusion: Fusion, branches: Sequence[Branch], weights: Sequence[float], k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` best labels by fused score (ties: smaller label first) and
    their fused scores (natively: a Python loop over the candidates was a
    tenth of a hybrid search's time)."""
    return _core.fuse([labels for labels, _ in branches], [scores for _, scores in branches], list(weights),
                      "rrf" if isinstance(fusion, RRF) else "dbsf", float(fusion.k) if isinstance(fusion, RRF) else 0.0,
                      k)
