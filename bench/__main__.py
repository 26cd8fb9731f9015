"""Command line: ``python -m bench [options]`` measures; ``python -m bench report FILE`` re-renders."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bench.datasets import DatasetSpec, resolve_spec_text
from bench.datasets.named import NAMED_DATASETS
from bench.optional import MissingDependencyError
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR
from bench.report import write_report
from bench.runner import RunSettings, run_benchmarks
from bench.systems import SYSTEMS, GraphSettings
from bench.systems.base import DEFAULT_EF_SEARCH, DEFAULT_NPROBE, DEFAULT_RERANK
from bench.threads import parse_thread_counts

_EXAMPLES = """\
datasets:
  npm-minilm-384            {npm}
  synthetic:N:DIM[:METRIC]  seeded Gaussian mixture, e.g. synthetic:100000:128:l2 (metric l2|ip|cosine)
  PATH                      folder with base.npy + queries.npy, ann-benchmarks .hdf5,
                            or TEXMEX <prefix>_base.fvecs/.bvecs (with <prefix>_query.*)

systems: {systems}

examples:
  python -m bench --dataset npm-minilm-384 --systems vecdb-flat,numpy-flat,faiss-flat --batch 1,1000 --threads 1,all
  python -m bench --dataset synthetic:100000:128:l2 --dataset synthetic:50000:768:cosine
  python -m bench --dataset npm-minilm-384 --systems hnswlib,faiss-hnsw,usearch --threads all --ef-search 16,64,256
  python -m bench --dataset ~/data/sift/sift_base.fvecs --queries 1000 --systems vecdb-flat,faiss-flat
  python -m bench report bench/results/results.json      # rebuild results.md and the plots

Each (dataset, system, thread count) job runs in its own process, once per round
(--rounds): round 1 runs every job in order, round 2 in reverse, and so on, so a slow
phase of a shared machine hits every system rather than one. A row reports the best
round's QPS (with that round's recall, latency and other load), every round's QPS and
their min/median/max, the fastest round's build time and the median memory. Results
merge into OUT/results.json (a re-run replaces matching rows), then OUT/results.md and
one recall-vs-QPS PNG per dataset are written. Ground truth is computed once with
vecdb.knn and cached in CACHE_DIR/ground_truth/.
"""


def _int_list(text: str) -> tuple[int, ...]:
    values = tuple(int(field) for field in text.split(","))
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _name_list(known: dict) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(","))
        unknown = [name for name in names if name not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; known: {', '.join(known)}")
        return names

    return parse


def _dataset_text(text: str) -> str:
    try:
        return resolve_spec_text(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _thread_counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(parse_thread_counts(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_parser() -> argparse.ArgumentParser:
    """The parser for measuring runs."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure recall@k, QPS, build time and memory of vecdb and its peers.",
        epilog=_EXAMPLES.format(
            npm=NAMED_DATASETS["npm-minilm-384"].description, systems=", ".join(SYSTEMS)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-d", "--dataset", dest="datasets", action="append", type=_dataset_text,
                        required=True, metavar="SPEC", help="dataset to run on; repeat for several")
    parser.add_argument("-s", "--systems", type=_name_list(SYSTEMS), default=("vecdb-flat", "numpy-flat"),
                        help="comma-separated systems (default: vecdb-flat,numpy-flat)")
    parser.add_argument("-k", type=int, default=10, help="neighbours per query; recall@k (default: 10)")
    parser.add_argument("--batch", type=_int_list, default=(1, 1000),
                        help="query batch sizes; 1 issues queries one at a time (default: 1,1000)")
    parser.add_argument("--threads", type=_thread_counts, default=_thread_counts("1,all"),
                        help="thread counts, 'all' = every usable core (default: 1,all)")
    parser.add_argument("--queries", type=int, metavar="N", help="use only the first N queries")
    parser.add_argument("--metric", choices=("l2", "ip", "cosine"),
                        help="metric for path datasets and synthetic specs without one")
    parser.add_argument("--synthetic-queries", type=int, default=1000, metavar="N",
                        help="queries generated for synthetic datasets (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for synthetic datasets (default: 0)")
    parser.add_argument("--ef-search", type=_int_list, default=DEFAULT_EF_SEARCH, metavar="LIST",
                        help="ef_search sweep for graph systems (default: %s)"
                        % ",".join(map(str, DEFAULT_EF_SEARCH)))
    parser.add_argument("--hnsw-m", type=int, default=16, help="HNSW M for graph systems (default: 16)")
    parser.add_argument("--ef-construction", type=int, default=200,
                        help="HNSW efConstruction for graph systems (default: 200)")
    parser.add_argument("--pq-m", type=int, metavar="BYTES",
                        help="bytes per code for the PQ systems (default: dimension / 8, e.g. 48 for 384-d)")
    parser.add_argument("--rerank", type=_int_list, default=DEFAULT_RERANK, metavar="LIST",
                        help="candidates re-ranked, swept by vecdb-pq, faiss-pq, faiss-opq (default: %s)"
                        % ",".join(map(str, DEFAULT_RERANK)))
    parser.add_argument("--nprobe", type=_int_list, default=DEFAULT_NPROBE, metavar="LIST",
                        help="IVF lists probed, swept by faiss-ivfpq (default: %s)" % ",".join(map(str, DEFAULT_NPROBE)))
    parser.add_argument("--min-time", type=float, default=1.0, metavar="SECONDS",
                        help="minimum length of each timed run (default: 1.0)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per round in each worker; the best counts (default: 3)")
    parser.add_argument("--rounds", type=_positive_int, default=3, metavar="N",
                        help="run every job N times, interleaved with the other jobs; the best "
                        "round's QPS counts and every round's is recorded (default: 3)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR,
                        help=f"output folder (default: {DEFAULT_RESULTS_DIR})")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help=f"ground-truth cache folder (default: {DEFAULT_CACHE_DIR})")
    return parser


def report_parser() -> argparse.ArgumentParser:
    """The parser for ``report``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench report",
        description="Rewrite results.md and the recall-vs-QPS plots from a results JSON file.",
    )
    parser.add_argument("results", type=Path, help="results.json written by a run")
    parser.add_argument("--out", type=Path, help="output folder (default: the results file's folder)")
    return parser


def _report(argv: list[str]) -> int:
    arguments = report_parser().parse_args(argv)
    for path in write_report(arguments.results, arguments.out or arguments.results.parent):
        print(path)
    return 0


def _run(argv: list[str]) -> int:
    arguments = run_parser().parse_args(argv)
    specs = tuple(
        DatasetSpec(
            text=text,
            metric=arguments.metric,
            query_limit=arguments.queries,
            synthetic_queries=arguments.synthetic_queries,
            seed=arguments.seed,
        )
        for text in arguments.datasets
    )
    settings = RunSettings(
        datasets=specs,
        systems=arguments.systems,
        k=arguments.k,
        batches=arguments.batch,
        thread_counts=arguments.threads,
        graph_settings=GraphSettings(
            m=arguments.hnsw_m, ef_construction=arguments.ef_construction, ef_search=arguments.ef_search,
            pq_m=arguments.pq_m, rerank=arguments.rerank, nprobe=arguments.nprobe,
        ),
        min_seconds=arguments.min_time,
        repeats=arguments.repeats,
        rounds=arguments.rounds,
        output_dir=arguments.out,
        cache_dir=arguments.cache_dir,
    )
    outcome = run_benchmarks(settings)
    print(f"results: {outcome.results_path}")
    for path in outcome.report_paths:
        print(f"report:  {path}")
    for failure in outcome.failures:
        print(f"failed:  {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _report(argv[1:]) if argv[:1] == ["report"] else _run(argv)
    except (MissingDependencyError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
