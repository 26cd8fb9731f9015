"""``vecdb bench``: the benchmark harness of a vecdb checkout (bench/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Tuple

import click

# The harness's entry points; each takes --help.
SUITES = {
    "indexes": "bench",  # flat, HNSW and PQ indexes against numpy, FAISS, hnswlib, USearch
    "durable": "bench.durable",  # collections: ingest, reopen, filtered search, against Chroma
    "planner": "bench.planner",  # MRL funnel and filtered-search plans
    "calibration": "bench.planner.calibration",  # the planner's cost model re-fitted on this machine
    "server": "bench.server",  # vecdb serve under load, against Chroma's server
}


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--suite", type=click.Choice(sorted(SUITES)), default="indexes", show_default=True,
              help="Which benchmark to run.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(suite: str, args: Tuple[str, ...]) -> None:
    """Run a benchmark suite of the harness in bench/, passing ARGS on.

    The harness lives in the source checkout (it is not installed with the
    package) and its peers (FAISS, hnswlib, USearch, Chroma) come with the
    bench extra: pip install -e ".[bench]", or use the Makefile's bench-*
    targets, which set everything up. Results go to bench/results/.

    \b
    Examples:
      vecdb bench -- --help
      vecdb bench --dataset npm-minilm-384 --systems vecdb-hnsw,hnswlib,faiss-hnsw --batch 1 --threads 1
      vecdb bench --suite planner funnel --out bench/results/planner
      vecdb bench --suite calibration --datasets npm-minilm-384 --funnel-dataset none --report /tmp/calibration.md
      vecdb bench --suite server -- --help
    """
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "bench" / "__init__.py").exists():
        raise click.ClickException(f"no benchmark harness next to this vecdb ({checkout}): vecdb bench runs from a "
                                   "source checkout (git clone, then pip install -e \".[bench]\")")
    status = subprocess.call([sys.executable, "-m", SUITES[suite], *args], cwd=checkout)
    sys.exit(status if status >= 0 else 128 - status)  # killed by a signal: the shell's convention
