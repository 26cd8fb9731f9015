"""Text and sparse index snapshots (vecdb.index.term_snapshot): saved at
close, loaded at open instead of every point's stored terms, brought up to
date with the writes after them, even when the writer was killed before it
could save again; never used when damaged, another state's, or made with
other settings. The answer is always the one a build from LMDB gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb import _core
from vecdb.errors import VecdbError
from vecdb.index.snapshot import SNAPSHOT_FOLDER
from vecdb.storage.collection_store import CollectionStore

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["json", "parser", "fast", "xml", "yaml", "stream", "async", "react", "vue", "cli"]
QUERIES = ["json parser", "fast stream", "react vue cli", "xml", "async yaml parser"]


def _texts(rng, count):
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 6)))) for _ in range(count)]


def _sparse(rng, count):
    return [None if i % 7 == 0 else {"indices": sorted(rng.choice(30, 3, replace=False).tolist()),
                                     "values": rng.integers(1, 4, 3).astype(float).tolist()} for i in range(count)]


def _fill(col, rng, first, count):
    col.upsert(list(range(first, first + count)), rng.normal(size=(count, 4)),
               [{"body": text} for text in _texts(rng, count)], sparse={"splade": _sparse(rng, count)})


def _answers(col):
    text = [[(hit.id, round(hit.score, 5)) for hit in col.search(text=query, k=20)] for query in QUERIES]
    sparse = [[(hit.id, round(hit.score, 5)) for hit in col.search(sparse={"indices": [i, i + 1], "values": [1.0, 2.0]},
                                                                   k=20)] for i in range(5)]
    return text, sparse


def _snapshot_file(path):
    files = list((path / SNAPSHOT_FOLDER).glob("*.terms"))
    assert len(files) == 1
    return files[0]


@pytest.fixture
def stored(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "db"
    with vecdb.open(path) as db:
        col = db.create_collection("docs", 4, index=vecdb.Flat(), sparse=["splade"])
        col.create_text_index("body")
        _fill(col, rng, 0, 300)
        col.delete(list(range(0, 300, 10)))
        expected = _answers(col)
    return path, expected


def _rebuilt_answers(path):
    """What a build from LMDB answers (the snapshot moved away, then put back)."""
    snapshot = _snapshot_file(path)
    aside = snapshot.with_name("aside")
    snapshot.rename(aside)
    try:
        with vecdb.open(path, read_only=True) as db:
            return _answers(db.get_collection("docs"))
    finally:
        aside.rename(snapshot)


def test_reopening_loads_the_snapshot_instead_of_the_stored_terms(stored, monkeypatch):
    path, expected = stored
    assert _snapshot_file(path).stat().st_size > 0

    def no_reading(*args, **kwargs):
        raise AssertionError("read every stored term although a snapshot was there")

    monkeypatch.setattr(CollectionStore, "text_terms", no_reading)
    monkeypatch.setattr(CollectionStore, "sparse_vectors", no_reading)
    with vecdb.open(path) as db:
        assert _answers(db.get_collection("docs")) == expected


WRITER = """
import sys, os, numpy as np, vecdb
sys.path.insert(0, sys.argv[2])
from tests.engine.test_text_snapshot import _fill
db = vecdb.open(sys.argv[1])
col = db.get_collection("docs")
rng = np.random.default_rng(9)
_fill(col, rng, 250, 100)                      # replaces 50 points, adds 50
col.delete(list(range(1, 300, 9)))
col.update_payload(list(range(2, 200, 5)), {"body": "yaml yaml stream"})
col.upsert([3], [[1.0, 0, 0, 0]])              # no text, no sparse vector any more
os._exit(0)                                     # killed: nothing saved at close
"""


def test_writes_after_the_snapshot_are_replayed_after_a_kill(stored, monkeypatch):
    path, _ = stored
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), str(ROOT)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    want = _rebuilt_answers(path)

    def no_reading(*args, **kwargs):
        raise AssertionError("rebuilt although the snapshot was usable")

    monkeypatch.setattr(CollectionStore, "text_terms", no_reading)
    with vecdb.open(path) as db:
        col = db.get_collection("docs")
        assert _answers(col) == want
        assert col.search(text="yaml stream", k=1000) and 3 not in {h.id for h in col.search(text="json", k=1000)}


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_a_damaged_snapshot_is_not_used(stored, damage):
    path, expected = stored
    snapshot = _snapshot_file(path)
    data = bytearray(snapshot.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = bytearray(b"not a snapshot" * 10)
    snapshot.write_bytes(bytes(data))
    with vecdb.open(path) as db:
        assert _answers(db.get_collection("docs")) == expected


def test_a_snapshot_of_other_settings_or_another_state_is_not_used(stored):
    path, _ = stored
    with vecdb.open(path) as db:
        col = db.get_collection("docs")
        col.drop_text_index("body")
        col.create_text_index("body", language=None, stopwords=False, k1=2.0)
        expected = _answers(col)
    with vecdb.open(path) as db:
        assert _answers(db.get_collection("docs")) == expected
    # Another collection's snapshot under this one's name: its key and fingerprint do not match.
    other = path.parent / "other"
    with vecdb.open(other) as db:
        col = db.create_collection("docs", 4, index=vecdb.Flat(), sparse=["splade"])
        col.create_text_index("body")
        _fill(col, np.random.default_rng(1), 0, 20)
    _snapshot_file(path).write_bytes(_snapshot_file(other).read_bytes())
    with vecdb.open(path) as db:
        assert _answers(db.get_collection("docs")) == expected


def test_dropping_the_collection_removes_its_snapshot(stored):
    path, _ = stored
    with vecdb.open(path) as db:
        db.drop_collection("docs")
    assert not list((path / SNAPSHOT_FOLDER).glob("*.terms"))


def test_the_native_form_round_trips_and_refuses_damage():
    index = _core.InvertedIndex("bm25", k1=1.5, b=0.5)
    labels = np.arange(100, dtype=np.int64)
    terms = [WORDS[(i * 7 + j) % len(WORDS)] for i in range(100) for j in range(3)]
    index.set(labels, np.arange(0, 301, 3, dtype=np.int64), terms, np.ones(300, dtype=np.float32))
    index.remove(np.arange(0, 100, 3, dtype=np.int64))
    data = index.to_bytes()
    copy = _core.InvertedIndex.from_bytes(data)
    assert (len(copy), copy.vocabulary, copy.k1, copy.b) == (len(index), index.vocabulary, 1.5, 0.5)
    weights = np.ones(2, dtype=np.float32)
    for query in (["json", "xml"], ["cli", "vue"]):
        got, want = copy.search(query, weights, 50), index.search(query, weights, 50)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    for damaged in (data[:-1], data[:40], data[:20] + bytes([data[20] ^ 1]) + data[21:], b""):
        with pytest.raises(VecdbError):
            _core.InvertedIndex.from_bytes(damaged)
