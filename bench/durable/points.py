"""The points every database in the durable benchmark ingests, so all of them store the same
thing in the same steps: the dataset's vectors, ids = row numbers, in batches of ``batch``
points (one upsert or add call each), each point with a small payload (``bucket`` = row % 100,
what the filtered search selects on, and ``group``, a short string)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numpy as np


def payloads_for(rows: range) -> List[Dict[str, Any]]:
    return [{"bucket": row % 100, "group": f"g{row % 7}"} for row in rows]


def batches(base: np.ndarray, batch: int) -> Iterator[Tuple[range, np.ndarray]]:
    """The rows of each upsert and their vectors, in order."""
    for first in range(0, len(base), batch):
        rows = range(first, min(first + batch, len(base)))
        yield rows, base[rows.start:rows.stop]
