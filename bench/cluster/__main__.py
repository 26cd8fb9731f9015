"""python -m bench.cluster: vecdb.cluster (shards on Ray) against the embedded database.

For each dataset: an embedded database (vecdb.open) and one cluster per (shards, replicas)
configuration (vecdb.cluster.open on a local Ray this run starts), each filled with the
same vectors in the same batches into an HNSW collection (M=16, ef_construction=200),
ingest points/s timed. The search ef is the smallest candidate at which the embedded
collection reaches recall@10 >= 0.95; every target searches with it and reports its
merged recall@10. Then, in rounds, every target is measured one query per call from one
client, in batches of 100 queries from one client, and one query per call from 8 client
threads: QPS and p50/p99 per call. The Ray hop (cluster p50 - embedded p50) and the batch
overhead are taken within each round; the report gives medians over rounds and judges
the issue's goals. Writes OUT/cluster.json, OUT/cluster.md and OUT/cluster.png.

Starts Ray, so it must run where the network is loopback only:
  sh .ci/loopback-only .venv/bin/python -m bench.cluster      (what make bench-cluster runs)
Ray's files go to a temporary folder of the run's own, removed at the end with every Ray
process. Needs the bench extra (pip install -e ".[bench]").

The full run (both datasets, 1, 2 and 4 shards, 0 and 1 replicas, 3 rounds) takes ~35
minutes on 2 cores, most of it filling the 1M set (four times: embedded, then one folder
per shard count).

A quick look (a few minutes):
  sh .ci/loopback-only .venv/bin/python -m bench.cluster --datasets synthetic:20000:128:l2 \\
      --shards 1,2 --replicas 0,1 --rounds 1 --duration 2 --queries 200 --out /tmp/cluster
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from bench.cluster.analysis import summary
from bench.cluster.benchmark import BenchParams, run_dataset
from bench.cluster.plot import plot_relative_qps
from bench.cluster.ray_session import private_ray
from bench.cluster.report import markdown
from bench.datasets import resolve_spec_text
from bench.durable.__main__ import read_results, write_results
from bench.machine import machine_info
from bench.optional import RAY, installed_version
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR
from bench.server.recall import DEFAULT_EF_CANDIDATES

FORMAT = "vecdb-cluster-bench"
NAME = "cluster"
DEFAULT_DATASETS = ("npm-minilm-384", "synthetic:1000000:128:l2")


def _datasets(text: str) -> List[str]:
    specs = [field.strip() for field in text.split(",") if field.strip()]
    if not specs:
        raise argparse.ArgumentTypeError("name at least one dataset")
    try:
        return [resolve_spec_text(spec) for spec in specs]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _integers(minimum: int) -> Callable[[str], List[int]]:
    """A parser of ``"0,1"`` -> [0, 1] that refuses values below ``minimum``."""
    def parse(text: str) -> List[int]:
        try:
            values = [int(field) for field in text.split(",") if field.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected integers >= {minimum}, got {text!r}")
        return values
    return parse


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=_datasets, default=list(DEFAULT_DATASETS),
                        help="comma-separated dataset specs (default: %s)" % ",".join(DEFAULT_DATASETS))
    parser.add_argument("--shards", type=_integers(1), default=[1, 2, 4], help="shard counts (default: 1,2,4)")
    parser.add_argument("--replicas", type=_integers(0), default=[0, 1],
                        help="read replicas per shard, each with every shard count (default: 0,1)")
    parser.add_argument("--queries", type=int, default=None,
                        help="use only the first N queries of each dataset (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds before each measured window (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds measured per target, measurement and round (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=8,
                        help="client threads of the concurrent measurement (default: %(default)s)")
    parser.add_argument("--batch-queries", type=int, default=100,
                        help="queries per call of the batch measurement (default: %(default)s)")
    parser.add_argument("-k", type=int, default=10, help="neighbours per search (default: %(default)s)")
    parser.add_argument("--target-recall", type=float, default=0.95, help="(default: %(default)s)")
    parser.add_argument("--ef-candidates", type=_integers(1), default=list(DEFAULT_EF_CANDIDATES),
                        help="search ef values tried on the embedded collection, smallest first (default: %s)"
                             % ",".join(map(str, DEFAULT_EF_CANDIDATES)))
    parser.add_argument("--ingest-batch", type=int, default=2000, help="points per upsert (default: %(default)s)")
    parser.add_argument("--hnsw-m", type=int, default=16, help="HNSW M (default: %(default)s)")
    parser.add_argument("--ef-construction", type=int, default=200, help="(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / NAME, help="(default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_CACHE_DIR / NAME,
                        help="where the databases live during the run (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help="ground-truth cache (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render cluster.md and cluster.png from OUT/cluster.json without measuring")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("need --rounds >= 1, --duration > 0 and --warmup >= 0")
    if min(args.clients, args.batch_queries, args.ingest_batch, args.k) < 1:
        parser.error("--clients, --batch-queries, --ingest-batch and -k must be >= 1")
    if args.queries is not None and args.queries < args.batch_queries:
        parser.error(f"--queries must be at least --batch-queries ({args.batch_queries}): a batch needs that many")
    return args


def render(out: Path, document: Dict[str, Any]) -> None:
    """Write OUT/cluster.json (with the summaries), OUT/cluster.md and OUT/cluster.png."""
    params = document["params"]
    summaries = [summary(result, params) for result in document["datasets"]]
    document["summary"] = summaries
    out.mkdir(parents=True, exist_ok=True)
    plot_file = f"{NAME}.png"
    plot_relative_qps(document["datasets"], summaries,
                      {"single": "single query, 1 client", "batch": f"batches of {params['batch_queries']}",
                       "concurrent": f"single query, {params['clients']} clients"}, out / plot_file)
    write_results(out, NAME, document, markdown(document, summaries, plot_file))


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.report_only:
        render(args.out, read_results(args.out, NAME, FORMAT))
        return
    params = BenchParams(datasets=args.datasets, shards=args.shards, replicas=args.replicas, k=args.k,
                         target_recall=args.target_recall, ef_candidates=args.ef_candidates, queries=args.queries,
                         batch_queries=args.batch_queries, clients=args.clients, warmup_seconds=args.warmup,
                         duration_seconds=args.duration, rounds=args.rounds, ingest_batch=args.ingest_batch,
                         hnsw_m=args.hnsw_m, ef_construction=args.ef_construction)
    started = time.perf_counter()
    with private_ray():
        results = [run_dataset(spec, params, args.work_dir, args.cache_dir) for spec in params.datasets]
    document = {"format": FORMAT, "version": 1, "params": asdict(params), "datasets": results,
                "machine": machine_info(), "ray_version": installed_version(RAY),
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": shlex.join(["python", "-m", "bench.cluster", *argv]),
                "seconds": time.perf_counter() - started}
    render(args.out, document)


if __name__ == "__main__":
    main()
