"""What every native search returns: ``(ids, distances)``, FAISS's contract
(see :mod:`vecdb.native.flat`)."""

from __future__ import annotations

from typing import Tuple

import numpy as np

SearchResult = Tuple[np.ndarray, np.ndarray]


def unwrap_single(result: SearchResult, single: bool) -> SearchResult:
    """1-D results for a query given as one 1-D vector."""
    ids, distances = result
    return (ids[0], distances[0]) if single else (ids, distances)
