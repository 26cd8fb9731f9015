"""Which SIMD kernels run, and forcing a level for tests and benchmarks."""

from __future__ import annotations

from typing import Any, Dict, List

from vecdb import _core


def cpu_features() -> Dict[str, Any]:
    """CPU features seen at run time and the kernels in use.

    Keys: ``avx2``, ``fma``, ``f16c``, ``avx512f`` (bools), ``simd_level``
    (the active kernels: ``"portable"``, ``"avx2"`` or ``"avx512"``),
    ``simd_levels`` (all usable here, slowest first) and ``threads``.
    """
    features: Dict[str, Any] = dict(_core.cpu_features())
    features["simd_level"] = _core.simd_level()
    features["simd_levels"] = simd_levels()
    features["threads"] = _core.hardware_threads()
    return features


def simd_levels() -> List[str]:
    """SIMD levels this CPU can run, slowest first."""
    return list(_core.simd_levels())


def simd_level() -> str:
    """The SIMD level in use."""
    return _core.simd_level()


def set_simd_level(level: str) -> None:
    """Force a SIMD level for the whole process (default: the fastest usable).

    Raises vecdb.errors.InvalidArgumentError when the CPU cannot run it.
    """
    _core.set_simd_level(level)
