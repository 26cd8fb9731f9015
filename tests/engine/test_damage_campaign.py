"""File-damage campaign: damage a file vecdb wrote (the LMDB data file; the
PQ codebooks and PCA rotation stored in it, aimed at on purpose; an index
snapshot; a backup archive) at random (bit flips, a zeroed page, a cut),
then open, count, get,
scroll and search everything in a child process. Every answer must be the
undamaged database's (exact reads) or true records with true scores
(approximate searches), or a vecdb.errors exception; never a crash (a
signal), a hang, a foreign exception or a silent wrong answer.

make test runs a small campaign with a fixed seed; make test-slow a large
one with its fresh seed, printed (make test-slow SEED=... or
VECDB_TEST_SEED=... replays one).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest

from tests.support.damage_probe import QUERIES, stored_models

ROOT = Path(__file__).resolve().parents[2]
PAGE = 4096
TIMEOUT = 120  # seconds a probe may take before it counts as hung (the machine may be busy)
METRICS = {"docs": "l2", "pq": "cosine", "flat": "ip"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The undamaged database (folder "db", archive "backup.tar") and what a
    probe of it answers."""
    base = tmp_path_factory.mktemp("damage-reference")
    subprocess.run([sys.executable, "-m", "tests.support.damage_probe", "build", str(base / "db"), str(base / "backup.tar")],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    return base


class Zygote:
    """The fork server of tests/support/damage_probe.py."""

    def __init__(self) -> None:
        self._process = subprocess.Popen([sys.executable, "-m", "tests.support.damage_probe", "zygote"], cwd=ROOT,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def probe(self, folder: Path, out: Path, read_only: bool, archive: Optional[Path] = None) -> Tuple[Dict, Any]:
        request = {"folder": str(folder), "out": str(out), "read_only": read_only, "timeout": TIMEOUT,
                   "archive": None if archive is None else str(archive)}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        ended = json.loads(self._process.stdout.readline())
        return ended, json.loads(out.read_text()) if ended == {"ended": "exit", "code": 0} else None

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait()


def damage(path: Path, rng: random.Random, within: Optional[Tuple[int, int]] = None) -> str:
    """Damage one file in place (only bytes ``within`` [start, end) if
    given); returns what was done."""
    data = bytearray(path.read_bytes())
    if within is not None:
        start, end = within
        offsets = [rng.randrange(start, end) for _ in range(rng.randrange(1, 9))]
        for offset in offsets:
            data[offset] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        return f"flip bits at {offsets} of {path.name} (bytes {start}..{end})"
    kind = rng.choice(["flip", "flip", "flips", "zero-page", "truncate"])
    if kind == "truncate":
        cut = rng.randrange(len(data))
        path.write_bytes(bytes(data[:cut]))
        return f"truncate {path.name} to {cut} of {len(data)} bytes"
    if kind == "zero-page":
        page = rng.randrange(max(1, len(data) // PAGE))
        data[page * PAGE:(page + 1) * PAGE] = bytes(len(data[page * PAGE:(page + 1) * PAGE]))
        path.write_bytes(bytes(data))
        return f"zero page {page} of {path.name}"
    offsets = [rng.randrange(len(data)) for _ in range(1 if kind == "flip" else rng.randrange(2, 9))]
    for offset in offsets:
        data[offset] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return f"flip bits at {offsets} of {path.name}"


def targets(reference: Path) -> List[str]:
    snapshots = sorted(path.name for path in (reference / "db" / "snapshots").iterdir())
    return (["data.mdb"] * 6 + [f"snapshots/{name}" for name in snapshots] + ["backup.tar"] * 2
            + ["codebooks", "rotation"])


def model_ranges(reference: Path) -> Dict[str, Tuple[int, int]]:
    """Where the stored PQ codebooks and PCA rotation lie in data.mdb (each
    is stored once: the reference was compacted; a page's unused bytes may
    still hold part of an old copy, so the whole value is looked for)."""
    data = (reference / "db" / "data.mdb").read_bytes()
    ranges = {}
    for name, stored in stored_models(reference / "db").items():
        start = data.find(stored)
        assert start >= 0 and data.find(stored, start + 1) < 0
        ranges[name] = (start, start + len(stored))
    return ranges


def records_of(expected: Dict[str, Any], collection: str) -> Dict[Any, Tuple[Any, List[float]]]:
    """id -> (payload, vector) of the undamaged collection."""
    return {record[0]: (record[1], record[2]) for record in expected[f"{collection}.get"]["value"]}


def judge(expected: Dict[str, Any], got: Dict[str, Any], vectors: Dict[str, Dict[Any, np.ndarray]]) -> List[str]:
    """What is wrong with a probe's answers (empty: nothing)."""
    wrong = []
    for operation, result in got.items():
        if result["outcome"] == "vecdb":
            continue
        if result["outcome"] == "foreign":
            wrong.append(f"{operation}: foreign exception {result['error']}")
            continue
        want = expected[operation]
        if want["outcome"] != "ok":
            wrong.append(f"{operation}: answered where the undamaged database raised {want.get('error')}")
        elif operation.endswith((".graph", ".filtered", ".prefix")):
            wrong += [f"{operation}: {problem}" for problem in _false_hits(operation, result["value"], expected, vectors)]
        elif result.get("value") != want.get("value"):
            wrong.append(f"{operation}: answered differently from the undamaged database")
    return wrong


def _false_hits(operation: str, rows: List[List[Dict]], expected: Dict[str, Any],
                vectors: Dict[str, Dict[Any, np.ndarray]]) -> List[str]:
    """Approximate searches: every hit must be a stored point with its own
    payload and vector, best first, with its true score."""
    collection = operation.split(".")[0]
    stored, metric = records_of(expected, collection), METRICS[collection]
    problems = []
    for query, hits in zip(QUERIES, rows):
        scores = [hit["score"] for hit in hits]
        ordered = scores == sorted(scores, reverse=metric != "l2")
        ids = [hit["id"] for hit in hits]
        if not ordered or len(set(map(repr, ids))) != len(ids):
            problems.append(f"hits out of order or repeated: {ids}")
        for hit in hits:
            if hit["id"] not in stored or hit["payload"] != stored[hit["id"]][0]:
                problems.append(f"hit {hit['id']!r} is not a stored point with its payload")
                continue
            vector = vectors[collection][hit["id"]]
            if hit["vector"] is not None and not np.array_equal(np.float32(hit["vector"]), vector):
                problems.append(f"hit {hit['id']!r} came with another vector")
            if operation.endswith(".filtered") and hit["payload"].get("g") != "b":
                problems.append(f"hit {hit['id']!r} does not pass the filter")
            if not operation.endswith(".prefix") and abs(_score(query, vector, metric) - hit["score"]) > 2e-3:
                problems.append(f"hit {hit['id']!r} has score {hit['score']}, not {_score(query, vector, metric):.4f}")
    return problems


def _score(query: np.ndarray, vector: np.ndarray, metric: str) -> float:
    if metric == "l2":
        return float(np.linalg.norm(query - vector))
    if metric == "cosine":
        return float(query @ vector / (np.linalg.norm(query) * np.linalg.norm(vector)))
    return float(query @ vector)


def campaign(reference: Path, work: Path, trials: int, seed: int) -> Counter:
    print(f"\ndamage campaign: seed {seed} ({trials} damaged files; VECDB_TEST_SEED={seed} replays it)")
    rng = random.Random(seed)
    zygote = Zygote()
    try:
        clean_ended, expected = zygote.probe(work / "clean", work / "clean.json", read_only=True,
                                             archive=reference / "backup.tar")
        assert clean_ended == {"ended": "exit", "code": 0} and all(r["outcome"] == "ok" for r in expected.values()), \
            {operation: result for operation, result in expected.items() if result["outcome"] != "ok"}
        vectors = _clean_vectors(reference)
        outcomes: Counter = Counter()
        failures = []
        choices, models = targets(reference), model_ranges(reference)
        for trial in range(trials):
            trial_folder = work / f"t{trial}"
            shutil.copytree(reference, trial_folder)
            target = rng.choice(choices)
            if target in models:
                what = damage(trial_folder / "db" / "data.mdb", rng, within=models[target])
            else:
                what = damage(trial_folder / target if target == "backup.tar" else trial_folder / "db" / target, rng)
            read_only = rng.random() < 0.5
            if target == "backup.tar":
                ended, got = zygote.probe(trial_folder / "restored", work / "out.json", read_only,
                                          archive=trial_folder / "backup.tar")
            else:
                ended, got = zygote.probe(trial_folder / "db", work / "out.json", read_only)
            kind = {"data.mdb": "data.mdb", "backup.tar": "backup", "codebooks": "PQ codebooks",
                    "rotation": "PCA rotation"}.get(target, "snapshot")
            if ended.get("ended") != "exit" or ended.get("code") != 0:
                verdict = {"signal": "crash", "hang": "hang"}.get(ended["ended"], "probe failed")
                failures.append(f"trial {trial}: {what} (read_only={read_only}): {verdict} {ended}")
            else:
                wrong = judge(expected, {k: v for k, v in got.items() if k not in ("open", "restore", "close")},
                              vectors)
                refused = any(result["outcome"] == "vecdb" for result in got.values())
                if any("foreign" in problem for problem in wrong):
                    verdict = "foreign exception"
                elif wrong:
                    verdict = "wrong answer"
                else:
                    verdict = "refused (vecdb.errors)" if refused else "correct"
                if wrong:
                    failures.append(f"trial {trial}: {what} (read_only={read_only}): {wrong[:3]}")
            outcomes[(kind, verdict)] += 1
            shutil.rmtree(trial_folder)
    finally:
        zygote.close()
    for (kind, verdict), count in sorted(outcomes.items()):
        print(f"  {kind:13s} {verdict:24s} {count}")
    assert not failures, "\n".join(failures[:20])
    return outcomes


def _clean_vectors(reference: Path) -> Dict[str, Dict[Any, np.ndarray]]:
    """Every stored vector of the undamaged database, read in this process."""
    import vecdb

    vectors = {}
    with vecdb.open(reference / "db", read_only=True) as db:
        for name in METRICS:
            records = db.get_collection(name).scroll(limit=100_000, with_vector=True)[0]
            vectors[name] = {record.id: record.vector for record in records}
    return vectors


def test_small_damage_campaign(reference, tmp_path):
    """A fixed seed, about 30 seconds on a quiet machine."""
    outcomes = campaign(reference, tmp_path, trials=24, seed=20261205)
    assert sum(outcomes.values()) == 24


@pytest.mark.slow
def test_large_damage_campaign(reference, tmp_path):
    seed = int(os.environ.get("VECDB_TEST_SEED", random.randrange(1 << 31)))
    trials = int(os.environ.get("VECDB_DAMAGE_TRIALS", 400))
    outcomes = campaign(reference, tmp_path, trials=trials, seed=seed)
    assert sum(outcomes.values()) == trials
