"""Closed-loop clients in this process: N threads, each calling a search and, as soon as it
returns, the next one, for a warm-up and then a measured window.

Threads, not processes: a cluster's driver is one process that many threads share, as an
application serving several users would; the embedded baseline runs the same threads
against the same API. The native search releases the GIL and so does Ray's ``ray.get``, so
the threads really overlap. All clients start together; client ``i`` starts at the
``i``-th fraction of the queries so they do not ask the same ones in step. A call counts if
it ended inside the window (bench.server.load.summarize); none starts after it ends. The
cores used during the window are split into this process (the driver and its clients),
the processes below it (a local Ray: its daemons and the shards' actors) and everything
else on the machine (other work: disturbance).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Tuple

from bench.cpu_load import DescendantsCpu, OtherCpuLoad
from bench.server.load import LoadStats, summarize


@dataclass(frozen=True)
class ClientRun:
    """Per-call throughput and latency over the window, and the cores used meanwhile."""

    stats: LoadStats
    driver_cores: float
    ray_cores: float
    other_cores: float


@dataclass
class _Window:
    start: float = 0.0
    end: float = 0.0


def run_clients(call: Callable[[int], Any], items: int, clients: int, warmup: float, duration: float) -> ClientRun:
    """``clients`` threads each calling ``call(item)`` for items ``0 .. items-1`` in turn,
    for ``warmup`` seconds and then ``duration`` measured seconds."""
    window = _Window()

    def open_window() -> None:  # once every client is ready: a slow thread start eats no window
        window.start = time.perf_counter() + warmup
        window.end = window.start + duration

    ready = threading.Barrier(clients + 1, action=open_window)
    timings: List[List[Tuple[float, float]]] = [[] for _ in range(clients)]
    failures: List[BaseException] = []

    def client(index: int) -> None:
        item = index * items // clients
        ready.wait()
        try:
            while True:
                start = time.perf_counter()
                if start >= window.end:
                    return
                call(item)
                timings[index].append((start, time.perf_counter()))
                item = (item + 1) % items
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(max(0.0, window.start - time.perf_counter()))
    machine = OtherCpuLoad()
    below = DescendantsCpu()
    time.sleep(max(0.0, window.end - time.perf_counter()))
    split, ray_cores = machine.split(), below.cores()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    calls = [timing for per_client in timings for timing in per_client]
    stats = summarize([start for start, _ in calls], [end for _, end in calls], window.start, window.end)
    return ClientRun(stats=stats, driver_cores=split.own, ray_cores=ray_cores,
                     other_cores=max(0.0, split.other - ray_cores))
