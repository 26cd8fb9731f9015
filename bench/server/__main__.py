"""python -m bench.server: vecdb serve against Chroma's server under concurrent search load.

Starts `vecdb serve` and `chroma run` as child processes on free loopback ports, loads the
dataset into each through its own Python client (HNSW M=16, ef_construction=200 on both),
picks each system's smallest search ef reaching the target recall@k, measures vecdb's
embedded search on a copy of the same database, then runs the load generator (asyncio +
one connection per client, through httpx and through a minimal raw HTTP client) with each
client count against vecdb (JSON and MessagePack; one process, and `--workers 2`) and Chroma
(JSON): QPS and p50/p95/p99 latency. Both servers are stopped at the
end, on errors and on Ctrl-C. Writes OUT/server.json, OUT/server.md and OUT/server.png.

Defaults take about 15 minutes on 2 cores. A quick look: --clients 1,8 --duration 3 --rounds 1.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Optional

from bench.datasets import resolve_spec_text
from bench.durable.__main__ import read_results, write_results
from bench.machine import machine_info
from bench.optional import CHROMADB, FASTAPI, HTTPX, MSGPACK, SNIFFIO, UVICORN, UVLOOP, installed_version
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR
from bench.server.analysis import summary, summary_for_json
from bench.server.benchmark import BenchParams, run_benchmark
from bench.server.load import HTTP_CLIENTS
from bench.server.plot import plot_load
from bench.server.recall import DEFAULT_EF_CANDIDATES
from bench.server.report import markdown

FORMAT = "vecdb-server-bench"
NAME = "server"


def _positive_ints(text: str) -> List[int]:
    """``"1,8,32"`` -> [1, 8, 32]."""
    try:
        values = [int(field) for field in text.split(",") if field.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _http_clients(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(HTTP_CLIENTS))
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(HTTP_CLIENTS)}; got {text!r}")
    return names


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="npm-minilm-384", help="dataset spec (default: %(default)s)")
    parser.add_argument("--clients", type=_positive_ints, default=[1, 8, 32],
                        help="concurrent client counts (default: 1,8,32)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every load run (default: %(default)s)")
    parser.add_argument("-k", type=int, default=10, help="neighbours per search (default: %(default)s)")
    parser.add_argument("--target-recall", type=float, default=0.95, help="(default: %(default)s)")
    parser.add_argument("--ef-candidates", type=_positive_ints, default=list(DEFAULT_EF_CANDIDATES),
                        help="search ef values tried, smallest first (default: %s)"
                             % ",".join(map(str, DEFAULT_EF_CANDIDATES)))
    parser.add_argument("--http-clients", type=_http_clients, default=list(HTTP_CLIENTS),
                        help="load-generator HTTP clients: httpx, raw (default: both)")
    parser.add_argument("--workers", type=_positive_ints, default=[1, 2],
                        help="vecdb serve --workers counts measured, each on a copy of the database (default: 1,2)")
    parser.add_argument("--batch", type=int, default=1000, help="points per upsert / add (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / NAME, help="(default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_CACHE_DIR / NAME,
                        help="where the servers' databases live during the run (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help="ground-truth cache (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render server.md and server.png from OUT/server.json without measuring")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("need --rounds >= 1, --duration > 0 and --warmup >= 0")
    return args


def render(out: Path, document: Dict[str, Any]) -> None:
    """Write OUT/server.json (with the summary), OUT/server.md and OUT/server.png."""
    computed = summary(document["runs"], document["embedded"])
    document["summary"] = summary_for_json(computed)
    out.mkdir(parents=True, exist_ok=True)
    plot_file = f"{NAME}.png"
    dataset = document["dataset"]
    plot_load(computed["best"], f"{dataset['name']}: search under load, k={document['params']['k']}, "
                                "vecdb serve vs chroma run", out / plot_file)
    write_results(out, NAME, document, markdown(document, computed, plot_file))


def _exit_on_sigterm(number: int, frame: Any) -> NoReturn:
    """SIGTERM ends the run like Ctrl-C: the servers are stopped on the way out."""
    raise SystemExit(128 + number)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.report_only:
        render(args.out, read_results(args.out, NAME, FORMAT))
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    params = BenchParams(dataset=resolve_spec_text(args.dataset), k=args.k, clients=args.clients,
                         warmup_seconds=args.warmup, duration_seconds=args.duration, rounds=args.rounds,
                         target_recall=args.target_recall, ef_candidates=args.ef_candidates, batch=args.batch,
                         http_clients=args.http_clients, workers=args.workers)
    measured = run_benchmark(params, args.work_dir, args.cache_dir)
    document = {"format": FORMAT, "version": 1, **measured, "machine": machine_info(),
                "server_libraries": {requirement.pip_package: installed_version(requirement)
                                     for requirement in (CHROMADB, FASTAPI, UVICORN, HTTPX, SNIFFIO, UVLOOP, MSGPACK)},
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": shlex.join(["python", "-m", "bench.server", *argv])}
    render(args.out, document)


if __name__ == "__main__":
    main()
