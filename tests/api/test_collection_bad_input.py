"""Bad input found from outside (issue 15), each a clear vecdb.errors
exception with nothing written, embedded and over HTTP alike."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidArgumentError


@pytest.fixture
def col(db):
    col = db.create_collection("c", dim=4)
    col.upsert([1, 2, 3], np.eye(4)[:3], [{"g": "a"}, {"g": "b"}, None])
    return col


@pytest.mark.parametrize("cursor", [2**64, 2**63, -1])
def test_scroll_cursor_out_of_range(col, cursor):
    with pytest.raises(InvalidArgumentError, match="cursor must be|does not fit in 64 bits"):
        col.scroll(cursor=cursor)


def test_scroll_cursor_at_the_end_of_the_range_is_an_empty_page(col):
    assert col.scroll(cursor=2**63 - 1) == ([], None)


@pytest.mark.parametrize("k", [2**63, 2**64, 2**31])
def test_huge_k_is_refused(col, k):
    # A server refuses it by its own limit first (vecdb serve --max-k).
    with pytest.raises(InvalidArgumentError, match="k must be <=|does not fit in 64 bits|max_k"):
        col.search(np.ones(4), k=k)


@pytest.mark.parametrize("index", [vecdb.HNSW(), vecdb.Flat()])
def test_k_far_above_the_count_returns_every_point(tmp_path, index):
    """Results are never allocated wider than the collection."""
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("k", dim=4, index=index)
        col.upsert([1, 2, 3], np.eye(4)[:3])
        for plan in (None, vecdb.plans.Scan()):
            assert sorted(hit.id for hit in col.search(np.ones(4), k=2**31 - 1, plan=plan)) == [1, 2, 3]


@pytest.mark.parametrize("payload", [{"t": "a\ud800"}, {"\udfff": 1}, {"n": {"deep": ["ok", "b\ud800"]}}])
def test_lone_surrogates_in_payloads_are_refused(col, payload):
    # Embedded: InvalidPayloadError naming where; a client cannot even encode it.
    with pytest.raises(InvalidArgumentError, match="not valid Unicode"):
        col.upsert([9], np.ones((1, 4)), [payload])
    assert col.get([9]) == []


def test_lone_surrogates_in_ids_are_refused(col):
    with pytest.raises(InvalidArgumentError, match="not valid Unicode"):
        col.upsert(["x\ud800"], np.ones((1, 4)))
    assert col.count() == 3


@pytest.mark.parametrize("field", [None, 3, "", "a..b"])
def test_drop_payload_index_checks_its_field(col, field):
    with pytest.raises(InvalidArgumentError, match="payload index field"):
        col.drop_payload_index(field)


def test_dropping_an_unindexed_field_changes_nothing(col):
    col.drop_payload_index("g")
    assert col.payload_indexes == {}


@pytest.mark.parametrize("spec", [{}, None])
def test_delete_without_a_condition_is_refused(col, spec):
    with pytest.raises(InvalidArgumentError, match="drop_collection"):
        col.delete(filter=spec)
    assert col.count() == 3


@pytest.mark.parametrize("name", ["abc\n", "abc\r", "\nabc", "ab\x00c", "abc\n\n", "é"])
def test_collection_names_are_matched_whole(db, name):
    with pytest.raises(InvalidArgumentError, match="invalid collection name"):
        db.create_collection(name, dim=4)
    assert db.list_collections() == []


def test_open_refuses_a_regular_file(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"not a database")
    for read_only in (False, True):
        with pytest.raises(InvalidArgumentError, match="is a file"):
            vecdb.open(path, read_only=read_only)
    assert path.read_bytes() == b"not a database"


def test_rotation_has_a_dimension_cap(db):
    with pytest.raises(InvalidArgumentError, match="rotate='pca' supports dim up to 2048"):
        db.create_collection("wide", dim=4096, mrl_dims=[64], rotate="pca")
    db.create_collection("ok", dim=2048, mrl_dims=[64], rotate="pca")


def test_a_second_writer_is_told_who_holds_the_folder(tmp_path):
    with vecdb.open(tmp_path / "db"):
        import subprocess
        import sys
        code = ("import vecdb, sys\ntry:\n    vecdb.open(sys.argv[1])\nexcept vecdb.errors.StorageLockedError as e:\n"
                "    print(e)\n")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "db")], capture_output=True, text=True,
                             timeout=60).stdout
    assert f"open for writing by process {os.getpid()} (" in out and "read_only=True" in out


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_exports_and_snapshots_respect_the_umask(tmp_path, umask):
    from vecdb.transfer.exporters import write_jsonl, write_npy
    previous = os.umask(umask)
    try:
        with vecdb.open(tmp_path / "db") as db:
            col = db.create_collection("c", dim=4)
            col.upsert(list(range(10)), np.random.default_rng(0).standard_normal((10, 4)))
            records = col.get(list(range(10)), with_vector=True)
            write_jsonl([records], tmp_path / "out.jsonl")
            write_npy([records], tmp_path / "out.npy", tmp_path / "out.records.jsonl", 4)
        written = [*(tmp_path / "db" / "snapshots").iterdir(), *tmp_path.glob("out*")]
        assert len(written) == 4
        for path in written:
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    finally:
        os.umask(previous)


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_with_flags_must_be_booleans(col, flag):
    for call in (lambda: col.get([1], with_vector=flag), lambda: col.search(np.ones(4), with_payload=flag),
                 lambda: col.scroll(with_vector=flag)):
        with pytest.raises(vecdb.errors.InvalidDTypeError, match="must be true or false"):
            call()
