"""Thread counts: parsing ``1,all`` and the environment that pins native thread pools."""

from __future__ import annotations

import os

# Read at import time by OpenMP (FAISS, vecdb if it uses OpenMP) and the BLAS libraries
# numpy may be linked with; they must be set before the worker process starts.
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def all_cores() -> int:
    """Cores this process may run on (respects CPU affinity, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0))


def parse_thread_counts(text: str) -> list[int]:
    """``"1,all"`` -> ``[1, all_cores()]``, without duplicates, in the order given."""
    counts: list[int] = []
    for field in text.split(","):
        field = field.strip()
        count = all_cores() if field == "all" else int(field)
        if count < 1:
            raise ValueError(f"thread counts must be >= 1 or 'all'; got {field!r}")
        if count not in counts:
            counts.append(count)
    return counts


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that limit OpenMP and BLAS pools to ``threads``."""
    return {name: str(threads) for name in _THREAD_VARIABLES}
