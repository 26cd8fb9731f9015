"""The filtered-search payload: a ``bucket`` integer per point, so ``{"bucket": {"$lt": X}}``
keeps X in a thousand points.

Buckets are a seeded permutation of the rows taken modulo 1,000: every bucket holds the
same number of points (to within one), so a filter's selectivity is exact, and buckets are
unrelated to the rows' order or position in the vector space.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

BUCKETS = 1000


def bucket_of_rows(n_rows: int, seed: int) -> np.ndarray:
    """The bucket (0 .. BUCKETS - 1) of each row, the same for the same arguments."""
    return np.random.default_rng(seed).permutation(n_rows) % BUCKETS


def bucket_limit(percent: float) -> int:
    """The bucket bound X whose filter keeps ``percent`` % of the points; raise ValueError
    unless that is a whole number of buckets between 1 and BUCKETS."""
    limit = round(percent * BUCKETS / 100)
    if not 1 <= limit <= BUCKETS or abs(limit - percent * BUCKETS / 100) > 1e-9:
        raise ValueError(f"selectivity {percent}% is not a whole number of 1/{BUCKETS} between "
                         f"{100 / BUCKETS}% and 100%")
    return limit


def bucket_filter(limit: int) -> Dict[str, Any]:
    """The payload filter keeping buckets below ``limit``."""
    return {"bucket": {"$lt": limit}}
