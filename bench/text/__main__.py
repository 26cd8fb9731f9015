"""python -m bench.text: BM25 full-text search, vecdb against bm25s and tantivy, in one run.

Every system indexes the same terms (vecdb's Analyzer: Unicode words, lowercased, English
stop words dropped, Snowball-stemmed) with BM25 k1 = 1.2, b = 0.75, and answers each query
with its top k, one query per call, on one thread:

  vecdb-index                   vecdb's native InvertedIndex; a call analyzes the query text
  vecdb-index-terms             the same index, a call given the analyzed terms (as the peers)
  vecdb-collection              an embedded collection: upserts with {"text": ...} payloads,
                                then create_text_index; search(text=..., with_payload=False)
  vecdb-collection-index-first  the same, the text index created before the upserts
  bm25s                         bm25s.BM25(method="lucene"), retrieve() one query at a time
  tantivy                       tantivy-py in memory, whitespace tokenizer over the terms,
                                a BooleanQuery of TermQuery clauses per call
  tantivy-ids                   the same, each hit's id (a stored field) read with
                                searcher.doc(address): the user path, as a collection's ids

Per round, each system runs in a fresh process with native thread pools limited to one
thread: build (timed from the analyzed texts), one untimed pass over the queries (the
answers compared across systems), then timed passes. Rounds alternate the order; the
best round's QPS counts. The collection systems need Collection.create_text_index: a build
without it skips them, saying so. Results: OUT/text.json and OUT/text.md; the exit status
is 1 when a vecdb system disagrees with bm25s or a system's answers change between rounds.

Quick run: --dataset synthetic:3000:200 --rounds 1 --min-time 0.2 (seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.durable.__main__ import read_results, write_results
from bench.machine import machine_info
from bench.optional import NUMPY, VECDB, Requirement, installed_version
from bench.paths import DEFAULT_CACHE_DIR, DEFAULT_RESULTS_DIR, REPO_ROOT
from bench.progress import progress
from bench.rounds import round_order
from bench.text.agreement import exact_agreement, overlap
from bench.text.corpus import AnalyzedCorpus, analyze, load_corpus, new_analyzer, query_terms
from bench.text.report import console_report, markdown
from bench.text.systems import BM25S, COLLECTION_SYSTEMS, SYSTEMS, TANTIVY, collection_text_search_available
from bench.threads import thread_environment

FORMAT = "vecdb-text-bench"
REFERENCE = "bm25s"
RESULTS_NAME = "text"
PYSTEMMER = Requirement("Stemmer", "PyStemmer")
# Timings of the analysis alone: the best of this many passes.
ANALYSIS_REPEATS = 3
# Thread pools the engines could start beyond the OpenMP/BLAS ones: tantivy's (Rust, rayon)
# and numba's, were bm25s to use it.
_MORE_THREAD_VARIABLES = ("RAYON_NUM_THREADS", "NUMBA_NUM_THREADS")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.text", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="npm-minilm-384",
                        help="npm-minilm-384 (../shared/data), a folder with base_texts.txt and query_texts.txt, "
                             "or synthetic:DOCS[:QUERIES] (default: %(default)s)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated, from: " + ", ".join(SYSTEMS) + " (default: all)")
    parser.add_argument("--queries", type=int, metavar="N", help="use only the first N queries")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of a synthetic corpus and of vectors made up for it (default: %(default)s)")
    parser.add_argument("-k", type=int, default=10, help="hits per query (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds, each system in a fresh process each round; the best counts "
                             "(default: %(default)s)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds each timed run lasts at least, in whole passes over the queries "
                             "(default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per round (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "text", help="(default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_CACHE_DIR / "text",
                        help="collections' databases and each job's answers (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render OUT/text.md from OUT/text.json and print its table")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1 or args.k < 1:
        parser.error("--rounds, --repeats and -k must be at least 1")
    return args


def skipped_systems(systems: list[str]) -> dict[str, str]:
    """Why each of ``systems`` cannot run here, by name: a missing package, or a vecdb build
    whose collections have no text index yet."""
    skipped = {}
    for name in systems:
        system = SYSTEMS[name]
        if not system.requirement.is_installed():
            skipped[name] = (f"the Python package '{system.requirement.pip_package}' is not installed "
                             f"({system.requirement.install_hint()}, or pip install -e \".[bench]\")")
        elif name in COLLECTION_SYSTEMS and not collection_text_search_available():
            skipped[name] = "not available in this build (vecdb.Collection has no create_text_index)"
    return skipped


def analysis_timing(analyzed: AnalyzedCorpus) -> dict[str, float]:
    """Seconds to analyze every text, and microseconds per query (terms, repeats dropped):
    the best of ANALYSIS_REPEATS passes each."""
    analyzer = new_analyzer()
    texts, queries = analyzed.corpus.texts, analyzed.corpus.queries
    corpus_seconds, query_seconds = [], []
    for _ in range(ANALYSIS_REPEATS):
        start = time.perf_counter()
        for text in texts:
            analyzer.terms(text)
        corpus_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        for text in queries:
            query_terms(analyzer, text)
        query_seconds.append(time.perf_counter() - start)
    return {"corpus_seconds": min(corpus_seconds),
            "query_microseconds": min(query_seconds) / max(len(queries), 1) * 1e6}


def run_job(request: dict[str, Any]) -> dict[str, Any]:
    """``bench.text.jobs`` in a fresh process with one thread per native pool."""
    environment = dict(os.environ, **thread_environment(1), **{name: "1" for name in _MORE_THREAD_VARIABLES})
    completed = subprocess.run([sys.executable, "-m", "bench.text.jobs", json.dumps(request)], cwd=REPO_ROOT,
                               env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{request['system']} (round {request['round']}) failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One system's rounds as one row: QPS, latencies and other load of the best round
    (highest QPS), the build of the fastest round, memory medians, every round kept."""
    best = max(rounds, key=lambda r: r["qps"])
    fastest_build = min(rounds, key=lambda r: r["build_seconds"])
    qps = [r["qps"] for r in rounds]
    return {**best, "build_seconds": fastest_build["build_seconds"], "phases": fastest_build["phases"],
            "rss_growth_mb": statistics.median(r["rss_growth_mb"] for r in rounds),
            "build_peak_mb": statistics.median(r["build_peak_mb"] for r in rounds),
            "qps_min": min(qps), "qps_median": statistics.median(qps), "qps_max": max(qps),
            "best_round": best["round"], "rounds": rounds}


def _answers_path(work_dir: Path, system: str, round_number: int) -> Path:
    return work_dir / "answers" / f"{system}-round{round_number}.npz"


def _read_answers(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as stored:
        return stored["ids"], stored["scores"]


def nondeterministic(systems: list[str], rounds: int, work_dir: Path) -> list[str]:
    """The systems whose answers (ids, and scores to the last bit) changed between rounds."""
    changed = []
    for system in systems:
        first = _read_answers(_answers_path(work_dir, system, 1))
        for round_number in range(2, rounds + 1):
            ids, scores = _read_answers(_answers_path(work_dir, system, round_number))
            if not (np.array_equal(ids, first[0]) and np.array_equal(scores, first[1], equal_nan=True)):
                changed.append(system)
                break
    return changed


def agreements(systems: list[str], work_dir: Path, query_texts: list[str]) -> list[dict[str, Any]]:
    """vecdb's systems against bm25s (and the collections against vecdb-index) exactly;
    tantivy against bm25s and vecdb-index by overlap, and tantivy-ids against tantivy
    exactly. Round 1's answers (the rounds'
    answers are compared with each other by ``nondeterministic``)."""
    answers = {system: _read_answers(_answers_path(work_dir, system, 1)) for system in systems}
    pairs = [(s, REFERENCE, "exact") for s in ("vecdb-index", "vecdb-index-terms", *COLLECTION_SYSTEMS)]
    pairs += [(s, "vecdb-index", "exact") for s in COLLECTION_SYSTEMS]
    pairs += [("tantivy", REFERENCE, "overlap"), ("tantivy", "vecdb-index", "overlap"),
              ("tantivy-ids", "tantivy", "exact")]  # the same index, its ids read another way
    entries = []
    for system, reference, kind in pairs:
        if system in answers and reference in answers:
            measured = (exact_agreement(answers[system], answers[reference], query_texts) if kind == "exact"
                        else overlap(answers[system], answers[reference]))
            entries.append({"system": system, "reference": reference, **measured})
    return entries


def failures(document: dict[str, Any]) -> list[str]:
    """What makes the run fail: a vecdb system disagreeing exactly, answers changing between rounds."""
    found = [f"{e['system']} disagrees with {e['reference']} on {e['queries'] - e['agreeing']} of "
             f"{e['queries']} queries" for e in document["agreement"] if e["kind"] == "exact" and
             e["agreeing"] < e["queries"]]
    return found + [f"{system}'s answers changed between rounds" for system in document["nondeterministic"]]


def _libraries() -> dict[str, str | None]:
    return {requirement.pip_package: installed_version(requirement)
            for requirement in (VECDB, NUMPY, BM25S, TANTIVY, PYSTEMMER)}


def measure(args: argparse.Namespace, systems: list[str], skipped: dict[str, str], command: str) -> dict[str, Any]:
    """Run every system's rounds and return the results document."""
    corpus = load_corpus(args.dataset, args.queries, args.seed)
    analyzed = analyze(corpus)
    summary = analyzed.summary()
    print(f"{corpus.name}: {summary['texts']:,} texts ({summary['indexed']:,} with terms), "
          f"{summary['queries']:,} queries; systems: {', '.join(systems)}", flush=True)
    analysis = analysis_timing(analyzed)
    if args.work_dir.exists():
        shutil.rmtree(args.work_dir)
    (args.work_dir / "answers").mkdir(parents=True)
    jobs = [(round_number, system) for round_number in range(1, args.rounds + 1)
            for system in round_order(systems, round_number)]
    results: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
    for round_number, system in progress(jobs, "bench.text jobs"):
        request = {"system": system, "round": round_number, "dataset": args.dataset, "queries": args.queries,
                   "seed": args.seed, "k": args.k, "min_seconds": args.min_time, "repeats": args.repeats,
                   "folder": str(args.work_dir / system),
                   "answers": str(_answers_path(args.work_dir, system, round_number))}
        results[system].append(run_job(request))
        shutil.rmtree(request["folder"], ignore_errors=True)  # a collection's database: measured, not kept
    descriptions = {system: SYSTEMS[system].description for system in systems}
    return {"format": FORMAT, "version": 1, "dataset": corpus.name, "spec": args.dataset, "corpus": summary,
            "analysis": analysis, "systems": systems, "skipped": skipped, "reference": REFERENCE,
            "params": {"k": args.k, "rounds": args.rounds, "min_seconds": args.min_time, "repeats": args.repeats,
                       "seed": args.seed, "threads": 1},
            "descriptions": descriptions, "libraries": _libraries(), "machine": machine_info(),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "rows": {system: combine(rounds) for system, rounds in results.items()},
            "agreement": agreements(systems, args.work_dir, corpus.queries),
            "nondeterministic": nondeterministic(systems, args.rounds, args.work_dir)}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.report_only:
        document = read_results(args.out, RESULTS_NAME, FORMAT)
        write_results(args.out, RESULTS_NAME, document, markdown(document))
        print(console_report(document), end="")
        return
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    skipped = skipped_systems(systems)
    for system, reason in skipped.items():
        print(f"skipping {system}: {reason}", flush=True)
    systems = [s for s in systems if s not in skipped]
    if not systems:
        raise SystemExit("no system left to run")
    document = measure(args, systems, skipped, shlex.join(["python", "-m", "bench.text", *argv]))
    write_results(args.out, RESULTS_NAME, document, markdown(document))
    print(console_report(document), end="")
    problems = failures(document)
    for problem in problems:
        print(f"FAILED: {problem}", flush=True)
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
