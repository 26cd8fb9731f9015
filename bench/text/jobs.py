"""One system, one round, in a fresh process: ``python -m bench.text.jobs REQUEST_JSON``
prints one JSON result line.

The corpus is read and analyzed and the system's package imported before any clock
starts. Then: the build (timed, with the anonymous memory it leaves resident and the peak
above the start), one untimed pass answering every query (the warm-up; its answers are
written to ``request["answers"]`` for the agreement checks), and the timed runs
(``bench.text.timing``). Thread pools are limited by the environment the parent sets.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.cpu_load import OtherCpuLoad
from bench.memory import anonymous_rss_bytes, current_rss_bytes, peak_rss_bytes, reset_peak_rss
from bench.optional import require
from bench.text.agreement import pack
from bench.text.corpus import analyze, load_corpus
from bench.text.systems import SYSTEMS
from bench.text.timing import time_calls

_MIB = 2**20


def run(request: dict[str, Any]) -> dict[str, Any]:
    corpus = analyze(load_corpus(request["dataset"], request["queries"], request["seed"]))
    system = SYSTEMS[request["system"]](request["k"])
    require(system.requirement, system.name)
    inputs = system.query_inputs(corpus)
    system.prepare(corpus, Path(request["folder"]))
    gc.collect()
    anonymous, resident = anonymous_rss_bytes(), current_rss_bytes()
    reset_peak_rss()
    start = time.perf_counter()
    phases = system.build(corpus, Path(request["folder"]))
    build_seconds = time.perf_counter() - start
    gc.collect()
    memory = {"rss_growth_mb": (anonymous_rss_bytes() - anonymous) / _MIB,
              "build_peak_mb": (peak_rss_bytes() - resident) / _MIB}
    answers = [system.decode(system.search(query)) for query in inputs]
    ids, scores = pack(answers, request["k"])
    np.savez(request["answers"], ids=ids, scores=scores)
    load = OtherCpuLoad()
    timing = time_calls(system.search, inputs, request["min_seconds"], request["repeats"])
    other_load = load.cores()
    index_bytes = system.index_bytes()
    info = system.info()
    system.close()
    return {"system": system.name, "round": request["round"], "build_seconds": build_seconds, "phases": phases,
            "qps": timing.queries_per_second, "latency_ms_p50": timing.latency_ms_p50,
            "latency_ms_p99": timing.latency_ms_p99, "calls_timed": timing.calls,
            "index_mb": None if index_bytes is None else index_bytes / _MIB, **memory,
            "other_load_cores": other_load, "info": info}


def main() -> None:
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)


if __name__ == "__main__":
    main()
