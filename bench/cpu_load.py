"""How busy the machine was with other work while a worker measured.

The load average cannot tell: it decays over a minute and counts this harness's own
previous workers. Instead, CPU time the whole machine spent busy (from /proc/stat, including
time the hypervisor stole) minus the CPU time of this process, over the same wall time,
is the number of cores other work took. On a 2-core machine even half a core of other
work distorts the timings, most of all the multi-threaded ones.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_PROC_STAT = Path("/proc/stat")
# Fields of the aggregate "cpu" line that count as busy: user nice system (idle iowait)
# irq softirq steal. guest time is already included in user.
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def _machine_busy_seconds() -> float:
    fields = _PROC_STAT.read_text().splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in _BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class _Snapshot:
    wall: float
    machine_busy: float
    own_cpu: float


class OtherCpuLoad:
    """Measures the average number of cores other processes kept busy between start and stop."""

    def __init__(self) -> None:
        self._start = self._snapshot()

    @staticmethod
    def _snapshot() -> _Snapshot:
        return _Snapshot(time.monotonic(), _machine_busy_seconds(), _own_cpu_seconds())

    def cores(self) -> float:
        """Cores busy with other work, averaged since construction (never below 0)."""
        now = self._snapshot()
        other = (now.machine_busy - self._start.machine_busy) - (now.own_cpu - self._start.own_cpu)
        return max(0.0, other / max(now.wall - self._start.wall, 1e-9))
