"""How busy the machine was with other work while a worker measured.

The load average cannot tell: it decays over a minute and counts this harness's own
previous workers. Instead, CPU time the whole machine spent busy (from /proc/stat, including
time the hypervisor stole) minus the CPU time of this process (and of any server process the
measurement drives), over the same wall time, is the number of cores other work took. On a
2-core machine even half a core of other work distorts the timings, most of all the
multi-threaded ones.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

_PROC_STAT = Path("/proc/stat")
# Fields of the aggregate "cpu" line that count as busy: user nice system (idle iowait)
# irq softirq steal. guest time is already included in user.
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
# utime and stime in /proc/<pid>/stat, counted from the field after the command name
# (which may itself contain spaces and parentheses, hence splitting at its last ")").
_PROCESS_TIME_FIELDS = (11, 12)


def _machine_busy_seconds() -> float:
    fields = _PROC_STAT.read_text().splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in _BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in _PROCESS_TIME_FIELDS) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and of the processes below it now (one that ended is not counted)."""
    seconds = process_cpu_seconds(pid)
    for child in descendant_pids(pid):
        try:
            seconds += process_cpu_seconds(child)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return seconds


@dataclass(frozen=True)
class _Snapshot:
    wall: float
    machine_busy: float
    own_cpu: float
    processes_cpu: tuple[float, ...]


@dataclass(frozen=True)
class CpuSplit:
    """Average cores busy over a measurement: this process, each process it drives, and the rest."""

    own: float
    processes: tuple[float, ...]
    other: float


class OtherCpuLoad:
    """Measures the average number of cores other processes kept busy between start and stop.

    ``pids`` are processes that belong to the measurement (a server the benchmark sends its
    requests to), each with the processes below it (a server's worker processes): their CPU
    time is not "other" load, and :meth:`split` reports it apart.
    """

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self._pids = tuple(pids)
        self._start = self._snapshot()

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(time.monotonic(), _machine_busy_seconds(), _own_cpu_seconds(),
                         tuple(_tree_cpu_seconds(pid) for pid in self._pids))

    def split(self) -> CpuSplit:
        """Cores used since construction by this process, by each of ``pids``, and by other work
        (never below 0)."""
        now = self._snapshot()
        wall = max(now.wall - self._start.wall, 1e-9)
        own = (now.own_cpu - self._start.own_cpu) / wall
        processes = tuple((after - before) / wall
                          for before, after in zip(self._start.processes_cpu, now.processes_cpu))
        busy = (now.machine_busy - self._start.machine_busy) / wall
        return CpuSplit(own=own, processes=processes, other=max(0.0, busy - own - sum(processes)))

    def cores(self) -> float:
        """Cores busy with other work, averaged since construction (never below 0)."""
        return self.split().other


def descendant_pids(root: int) -> list[int]:
    """Every live process below ``root`` (its children, theirs, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # gone while the table was read
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    waiting = list(children.get(root, []))
    while waiting:
        pid = waiting.pop()
        found.append(pid)
        waiting.extend(children.get(pid, []))
    return sorted(found)


class DescendantsCpu:
    """Average cores used, from construction to :meth:`cores`, by the processes below this
    one: the daemons and workers of a Ray this process started. Processes come and go (Ray
    starts and ends idle workers), so each is read as it is found: one that ends in between
    loses its last moments, one that starts counts from zero."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._before = self._read()

    @staticmethod
    def _read() -> dict[int, float]:
        seconds = {}
        for pid in descendant_pids(os.getpid()):
            try:
                seconds[pid] = process_cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
        return seconds

    def cores(self) -> float:
        after = self._read()
        wall = max(time.monotonic() - self._start, 1e-9)
        return sum(used - self._before.get(pid, 0.0) for pid, used in after.items()) / wall
