"""python -m bench.planner: the query planner's benchmarks.

  funnel    Matryoshka funnel (prefix HNSW -> exact re-rank) against full-dimension HNSW
            of the same collection: QPS at recall@10 = 0.95 (goal: >= 2.5x), the plan
            tune() picks, memory of the prefix indexes against the full one.
  filtered  Filtered search at several selectivities: the planner's default plan against
            forced plans.Scan() and plans.Graph(ef): recall@10 and QPS, with the check
            "never more than 10% slower than the better forced plan".
  report    Re-render the Markdown and plots from OUT/funnel.json and OUT/filtered.json.

For each dataset: exact ground truth is computed once (vecdb.knn, cached under
CACHE_DIR/ground_truth/); a fresh process builds the collection (all cores) and another
reopens it and measures (one thread, one query per call). Results merge into
OUT/<job>.json (a re-run replaces the same dataset's entry) with the machine and the
command line, then OUT/<job>.md and one PNG per dataset are written.

Smaller runs: --dataset synthetic-mrl:20000:768 --queries 200 --rounds 1 (minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from bench.datasets import Dataset, DatasetSpec, load_dataset, resolve_spec_text
from bench.durable.__main__ import write_results
from bench.ground_truth import load_or_compute_ground_truth
from bench.machine import machine_info
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR, REPO_ROOT
from bench.planner.analysis import filtered_share, funnel_summary, planner_check
from bench.planner.buckets import bucket_limit, bucket_of_rows
from bench.planner.plot import plot_filtered, plot_funnel
from bench.planner.report import filtered_markdown, funnel_markdown
from bench.report.at_recall import TARGET_RECALL
from bench.threads import thread_environment

DEFAULT_DATASETS = {
    "funnel": ("npm-minilm-384", "synthetic-mrl:200000:768:cosine"),
    "filtered": ("npm-minilm-384",),
}
FORMATS = {"funnel": "vecdb-planner-funnel-bench", "filtered": "vecdb-planner-filtered-bench"}
RENDERERS: Dict[str, tuple[Callable[..., str], Callable[..., None]]] = {
    "funnel": (funnel_markdown, plot_funnel),
    "filtered": (filtered_markdown, plot_filtered),
}
# Datasets built with the Matryoshka property need no rotation; --rotate auto learns a PCA
# rotation for every other dataset.
_MRL_SPEC_PREFIX = "synthetic-mrl:"


def _int_list(text: str) -> List[int]:
    values = [int(field) for field in text.split(",") if field]
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _percent_list(text: str) -> List[float]:
    values = [float(field) for field in text.split(",")]
    try:
        for value in values:
            bucket_limit(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return values


def _dataset_text(text: str) -> str:
    try:
        return resolve_spec_text(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _common_arguments(parser: argparse.ArgumentParser, job: str) -> None:
    parser.add_argument("-d", "--dataset", dest="datasets", action="append", type=_dataset_text, metavar="SPEC",
                        help="dataset spec; repeat for several (default: " + ", ".join(DEFAULT_DATASETS[job]) + ")")
    parser.add_argument("--queries", type=int, metavar="N", help="use only the first N queries")
    parser.add_argument("--synthetic-queries", type=int, default=1000, metavar="N",
                        help="queries generated for synthetic datasets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for synthetic data, buckets and tune (default: %(default)s)")
    parser.add_argument("-k", type=int, default=10, help="neighbours per query; recall@k (default: %(default)s)")
    parser.add_argument("--target-recall", type=float, default=TARGET_RECALL, help="(default: %(default)s)")
    parser.add_argument("--hnsw-m", type=int, default=16, help="(default: %(default)s)")
    parser.add_argument("--ef-construction", type=int, default=200, help="(default: %(default)s)")
    parser.add_argument("--ef-search", type=int, default=64,
                        help="the collection's default ef (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=10_000, help="points per upsert (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved timing rounds; the best counts (default: %(default)s)")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds per timed run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per round (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "planner", help="(default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_CACHE_DIR / "planner",
                        help="where collections are built (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help="ground-truth cache (default: %(default)s)")


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.planner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest="job", required=True)
    funnel = jobs.add_parser("funnel", help="MRL funnel vs full-dimension HNSW (issue benchmark A)")
    _common_arguments(funnel, "funnel")
    funnel.add_argument("--mrl-dims", type=_int_list, default=[64, 128, 256], help="(default: 64,128,256)")
    funnel.add_argument("--rotate", choices=("auto", "none", "pca"), default="auto",
                        help="auto: pca except for synthetic-mrl datasets (default: %(default)s)")
    funnel.add_argument("--ef", type=_int_list, default=[16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
                        help="graph ef sweep (default: 16,24,32,48,64,96,128,192,256,384,512)")
    funnel.add_argument("--candidates", type=_int_list, default=[50, 60, 80, 100, 200, 400, 800],
                        help="funnel candidates sweep, at every prefix dimension (default: 50,60,80,100,200,400,800)")
    funnel.add_argument("--tune-queries", type=int, default=200,
                        help="pseudo-queries tune() samples with --tune-on stored (default: %(default)s)")
    funnel.add_argument("--tune-on", choices=("queries", "stored"), default="queries",
                        help="queries: tune() gets the first half of the dataset's queries and every plan is "
                             "measured on the other half; stored: tune() samples stored vectors and plans are "
                             "measured on all queries (default: %(default)s)")
    filtered = jobs.add_parser("filtered", help="planner vs forced scan / graph under filters (issue benchmark B)")
    _common_arguments(filtered, "filtered")
    filtered.add_argument("--selectivity", type=_percent_list, default=[0.1, 1.0, 10.0, 30.0, 50.0],
                          help="percent of points each filter keeps (default: 0.1,1,10,30,50)")
    filtered.add_argument("--graph-ef", type=_int_list, default=[16, 24, 32, 48, 64, 128],
                          help="forced graph ef values; --ef-search is always among them (default: 16,24,32,48,64,128)")
    filtered.add_argument("--mrl-dims", type=_int_list, default=[],
                          help="prefix indexes for the collection (default: none)")
    filtered.add_argument("--rotate", choices=("none", "pca"), default="none", help="(default: %(default)s)")
    filtered.add_argument("--explained-queries", type=int, default=20,
                          help="queries whose plan explain() records (default: %(default)s)")
    report = jobs.add_parser("report", help="re-render Markdown and plots from the JSON files in --out")
    report.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "planner", help="(default: %(default)s)")
    args = parser.parse_args(argv)
    if args.job == "funnel" and not args.mrl_dims:
        parser.error("funnel compares prefix indexes with the full one: --mrl-dims needs at least one size")
    return args


def run_job(job: str, spec: DatasetSpec, params: Dict[str, Any], folder: Path,
            threads: Optional[int]) -> Dict[str, Any]:
    """Run one job of ``bench.planner.jobs`` in a fresh process (native thread pools limited
    to ``threads`` when given) and return its JSON result; its progress goes to stderr."""
    request = json.dumps({"job": job, "spec": asdict(spec), "params": params, "folder": str(folder)})
    environment = dict(os.environ, **(thread_environment(threads) if threads else {}))
    completed = subprocess.run([sys.executable, "-m", "bench.planner.jobs", request], cwd=REPO_ROOT,
                               env=environment, stdout=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{job} job on {spec.text} failed (exit {completed.returncode}); see its stderr above")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _rotation(args: argparse.Namespace, spec_text: str) -> Optional[str]:
    if args.rotate == "auto":
        return None if spec_text.startswith(_MRL_SPEC_PREFIX) else "pca"
    return None if args.rotate == "none" else args.rotate


def _params(args: argparse.Namespace, spec_text: str) -> Dict[str, Any]:
    params = {"k": args.k, "target_recall": args.target_recall, "M": args.hnsw_m,
              "ef_construction": args.ef_construction, "ef_search": args.ef_search, "batch": args.batch,
              "rounds": args.rounds, "min_seconds": args.min_time, "repeats": args.repeats, "seed": args.seed,
              "mrl_dims": args.mrl_dims, "rotate": _rotation(args, spec_text)}
    if args.job == "funnel":
        params.update(ef=args.ef, candidates=args.candidates, tune_queries=args.tune_queries, tune_on=args.tune_on,
                      buckets=False)
    else:
        params.update(ef=sorted(set(args.graph_ef) | {args.ef_search}), selectivities=args.selectivity,
                      explained_queries=args.explained_queries, buckets=True)
    return params


def _filtered_truth(dataset: Dataset, params: Dict[str, Any], cache_dir: Path) -> List[str]:
    """Cached exact top-k among the points each filter allows (indices into the allowed rows)."""
    buckets = bucket_of_rows(dataset.n_base, params["seed"])
    paths = []
    for percent in params["selectivities"]:
        limit = bucket_limit(percent)
        allowed = Dataset(name=f"{dataset.name}-bucket-lt{limit}-seed{params['seed']}",
                          base=np.ascontiguousarray(dataset.base[buckets < limit]), queries=dataset.queries,
                          metric=dataset.metric)
        paths.append(str(load_or_compute_ground_truth(allowed, params["k"], cache_dir)[1]))
    return paths


def _measure_dataset(args: argparse.Namespace, spec_text: str, command: str) -> tuple[str, Dict[str, Any]]:
    """Build and measure one dataset; the run's document entry under its dataset name."""
    spec = DatasetSpec(text=spec_text, query_limit=args.queries, synthetic_queries=args.synthetic_queries,
                       seed=args.seed)
    dataset = load_dataset(spec)
    params = _params(args, spec_text)
    print(f"{args.job}: {dataset.name} ({dataset.n_base:,} x {dataset.dim}, {dataset.metric}, "
          f"{dataset.n_queries} queries)", flush=True)
    full_truth = str(load_or_compute_ground_truth(dataset, args.k, args.cache_dir)[1])
    truths: Dict[str, Any] = {"ground_truth": full_truth}
    if args.job == "filtered":
        truths = {"ground_truth": _filtered_truth(dataset, params, args.cache_dir),
                  "unfiltered_ground_truth": full_truth}
    folder = args.work_dir / args.job / re.sub(r"[^A-Za-z0-9._-]+", "_", dataset.name)
    build = run_job("build", spec, params, folder, threads=None)
    print(f"  built in {build['seconds']:.1f} s", flush=True)
    result = run_job(args.job, spec, dict(params, **truths), folder, threads=1)
    run = {"dataset": dataset.name, "spec": spec_text, "n_base": dataset.n_base, "dim": dataset.dim,
           "metric": dataset.metric, "n_queries": dataset.n_queries, "k": args.k, "command": command,
           "machine": machine_info(), "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "params": params, "build": build, "stats": result["stats"]}
    if args.job == "funnel":
        run.update(tune=result["tune"], rows=result["rows"],
                   summary=funnel_summary(result["rows"], args.target_recall))
    else:
        run["unfiltered"] = result["unfiltered"]
        run["selectivities"] = result["selectivities"]
        _judge_filtered(run)
    return dataset.name, run


def _judge_filtered(run: Dict[str, Any]) -> None:
    """Each selectivity's planner check (against scan and graph at ef_search) and filtered
    share, from its measured rows and the run's parameters (``report`` judges stored runs
    again, so a rule changed later applies to them too)."""
    target, ef_search = run["params"]["target_recall"], run["params"]["ef_search"]
    for level in run["selectivities"]:
        rows = level["rows"]
        planner = next(r for r in rows if r["kind"] == "planner")
        forced = [r for r in rows if r["kind"] == "scan" or (r["kind"] == "graph" and r["params"]["ef"] == ef_search)]
        level["check"] = planner_check(planner, forced, target, level["planner_plans"], ef_search)
        level["share"] = filtered_share(rows, run["unfiltered"], target)


def _document_path(out: Path, job: str) -> Path:
    return out / f"{job}.json"


def load_document(out: Path, job: str) -> Dict[str, Any]:
    """OUT/<job>.json, or an empty document when there is none yet."""
    path = _document_path(out, job)
    if not path.is_file():
        return {"format": FORMATS[job], "version": 1, "runs": {}}
    document = json.loads(path.read_text())
    if document.get("format") != FORMATS[job]:
        raise SystemExit(f"{path} is not a {FORMATS[job]} file")
    return document


def render(out: Path, job: str, document: Dict[str, Any]) -> None:
    """Write OUT/<job>.json, OUT/<job>.md and one PNG per dataset."""
    markdown, plot = RENDERERS[job]
    plot_files = {}
    out.mkdir(parents=True, exist_ok=True)
    for name, run in document["runs"].items():
        plot_files[name] = f"{job}-{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}.png"
        plot(run, out / plot_files[name])
    write_results(out, job, document, markdown(document, plot_files))


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.job == "report":
        jobs = [job for job in FORMATS if _document_path(args.out, job).is_file()]
        if not jobs:
            raise SystemExit(f"no {' or '.join(f'{job}.json' for job in FORMATS)} in {args.out}")
        for job in jobs:
            document = load_document(args.out, job)
            for run in document["runs"].values():  # judged again: a rule changed later applies too
                if job == "filtered":
                    _judge_filtered(run)
                else:
                    run["summary"] = funnel_summary(run["rows"], run["params"]["target_recall"])
            render(args.out, job, document)
        return
    command = shlex.join(["python", "-m", "bench.planner", *argv])
    for spec_text in args.datasets or [resolve_spec_text(text) for text in DEFAULT_DATASETS[args.job]]:
        name, run = _measure_dataset(args, spec_text, command)
        document = load_document(args.out, args.job)
        document["runs"][name] = run
        render(args.out, args.job, document)


if __name__ == "__main__":
    main()
