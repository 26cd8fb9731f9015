"""Small vector helpers shared by datasets and system adapters."""

from __future__ import annotations

import numpy as np

METRICS = ("l2", "ip", "cosine")


def check_metric(metric: str) -> str:
    """Return ``metric`` if vecdb knows it, else raise ValueError listing the known ones."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    return metric


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """A float32 copy of ``vectors`` (1-D or 2-D) scaled to unit L2 norm per row; zero rows stay zero."""
    as_float = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(as_float, axis=-1, keepdims=True)
    # A zero vector has no direction; dividing by 1 keeps it zero instead of NaN.
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(as_float / norms, dtype=np.float32)
