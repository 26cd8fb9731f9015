"""One job in a fresh process: ``python -m bench.hybrid.jobs REQUEST_JSON`` prints one JSON
result line. Thread pools are limited by the environment the parent sets.

- ``build``: a database in ``request["folder"]`` with one collection ("npm", cosine, the
  default HNSW): upserts of every point with payload ``{"body": text}`` (UPSERT_BATCH per
  call), ``create_text_index("body")``, ``wait_indexed()``, then closing it (which snapshots
  the graph, so each round opens the same graph). Each phase is timed.
- ``measure`` (one round): opens that database, answers every query once per mode (the
  warm-up; its answers are checked and scored here), then times the modes in turn: for each
  of ``repeats`` repetitions every mode makes one run of whole passes over the queries
  lasting at least ``min_seconds``, one query per call, each call timed; the order of the
  modes is reversed from one repetition to the next (and the first repetition's order
  alternates between rounds), so a slow phase of the machine falls on every mode. A mode's
  round is its fastest run. Last, untimed for the ratios, the instrumented passes that split
  each hybrid's time (``bench.hybrid.split``).
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import vecdb
from vecdb.progress import silent

from bench.cpu_load import OtherCpuLoad
from bench.hybrid.data import HybridData, load
from bench.hybrid.modes import Mode, modes_for, parts_of
from bench.hybrid.split import split, unavailable
from bench.rounds import round_order

COLLECTION = "npm"
TEXT_FIELD = "body"
UPSERT_BATCH = 5000
# Examples of invalid answers kept per mode.
_EXAMPLES = 3


def _data(request: dict[str, Any]) -> HybridData:
    return load(request["dataset"], request["k"], request["points"], request["queries"], request["seed"])


def build(request: dict[str, Any]) -> dict[str, Any]:
    data = _data(request)
    vectors, texts = data.vectors, data.texts
    phases = {}
    start = time.perf_counter()
    database = vecdb.open(request["folder"], progress=silent)
    collection = database.create_collection(COLLECTION, int(vectors.shape[1]), "cosine")
    phases["open_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    for first in range(0, len(texts), UPSERT_BATCH):
        rows = range(first, min(first + UPSERT_BATCH, len(texts)))
        collection.upsert(list(rows), vectors[rows.start:rows.stop],
                          payloads=[{TEXT_FIELD: texts[row]} for row in rows])
    phases["upsert_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    collection.create_text_index(TEXT_FIELD)
    phases["text_index_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    collection.wait_indexed()
    phases["wait_indexed_seconds"] = time.perf_counter() - start
    stats = collection.stats()
    start = time.perf_counter()
    database.close()
    phases["close_seconds"] = time.perf_counter() - start
    text_index = stats.get("text_indexes", {}).get(TEXT_FIELD, {})
    return {"phases": phases, "build_seconds": sum(phases.values()), "points": len(texts),
            "text_index_mb": text_index.get("memory_bytes", 0) / 2**20 if text_index else None}


def _digest(ids: list[list[int]]) -> str:
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


def check_answers(mode: Mode, answers: list[list[Any]], data: HybridData,
                  branches: tuple[list[list[int]], list[list[int]]] | None) -> dict[str, Any]:
    """What the warm-up's answers show: hits per query, invalid answers (an id that is no
    point, a repeated id, more than k hits, a payload that is not the point's; a hybrid hit
    found by neither branch run alone), the agreement with the exact dense top k, and a
    digest of the ids (equal in every round for a deterministic search)."""
    points, k = len(data.texts), mode.k
    ids = [[hit.id for hit in hits] for hits in answers]
    problems: list[str] = []
    invalid = 0
    for position, (hits, found) in enumerate(zip(answers, ids)):
        problem = None
        if len(found) > k:
            problem = f"{len(found)} hits for k={k}"
        elif len(set(found)) != len(found):
            problem = "an id twice"
        elif any(not isinstance(i, int) or not 0 <= i < points for i in found):
            problem = f"ids that are no point: {[i for i in found if not isinstance(i, int) or not 0 <= i < points]}"
        elif mode.with_payload and any(hit.payload != {TEXT_FIELD: data.texts[hit.id]} for hit in hits):
            problem = "a payload that is not the point's"
        elif branches is not None and not set(found) <= set(branches[0][position]) | set(branches[1][position]):
            problem = "ids found by neither branch alone"
        if problem is not None:
            invalid += 1
            if len(problems) < _EXAMPLES:
                problems.append(f"query {position}: {problem}")
    truth = data.truth
    agreement = float(np.mean([len(set(found) & set(truth[q].tolist())) / truth.shape[1]
                               for q, found in enumerate(ids)])) if ids else 0.0
    return {"queries": len(ids), "hits_mean": float(np.mean([len(f) for f in ids])) if ids else 0.0,
            "empty_answers": sum(1 for f in ids if not f), "invalid": invalid, "invalid_examples": problems,
            "agreement_with_exact_dense": agreement, "digest": _digest(ids)}


def _timed_run(call: Callable[[int], Any], queries: int, min_seconds: float) -> tuple[float, list[float]]:
    call_seconds: list[float] = []
    start = time.perf_counter()
    while True:
        for position in range(queries):
            before = time.perf_counter()
            call(position)
            call_seconds.append(time.perf_counter() - before)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed, call_seconds


def _summary(elapsed: float, call_seconds: list[float]) -> dict[str, Any]:
    micros = np.asarray(call_seconds) * 1e6
    p50, p99 = np.percentile(micros, [50, 99])
    return {"qps": len(micros) / elapsed, "mean_us": float(micros.mean()), "p50_us": float(p50),
            "p99_us": float(p99), "calls_timed": len(micros)}


def measure(request: dict[str, Any]) -> dict[str, Any]:
    data = _data(request)
    by_name = {mode.name: mode for mode in modes_for(request["k"])}
    modes = [by_name[name] for name in request["modes"]]
    vectors = list(data.queries)  # 1-D rows: the single-query path
    texts, queries = data.query_texts, len(data.query_texts)
    start = time.perf_counter()
    database = vecdb.open(request["folder"], progress=silent)
    collection = database.get_collection(COLLECTION)
    open_seconds = time.perf_counter() - start
    calls = {mode.name: mode.bind(collection, vectors, texts) for mode in modes}
    answers = {mode.name: [calls[mode.name](q) for q in range(queries)] for mode in modes}
    answered_ids = {name: [[hit.id for hit in hits] for hits in found] for name, found in answers.items()}
    checks = {}
    for mode in modes:
        parts = parts_of(mode, by_name)
        branches = None if parts is None or not all(p in answered_ids for p in parts) else (
            answered_ids[parts[0]], answered_ids[parts[1]])
        checks[mode.name] = check_answers(mode, answers[mode.name], data, branches)
    del answers, answered_ids
    gc.collect()
    best: dict[str, tuple[float, list[float]]] = {}
    load = OtherCpuLoad()
    for repeat in range(request["repeats"]):
        for mode in round_order(modes, request["round"] + repeat):
            run = _timed_run(calls[mode.name], queries, request["min_seconds"])
            if mode.name not in best or len(run[1]) / run[0] > len(best[mode.name][1]) / best[mode.name][0]:
                best[mode.name] = run
    other_load = load.cores()
    split_reason = unavailable(collection)
    splits = {}
    if split_reason is None and request["split_passes"] > 0:
        splits = {mode.name: split(collection, calls[mode.name], queries, request["split_passes"])
                  for mode in modes if mode.fusion is not None}
    database.close()
    return {"round": request["round"], "open_seconds": open_seconds, "other_load_cores": other_load,
            "modes": {mode.name: {**_summary(*best[mode.name]), **checks[mode.name]} for mode in modes},
            "split": splits, "split_unavailable": split_reason}


def main() -> None:
    request = json.loads(sys.argv[1])
    result = build(request) if request["job"] == "build" else measure(request)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
