"""The embedded baseline: a copy of the served database opened in this process with
``vecdb.open``, searched one query per call on one thread with the same k and ef as over
HTTP. The ratio of HTTP latency at one client to this is what the HTTP layer costs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from bench.cpu_load import OtherCpuLoad
from bench.datasets import Dataset
from bench.server.load import LoadStats, summarize


@dataclass(frozen=True)
class EmbeddedRun:
    """Latency of ``Collection.search`` in process, and where its index came from."""

    stats: LoadStats
    other_load: float
    index_source: str
    answers: Dict[int, List[int]]


def measure_embedded(folder: Path, collection_name: str, dataset: Dataset, k: int, ef: int, warmup: float,
                     duration: float) -> EmbeddedRun:
    """Search the collection for ``warmup`` + ``duration`` seconds, cycling through the
    dataset's queries; stats over the last ``duration`` seconds."""
    import vecdb

    starts: List[float] = []
    ends: List[float] = []
    answers: Dict[int, List[int]] = {}
    with vecdb.open(folder, read_only=True) as database:
        collection = database.get_collection(collection_name)
        index_source = collection.stats()["index_source"]
        window_start = time.perf_counter() + warmup
        window_end = window_start + duration
        load = None
        row = 0
        while time.perf_counter() < window_end:
            if load is None and time.perf_counter() >= window_start:
                load = OtherCpuLoad()
            start = time.perf_counter()
            hits = collection.search(dataset.queries[row], k=k, ef=ef, with_payload=False)
            ends.append(time.perf_counter())
            starts.append(start)
            answers.setdefault(row, [hit.id for hit in hits])
            row = (row + 1) % dataset.n_queries
    return EmbeddedRun(stats=summarize(starts, ends, window_start, window_end),
                       other_load=load.cores() if load is not None else 0.0, index_source=index_source,
                       answers=answers)
