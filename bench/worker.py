"""Measure one system in a process of its own: ``python -m bench.worker JOB_JSON``.

A fresh process per system and thread count means its peak memory is its own, the BLAS
and OpenMP pools were sized by the environment the runner set before any import, and one
library's global state cannot leak into another's numbers.
"""

from __future__ import annotations

import datetime
import gc
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.cpu_load import OtherCpuLoad
from bench.datasets import load_dataset
from bench.ground_truth import read_ground_truth
from bench.job import WorkerJob
from bench.measurement import Measurement
from bench.memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
from bench.optional import MissingDependencyError, require
from bench.progress import progress
from bench.recall import recall_at_k
from bench.systems import create_system
from bench.timing import time_search

_MIB = 2**20
# Exit status telling the runner a library is missing (the message is on stderr).
EXIT_MISSING_DEPENDENCY = 3


def run_job(job: WorkerJob) -> list[Measurement]:
    """Build the job's system and measure every (sweep value, batch size) pair."""
    dataset = load_dataset(job.dataset)
    truth = read_ground_truth(Path(job.ground_truth_path))
    if truth.ids.shape[0] != dataset.n_queries:
        raise ValueError(
            f"ground truth {job.ground_truth_path} has {truth.ids.shape[0]} rows "
            f"but dataset {dataset.name} has {dataset.n_queries} queries"
        )
    system = create_system(job.system, job.graph_settings)
    # Load the library before the memory baseline, so its code is not counted as index memory.
    require(system.requirement, job.system)
    gc.collect()
    other_load = OtherCpuLoad()
    baseline = current_rss_bytes()
    reset_peak_rss()

    started = time.perf_counter()
    system.build(dataset.base, dataset.metric, job.threads)
    build_seconds = time.perf_counter() - started
    after_build = current_rss_bytes()

    pairs = [(param, batch) for param in system.sweep() for batch in job.batches]
    timings = {}
    for param, batch in progress(pairs, f"{job.system} threads={job.threads}"):
        timings[param, batch] = time_search(
            lambda queries, param=param: system.search(queries, job.k, param),
            dataset.queries,
            batch,
            min_seconds=job.min_seconds,
            repeats=job.repeats,
        )
    # Read the peak before index_bytes: some libraries serialize the index to size it.
    peak = peak_rss_bytes()
    other_load_cores = other_load.cores()
    index_bytes = system.index_bytes()

    measured_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    measurements = []
    for (param, batch), timing in timings.items():
        answered = len(timing.found_ids)
        measurements.append(
            Measurement(
                dataset=dataset.name,
                n_base=dataset.n_base,
                dim=dataset.dim,
                n_queries=dataset.n_queries,
                metric=dataset.metric,
                k=job.k,
                system=job.system,
                library_version=system.library_version(),
                exact=system.exact,
                param_name=system.param_name,
                param=param,
                batch=batch,
                threads=job.threads,
                recall=recall_at_k(
                    timing.found_ids,
                    truth.ids[:answered],
                    dataset.base,
                    dataset.queries[:answered],
                    dataset.metric,
                ),
                qps=timing.queries_per_second,
                latency_ms_p50=timing.latency_ms_p50,
                latency_ms_p99=timing.latency_ms_p99,
                queries_timed=timing.queries_timed,
                recall_queries=answered,
                build_seconds=build_seconds,
                memory_peak_mb=(peak - baseline) / _MIB,
                memory_after_build_mb=(after_build - baseline) / _MIB,
                index_mb=index_bytes / _MIB,
                other_load_cores=other_load_cores,
                measured_at=measured_at,
            )
        )
    return measurements


def main(argv: list[str]) -> int:
    """Run the job in ``argv[0]`` (a JSON file) and write its measurements to the job's output path."""
    job = WorkerJob.from_json(Path(argv[0]).read_text())
    try:
        measurements = run_job(job)
    except MissingDependencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_MISSING_DEPENDENCY
    Path(job.output_path).write_text(json.dumps([asdict(m) for m in measurements], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
