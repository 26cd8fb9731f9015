"""What a result was measured on: CPU, cores, memory, library versions, vecdb's CPU features."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from bench.optional import FAISS, H5PY, HNSWLIB, MATPLOTLIB, NUMPY, USEARCH, VECDB, installed_version, require
from bench.threads import all_cores

_LIBRARIES = (VECDB, NUMPY, FAISS, HNSWLIB, USEARCH, H5PY, MATPLOTLIB)


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


def _numpy_blas() -> dict[str, Any] | None:
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except TypeError:
        # numpy < 1.26 can only print its build configuration.
        return None


def machine_info() -> dict[str, Any]:
    """A JSON-ready description of this machine and the libraries installed."""
    vecdb = require(VECDB, "recording vecdb's CPU features")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": all_cores(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": {library.pip_package: installed_version(library) for library in _LIBRARIES},
        "numpy_blas": _numpy_blas(),
        "vecdb_cpu_features": vecdb.cpu_features(),
    }
