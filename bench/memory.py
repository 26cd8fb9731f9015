"""Resident memory of this process, read from Linux's /proc.

The peak (VmHWM) can be reset by writing "5" to /proc/self/clear_refs, so a worker can
measure the peak of its own build and searches above the memory its data already takes.
"""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
# Writing this to clear_refs resets the peak resident set size (Linux >= 4.0).
_RESET_PEAK = "5"


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{_STATUS} has no {field} line; memory measurement needs Linux")


def current_rss_bytes() -> int:
    """Resident set size now."""
    return _status_kib("VmRSS") * 1024


def anonymous_rss_bytes() -> int:
    """Resident memory not backed by files: the heap, without memory-mapped files
    (LMDB's map) whose pages the kernel may drop and read again."""
    return _status_kib("RssAnon") * 1024


def file_rss_bytes() -> int:
    """Resident pages of memory-mapped files (LMDB's map, shared libraries)."""
    return _status_kib("RssFile") * 1024


def peak_rss_bytes() -> int:
    """Largest resident set size since the process started or the last reset."""
    return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> None:
    """Make the peak start again from the current resident set size."""
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK)
    except OSError as error:
        raise RuntimeError(
            f"cannot reset the peak RSS through {_CLEAR_REFS} ({error}); "
            "memory measurement needs Linux >= 4.0"
        ) from error
