"""Running a benchmark: ground truth in this process, each job in a worker process, in rounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.datasets import DatasetSpec, load_dataset
from bench.ground_truth import load_or_compute_ground_truth
from bench.job import WorkerJob
from bench.machine import machine_info
from bench.optional import MATPLOTLIB, TQDM, VECDB, MissingDependencyError, missing_requirements
from bench.paths import REPO_ROOT
from bench.report import write_report
from bench.report.table import format_qps
from bench.results import load_or_empty, merge_measurements, save_results
from bench.rounds import combine_rounds, exact_recall_mismatch, round_order
from bench.systems import SYSTEMS, GraphSettings
from bench.threads import thread_environment

RESULTS_FILE = "results.json"
# Cores of other work during a worker above which its timings are flagged as disturbed.
_DISTURBING_LOAD = 0.1


@dataclass(frozen=True)
class RunSettings:
    """What to measure and where to put it."""

    datasets: tuple[DatasetSpec, ...]
    systems: tuple[str, ...]
    k: int
    batches: tuple[int, ...]
    thread_counts: tuple[int, ...]
    graph_settings: GraphSettings
    min_seconds: float
    repeats: int
    rounds: int
    output_dir: Path
    cache_dir: Path


@dataclass(frozen=True)
class RunOutcome:
    """The files written, and the workers that failed or exact systems whose recall varied."""

    results_path: Path
    report_paths: list[Path]
    failures: list[str]


def check_requirements(systems: tuple[str, ...]) -> None:
    """Raise MissingDependencyError naming every package the run needs and lacks, before any work."""
    needed = [VECDB, TQDM, MATPLOTLIB, *(SYSTEMS[name].requirement for name in systems)]
    missing = missing_requirements(needed)
    if missing:
        hints = "\n".join(f"  {r.pip_package}: {r.install_hint()}" for r in missing)
        raise MissingDependencyError(f"missing Python packages for this run:\n{hints}")


def _prepare_dataset(spec: DatasetSpec, k: int, cache_dir: Path) -> tuple[dict[str, Any], Path]:
    """Ground truth for the dataset (cached), and a description of the dataset for the results."""
    dataset = load_dataset(spec)
    truth, truth_path = load_or_compute_ground_truth(dataset, k, cache_dir)
    info = {
        "spec": spec.text,
        "n_base": dataset.n_base,
        "dim": dataset.dim,
        "n_queries": dataset.n_queries,
        "metric": dataset.metric,
        "ground_truth": truth.metadata,
        "ground_truth_file": str(truth_path),
    }
    return info, truth_path


def _run_worker(job: WorkerJob, job_path: Path) -> list[dict[str, Any]]:
    """Run one worker process with its thread environment; its stderr (progress, errors) passes through.

    Raises RuntimeError when the worker fails, after it has printed why.
    """
    job_path.write_text(job.to_json())
    environment = os.environ | thread_environment(job.threads)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    completed = subprocess.run(
        [sys.executable, "-m", "bench.worker", str(job_path)], env=environment, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{job.dataset.text} {job.system} threads={job.threads}: "
            f"worker exited with {completed.returncode}"
        )
    return json.loads(Path(job.output_path).read_text())


def _summary_line(measurement: dict[str, Any]) -> str:
    """One measurement on one line; a combined row also shows its QPS range across rounds."""
    param = "exact" if measurement["param"] is None else f"{measurement['param_name']}={measurement['param']}"
    spread = (
        f" range={format_qps(measurement['qps_min'])}–{format_qps(measurement['qps_max'])}"
        if "rounds" in measurement
        else ""
    )
    return (
        f"  {measurement['system']:<11} threads={measurement['threads']:<2} "
        f"batch={measurement['batch']:<5} {param:<14} recall={measurement['recall']:.4f} "
        f"QPS={format_qps(measurement['qps']):>9}{spread}  p50={measurement['latency_ms_p50']:.3f} ms  "
        f"build={measurement['build_seconds']:.2f} s  mem={measurement['memory_peak_mb']:.1f} MB"
    )


@dataclass(frozen=True)
class _PlannedJob:
    """One (dataset, system, threads) job, run once per round in a fresh worker."""

    dataset_info: dict[str, Any]
    job: WorkerJob
    scratch_stem: str

    def for_round(self, round_number: int) -> tuple[WorkerJob, Path]:
        """This round's job, writing an output file of its own, and the file to pass it in."""
        stem = f"{self.scratch_stem}-round{round_number}"
        return replace(self.job, output_path=f"{stem}.out.json"), Path(f"{stem}.job.json")


def _plan_jobs(
    settings: RunSettings, datasets: list[tuple[dict[str, Any], Path]], scratch: Path
) -> list[_PlannedJob]:
    """Every (dataset, system, threads) job, in the order of the first round."""
    planned: list[_PlannedJob] = []
    for spec, (info, truth_path) in zip(settings.datasets, datasets):
        for system in settings.systems:
            for threads in settings.thread_counts:
                stem = str(scratch / f"{len(planned):03d}-{system}-{threads}")
                job = WorkerJob(
                    dataset=spec,
                    system=system,
                    threads=threads,
                    batches=settings.batches,
                    k=settings.k,
                    ground_truth_path=str(truth_path),
                    graph_settings=settings.graph_settings,
                    min_seconds=settings.min_seconds,
                    repeats=settings.repeats,
                    output_path=f"{stem}.out.json",
                )
                planned.append(_PlannedJob(dataset_info=info, job=job, scratch_stem=stem))
    return planned


def _print_worker_result(measurements: list[dict[str, Any]], job: WorkerJob, round_number: int) -> None:
    """One line per measurement of one worker, and a warning if other work disturbed it."""
    for measurement in measurements:
        print(_summary_line(measurement), flush=True)
    other_load = measurements[0]["other_load_cores"]
    if other_load > _DISTURBING_LOAD:
        print(f"  warning: other processes kept {other_load:.2f} cores busy during {job.system} "
              f"threads={job.threads} round {round_number}; its timings are disturbed", flush=True)


def run_benchmarks(settings: RunSettings) -> RunOutcome:
    """Measure every (dataset, system, thread count) in ``settings.rounds`` interleaved rounds.

    After each worker, that job's rounds so far are combined and merged into the results
    file, so an interrupted run keeps what it measured.
    """
    check_requirements(settings.systems)
    results_path = settings.output_dir / RESULTS_FILE
    document = load_or_empty(results_path)
    document["machine"] = machine_info()
    failures: list[str] = []
    datasets = []
    for spec in settings.datasets:
        info, truth_path = _prepare_dataset(spec, settings.k, settings.cache_dir)
        print(f"dataset {spec.text}: {info['n_base']} x {info['dim']}, {info['metric']}, "
              f"{info['n_queries']} queries; ground truth {truth_path}", flush=True)
        check = info["ground_truth"].get("shipped_ground_truth_check")
        if check:
            print(f"  shipped ground truth vs vecdb.knn: {check}", flush=True)
        datasets.append((info, truth_path))
    with tempfile.TemporaryDirectory(prefix="vecdb-bench-") as scratch:
        planned_jobs = _plan_jobs(settings, datasets, Path(scratch))
        rounds_by_job: list[dict[int, list[dict[str, Any]]]] = [{} for _ in planned_jobs]
        for round_number in range(1, settings.rounds + 1):
            print(f"round {round_number}/{settings.rounds}", flush=True)
            for index in round_order(range(len(planned_jobs)), round_number):
                job, job_path = planned_jobs[index].for_round(round_number)
                try:
                    measurements = _run_worker(job, job_path)
                except RuntimeError as error:
                    failures.append(f"round {round_number}: {error}")
                    print(f"  FAILED: {error}", flush=True)
                    continue
                _print_worker_result(measurements, job, round_number)
                rounds_by_job[index][round_number] = measurements
                document["datasets"][measurements[0]["dataset"]] = planned_jobs[index].dataset_info
                merge_measurements(document, combine_rounds(rounds_by_job[index]))
                save_results(results_path, document)
    combined = [row for rounds in rounds_by_job for row in combine_rounds(rounds)]
    if combined:
        print(f"best QPS of {settings.rounds} round(s), with the range across rounds:", flush=True)
    for row in combined:
        print(_summary_line(row), flush=True)
        mismatch = exact_recall_mismatch(row)
        if mismatch:
            failures.append(mismatch)
    report_paths = write_report(results_path, settings.output_dir) if document["measurements"] else []
    return RunOutcome(results_path=results_path, report_paths=report_paths, failures=failures)
