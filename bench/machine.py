"""What a result was measured on: CPU, cores, memory, library versions, vecdb's CPU features."""

import datetime
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from bench.optional import VECDB, require
from bench.threads import all_cores

_LIBRARIES = ("vecdb", "numpy", "faiss-cpu", "hnswlib", "usearch", "h5py", "matplotlib")


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


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


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
        "libraries": _library_versions(),
        "numpy_blas": np.show_config(mode="dicts")["Build Dependencies"]["blas"],
        "vecdb_cpu_features": vecdb.cpu_features(),
    }
