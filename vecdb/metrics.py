"""Metric names and what their distances mean.

All distances are "smaller is closer":

- ``"l2"``: squared Euclidean distance ``sum((a - b) ** 2)``.
- ``"ip"`` (alias ``"dot"``): ``1 - dot(a, b)``, as hnswlib and usearch report it.
- ``"cosine"``: ``1 - cos(a, b)``; a zero vector has cosine 0 with everything,
  so its distance is 1.
"""

from __future__ import annotations

from vecdb.errors import InvalidArgumentError

METRICS = ("l2", "ip", "cosine")

_ALIASES = {
    "l2": "l2",
    "euclidean": "l2",
    "ip": "ip",
    "dot": "ip",
    "inner_product": "ip",
    "cosine": "cosine",
    "cos": "cosine",
}


def parse_metric(metric: str) -> str:
    """Return the canonical metric name (``"l2"``, ``"ip"`` or ``"cosine"``)."""
    if not isinstance(metric, str) or metric.lower() not in _ALIASES:
        raise InvalidArgumentError(
            f"unknown metric {metric!r}; expected one of {', '.join(sorted(_ALIASES))}"
        )
    return _ALIASES[metric.lower()]


def higher_is_better(metric: str) -> bool:
    """Whether a hit's score (what searches report, see :class:`vecdb.Hit`)
    is better when higher: similarities (``"cosine"``, ``"ip"``) are, the
    Euclidean distance (``"l2"``) is not."""
    return parse_metric(metric) != "l2"
