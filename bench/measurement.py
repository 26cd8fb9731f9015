"""One row of results: a system at one sweep value, batch size and thread count."""

from __future__ import annotations

from dataclasses import dataclass

# Fields that identify a measurement; a new run replaces an old one with the same key.
KEY_FIELDS = ("dataset", "metric", "k", "system", "param", "batch", "threads")


@dataclass(frozen=True)
class Measurement:
    """What the worker measured, ready for JSON.

    ``memory_peak_mb`` is the peak resident memory during build and all searches of the
    worker, above the memory it had after loading the data; ``memory_after_build_mb`` is the
    resident increase the built index left. ``recall_queries`` is how many queries the recall
    was computed over: the ones the timed runs issued, which for slow single-query paths is
    a prefix of the query set. ``other_load_cores`` is how many cores other processes kept
    busy, on average, during the build and searches; above ~0.1 the timings are disturbed.
    """

    dataset: str
    n_base: int
    dim: int
    n_queries: int
    metric: str
    k: int
    system: str
    library_version: str
    exact: bool
    param_name: str | None
    param: int | None
    batch: int
    threads: int
    recall: float
    qps: float
    latency_ms_p50: float
    latency_ms_p99: float
    queries_timed: int
    recall_queries: int
    build_seconds: float
    memory_peak_mb: float
    memory_after_build_mb: float
    index_mb: float
    other_load_cores: float
    measured_at: str
