"""vecdb import / export / backup / restore (click's test runner, in process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import vecdb
from vecdb.cli import main
from vecdb.text.settings import TextIndexSettings


def run(*args, ok: bool = True):
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def fails(*args, match: str, code: int = 1) -> str:
    """Run a command that must fail cleanly: the exit code, a message, no traceback."""
    result = run(*args, ok=False)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert match in result.output, result.output
    return result.output


def write_jsonl(path: Path, lines) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def write_fvecs(path: Path, vectors: np.ndarray, declared=None) -> Path:
    rows = np.empty((len(vectors), vectors.shape[1] + 1), dtype="<i4")
    rows[:, 0] = vectors.shape[1] if declared is None else declared
    rows[:, 1:] = vectors.astype("<f4").view("<i4")
    rows.tofile(path)
    return path


def points(path: Path, name: str) -> dict:
    with vecdb.open(path, read_only=True) as db:
        records, cursor = db.get_collection(name).scroll(limit=100_000, with_vector=True)
    assert cursor is None
    return {record.id: (record.payload, record.vector) for record in records}


def assert_same_points(actual: dict, expected: dict) -> None:
    assert list(actual) == list(expected)
    for point_id, (payload, vector) in expected.items():
        assert actual[point_id][0] == payload, point_id
        np.testing.assert_array_equal(actual[point_id][1], vector)


# ---- import ----


def test_import_npy_with_payloads_and_ids_from_a_field(tmp_path, rng):
    vectors = rng.standard_normal((50, 6)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    write_jsonl(tmp_path / "p.jsonl", [{"doc": f"doc-{i}", "lang": "en" if i % 2 else "fr", "n": i}
                                       for i in range(50)])
    result = run("import", tmp_path / "db", "docs", tmp_path / "v.npy", "--payloads", tmp_path / "p.jsonl",
                 "--id-field", "doc", "--metric", "l2", "--index", "flat", "--batch-size", 16)
    assert "imported 50 points" in result.stdout and "(now 50 points)" in result.stdout
    assert " points/s" in result.stderr  # the progress bar, with its rate, on stderr
    stored = points(tmp_path / "db", "docs")
    assert list(stored) == [f"doc-{i}" for i in range(50)]
    assert stored["doc-7"][0] == {"lang": "en", "n": 7}  # the id field left the payload
    np.testing.assert_array_equal(np.stack([vector for _, vector in stored.values()]), vectors)
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        docs = db.get_collection("docs")
        assert (docs.metric, docs.index) == ("l2", vecdb.Flat())
        assert docs.search(vectors[33] + 1e-3, k=1)[0].id == "doc-33"


def test_import_row_ids_settings_of_a_new_collection_and_appending(tmp_path, rng):
    vectors = rng.standard_normal((250, 5)).astype(np.float64)  # converted to float32
    np.save(tmp_path / "v.npy", vectors)
    run("import", tmp_path / "db", "c", tmp_path / "v.npy", "--start-id", 1000, "--batch-size", 64,
        "--M", 8, "--ef-construction", 40, "--metric", "ip", "-q")
    stored = points(tmp_path / "db", "c")
    assert list(stored) == list(range(1000, 1250)) and stored[1000][0] == {}
    np.testing.assert_array_equal(stored[1249][1], vectors[249].astype(np.float32))
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        c = db.get_collection("c")
        assert (c.metric, c.index.M, c.index.ef_construction) == ("ip", 8, 40)
    # Into the existing collection: its settings stay; options that differ are refused.
    np.save(tmp_path / "more.npy", vectors[:10])
    run("import", tmp_path / "db", "c", tmp_path / "more.npy", "--start-id", 5000, "--metric", "ip")
    assert len(points(tmp_path / "db", "c")) == 260
    fails("import", tmp_path / "db", "c", tmp_path / "more.npy", "--metric", "l2",
          match="exists with metric=ip, index=hnsw, M=8, ef-construction=40; --metric l2 would differ")
    np.save(tmp_path / "wide.npy", np.ones((3, 7)))
    fails("import", tmp_path / "db", "c", tmp_path / "wide.npy",
          match="collection 'c' has dimension 5; " + str(tmp_path / "wide.npy") + " has vectors of dimension 7")
    assert len(points(tmp_path / "db", "c")) == 260


def test_import_fvecs(tmp_path, rng):
    vectors = rng.standard_normal((120, 4)).astype(np.float32)
    write_fvecs(tmp_path / "base.fvecs", vectors)
    run("import", tmp_path / "db", "sift", tmp_path / "base.fvecs", "--metric", "l2", "--batch-size", 50)
    stored = points(tmp_path / "db", "sift")
    assert list(stored) == list(range(120))
    np.testing.assert_array_equal(np.stack([vector for _, vector in stored.values()]), vectors)


def test_fvecs_rows_are_checked_and_the_import_says_what_was_written(tmp_path, rng):
    vectors = rng.standard_normal((100, 4)).astype(np.float32)
    path = write_fvecs(tmp_path / "bad.fvecs", vectors)
    rows = np.fromfile(path, dtype="<i4").reshape(100, 5)
    rows[70, 0] = 5  # a row declaring another dimension (the file size still fits)
    rows.tofile(path)
    output = fails("import", tmp_path / "db", "c", path, "--batch-size", 32,
                   match=f"{path} row 70 declares dimension 5; row 0 declared 4")
    assert "64 points were imported before this; the failing batch wrote nothing" in output
    assert list(points(tmp_path / "db", "c")) == list(range(64))
    (tmp_path / "short.fvecs").write_bytes(path.read_bytes()[:-3])
    fails("import", tmp_path / "db2", "c", tmp_path / "short.fvecs",
          match="is not a whole number of rows of dimension 4 (20 bytes each)")
    assert not (tmp_path / "db2").exists()  # refused before the database was opened


def test_import_hdf5(tmp_path, rng):
    h5py = pytest.importorskip("h5py")
    train = rng.standard_normal((80, 3)).astype(np.float32)
    test = rng.standard_normal((5, 3)).astype(np.float32)
    with h5py.File(tmp_path / "ann.hdf5", "w") as f:
        f["train"], f["test"] = train, test
        f["neighbors"] = np.zeros((5, 10), dtype=np.int32)
        f.attrs["distance"] = "angular"
    run("import", tmp_path / "db", "train", tmp_path / "ann.hdf5", "--batch-size", 30)
    run("import", tmp_path / "db", "test", tmp_path / "ann.hdf5", "--dataset", "test")
    np.testing.assert_array_equal(np.stack([v for _, v in points(tmp_path / "db", "train").values()]), train)
    np.testing.assert_array_equal(np.stack([v for _, v in points(tmp_path / "db", "test").values()]), test)
    fails("import", tmp_path / "db", "x", tmp_path / "ann.hdf5", "--dataset", "queries",
          match="has no dataset 'queries'; it has neighbors, test, train (choose one with --dataset)")


def test_import_hdf5_without_h5py_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "ann.hdf5").write_bytes(b"\x89HDF")
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    fails("import", tmp_path / "db", "c", tmp_path / "ann.hdf5", match="reading HDF5 files needs h5py")


def bad_inputs(tmp_path: Path):
    """(source, extra arguments, message, points imported before the error)."""
    good = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.save(tmp_path / "good.npy", good)
    nan = np.ones((200, 4), dtype=np.float32)
    nan[130, 2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    lines = [{"i": i} for i in range(10)]
    write_jsonl(tmp_path / "list-line.jsonl", lines[:6] + ["[1, 2]"] + lines[7:])
    write_jsonl(tmp_path / "broken.jsonl", lines[:3] + ['{"i": 3'] + lines[4:])
    write_jsonl(tmp_path / "blank.jsonl", lines[:4] + [""] + lines[5:])
    write_jsonl(tmp_path / "short.jsonl", lines[:9])
    write_jsonl(tmp_path / "long.jsonl", lines + [{"i": 10}])
    write_jsonl(tmp_path / "dup.jsonl", [{"id": f"p{i % 7}"} for i in range(10)])
    write_jsonl(tmp_path / "no-id.jsonl", [{"id": i} for i in range(5)] + [{"x": 1}] + [{"id": i} for i in range(6, 10)])
    write_jsonl(tmp_path / "float-id.jsonl", [{"id": i + 0.5} for i in range(10)])
    write_jsonl(tmp_path / "bad-payload.jsonl", [{"payload": {"ok": 1}}] * 3 + [{"payload": "text"}] * 7)
    write_jsonl(tmp_path / "points-dim.jsonl", [{"vector": [1, 2, 3]}] * 4 + [{"vector": [1, 2]}])
    write_jsonl(tmp_path / "points-mixed-ids.jsonl", [{"id": "a", "vector": [1, 2]}, {"vector": [3, 4]}])
    write_jsonl(tmp_path / "points-nan.jsonl", [{"vector": [1, 2]}, {"vector": [1, float("nan")]}])
    (tmp_path / "v.csv").write_text("1,2,3\n")
    (tmp_path / "pickle.npy").write_bytes(b"not an array")
    np.save(tmp_path / "three-d.npy", np.ones((2, 2, 2)))
    return {
        "nan": ("nan.npy", ["--batch-size", 50], "nan.npy row 130 contains NaN or infinity", 100),
        "list-line": ("good.npy", ["--payloads", "list-line.jsonl"], "list-line.jsonl line 7 is a JSON list, not "
                      "an object", 0),
        "broken-json": ("good.npy", ["--payloads", "broken.jsonl", "--batch-size", 2],
                        "broken.jsonl line 4 is not valid JSON", 2),
        "blank-line": ("good.npy", ["--payloads", "blank.jsonl"], "blank.jsonl line 5 is empty", 0),
        "fewer-payloads": ("good.npy", ["--payloads", "short.jsonl"], "short.jsonl has 9 lines and " +
                           str(tmp_path / "good.npy") + " 10 vectors; they pair up line by line (" +
                           str(tmp_path / "good.npy") + " row 9 onward has no payload line)", 0),
        "more-payloads": ("good.npy", ["--payloads", "long.jsonl"], "(line 11 onward has no vector)", 0),
        "duplicate-id": ("good.npy", ["--payloads", "dup.jsonl", "--id-field", "id", "--batch-size", 4],
                         "dup.jsonl line 8: id 'p0' already appeared on line 1; ids must be unique", 4),
        "missing-id": ("good.npy", ["--payloads", "no-id.jsonl", "--id-field", "id"],
                       "no-id.jsonl line 6 has no 'id' field for the id", 0),
        "float-id": ("good.npy", ["--payloads", "float-id.jsonl", "--id-field", "id"],
                     "float-id.jsonl line 1: ids are strings or integers, got float 0.5", 0),
        "payload-field": ("good.npy", ["--payloads", "bad-payload.jsonl", "--payload-field", "payload",
                                       "--batch-size", 3], "bad-payload.jsonl line 4: 'payload' must be an object "
                          "or null, got str", 3),
        "jsonl-dim": ("points-dim.jsonl", [], "points-dim.jsonl line 5: the vector has dimension 2; line 1's has 3",
                      0),
        "jsonl-ids": ("points-mixed-ids.jsonl", [], "points-mixed-ids.jsonl line 2: has no \"id\"; line 1 has one",
                      0),
        "jsonl-nan": ("points-nan.jsonl", [], "points-nan.jsonl line 2 contains NaN or infinity", 0),
        "extension": ("v.csv", [], "unknown extension '.csv'; vecdb imports .npy, .fvecs, .hdf5, .h5, .jsonl", 0),
        "not-npy": ("pickle.npy", [], "pickle.npy is not a readable .npy array", 0),
        "three-d": ("three-d.npy", [], "the array must be 2-D (rows x dimension), got shape (2, 2, 2)", 0),
    }


BAD_INPUTS = [
    "nan", "list-line", "broken-json", "blank-line", "fewer-payloads", "more-payloads", "duplicate-id",
    "missing-id", "float-id", "payload-field", "jsonl-dim", "jsonl-ids", "jsonl-nan", "extension", "not-npy",
    "three-d"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_ends_with_a_clear_error(tmp_path, case):
    source, extra, message, imported = bad_inputs(tmp_path)[case]
    extra = [tmp_path / arg if str(arg).endswith(".jsonl") else arg for arg in extra]
    output = fails("import", tmp_path / "db", "c", tmp_path / source, *extra, match=message)
    if imported:
        assert f"{imported:,} points were imported before this" in output
        assert len(points(tmp_path / "db", "c")) == imported
    else:
        assert "Nothing was imported." in output


def test_an_interrupted_import_says_what_was_imported(tmp_path, monkeypatch):
    np.save(tmp_path / "v.npy", np.arange(60, dtype=np.float32).reshape(20, 3))
    upsert = vecdb.Collection.upsert
    calls = []

    def interrupted_on_the_third_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return upsert(self, *args, **kwargs)

    monkeypatch.setattr(vecdb.Collection, "upsert", interrupted_on_the_third_batch)
    output = fails("import", tmp_path / "db", "c", tmp_path / "v.npy", "--batch-size", 5, match="interrupted")
    assert "10 points were imported before this" in output
    monkeypatch.undo()
    assert list(points(tmp_path / "db", "c")) == list(range(10))


def test_import_with_text_fields_makes_text_indexes_searchable_by_text(tmp_path, rng):
    vectors = rng.standard_normal((60, 4)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    write_jsonl(tmp_path / "p.jsonl", [{"title": f"Parser number {i}", "body": ["fast", "json"] if i % 3 else "slow xml",
                                        "n": i} for i in range(60)])
    run("import", tmp_path / "db", "docs", tmp_path / "v.npy", "--payloads", tmp_path / "p.jsonl",
        "--text-field", "title", "--text-field", "body", "--batch-size", 16, "-q")
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        docs = db.get_collection("docs")
        english = {"language": "english", "stopwords": list(TextIndexSettings.new().stopwords), "k1": 1.2, "b": 0.75}
        assert docs.text_indexes == {"title": english, "body": english}
        assert [hit.id for hit in docs.search(text="parsers 7", text_field="title", k=1)] == [7]
        assert {hit.id for hit in docs.search(text="xml", text_field="body", k=100)} == set(range(0, 60, 3))
    # An existing text index is kept as it is; a value that is not text stops the import at its batch.
    with vecdb.open(tmp_path / "db") as db:
        db.get_collection("docs").create_text_index("title", language=None, stopwords=False)
    write_jsonl(tmp_path / "more.jsonl", [{"id": 100, "vector": [1, 2, 3, 4], "payload": {"title": "parsers"}},
                                          {"id": 101, "vector": [1, 2, 3, 4], "payload": {"title": 5}}])
    fails("import", tmp_path / "db", "docs", tmp_path / "more.jsonl", "--text-field", "title",
          match="payload field 'title' has a text index, which needs a string")
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        docs = db.get_collection("docs")
        assert docs.text_indexes["title"] == {"language": None, "stopwords": [], "k1": 1.2, "b": 0.75}
        assert docs.count() == 60


def test_import_refuses_option_mixtures(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((2, 2)))
    write_jsonl(tmp_path / "p.jsonl", [{"vector": [1, 2]}])
    fails("import", tmp_path / "db", "c", tmp_path / "v.npy", "--id-field", "id", code=2,
          match="--id-field and --payload-field apply to the --payloads file")
    fails("import", tmp_path / "db", "c", tmp_path / "p.jsonl", "--payloads", tmp_path / "p.jsonl", code=2,
          match="a .jsonl SOURCE carries its own ids and payloads")
    fails("import", tmp_path / "db", "c", tmp_path / "v.npy", "--index", "flat", "--M", 8, code=2,
          match="--M and --ef-construction set up an HNSW index")
    fails("import", tmp_path / "db", "c", tmp_path / "v.npy", "--dataset", "train",
          match="a dataset name only applies to .hdf5 files")
    fails("import", tmp_path / "db", "c", tmp_path / "v.npy", "--text-field", "body", code=2,
          match="--text-field indexes the payloads' text")
    assert not (tmp_path / "db").exists()


# ---- export, and import reading it back ----


def make_source(path: Path, rng) -> np.ndarray:
    vectors = rng.standard_normal((300, 7)).astype(np.float32)
    ids = [f"s{i}" if i % 2 else i for i in range(300)]
    payloads = [None if i % 5 == 0 else {"i": i, "tags": ["a", "é"], "nested": {"x": i / 3}, "ok": i % 3 == 0}
                for i in range(300)]
    with vecdb.open(path) as db:
        col = db.create_collection("docs", dim=7, metric="cosine")
        col.upsert(ids, vectors, payloads)
        col.delete(["s1", 40])
    return vectors


def test_export_jsonl_then_import_gives_the_same_points(tmp_path, rng):
    vectors = make_source(tmp_path / "db", rng)
    result = run("export", tmp_path / "db", "docs", tmp_path / "docs.jsonl", "--batch-size", 64)
    assert "exported 298 points of 'docs'" in result.stdout
    assert f"import them with: vecdb import DB COLLECTION {tmp_path / 'docs.jsonl'}" in result.stdout
    lines = [json.loads(line) for line in (tmp_path / "docs.jsonl").read_text().splitlines()]
    assert len(lines) == 298 and set(lines[1]) == {"id", "payload", "vector"}
    assert lines[0] == {"id": 0, "payload": {}, "vector": vectors[0].tolist()}

    run("import", tmp_path / "copy", "docs", tmp_path / "docs.jsonl", "--batch-size", 100)
    original = points(tmp_path / "db", "docs")
    assert_same_points(points(tmp_path / "copy", "docs"), original)
    with vecdb.open(tmp_path / "copy", read_only=True) as db:
        assert db.get_collection("docs").search(vectors[150], k=1)[0].id == 150


def test_export_npy_then_import_gives_the_same_points(tmp_path, rng):
    make_source(tmp_path / "db", rng)
    run("export", tmp_path / "db", "docs", tmp_path / "dump.npy", "--format", "npy", "--batch-size", 50)
    original = points(tmp_path / "db", "docs")
    exported = np.load(tmp_path / "dump.npy")
    assert exported.dtype == np.float32 and exported.shape == (298, 7)
    np.testing.assert_array_equal(exported, np.stack([vector for _, vector in original.values()]))
    run("import", tmp_path / "copy", "docs", tmp_path / "dump.npy", "--payloads", tmp_path / "dump.jsonl",
        "--id-field", "id", "--payload-field", "payload", "--batch-size", 77)
    assert_same_points(points(tmp_path / "copy", "docs"), original)


def test_export_of_an_empty_collection(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("empty", dim=3)
    run("export", tmp_path / "db", "empty", tmp_path / "e", "--format", "npy")
    assert np.load(tmp_path / "e.npy").shape == (0, 3) and (tmp_path / "e.jsonl").read_text() == ""
    run("export", tmp_path / "db", "empty", tmp_path / "e.jsonl", "--force")
    assert (tmp_path / "e.jsonl").read_text() == ""


def test_export_beside_a_writer_and_never_over_a_file_unasked(tmp_path, rng):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=3, index=vecdb.Flat())
        col.upsert([1, 2], np.eye(3)[:2], [{"a": 1}, None])
        run("export", tmp_path / "db", "c", tmp_path / "c.jsonl")
        col.upsert([3], np.eye(3)[2:])
        fails("export", tmp_path / "db", "c", tmp_path / "c.jsonl", match="already exists; pass --force")
        assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 2
        run("export", tmp_path / "db", "c", tmp_path / "c.jsonl", "--force")
        assert [json.loads(line)["id"] for line in (tmp_path / "c.jsonl").read_text().splitlines()] == [1, 2, 3]
    fails("export", tmp_path / "db", "nope", tmp_path / "n.jsonl", match="collection 'nope' does not exist")
    fails("export", tmp_path / "db", "c", tmp_path / "missing" / "c.jsonl", match="does not exist")
    assert not (tmp_path / "n.jsonl").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.jsonl", "db"]  # no temporary files left


# ---- backup and restore ----


def test_backup_beside_a_writer_then_restore(tmp_path, rng):
    vectors = rng.standard_normal((200, 5)).astype(np.float32)
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=5, metric="l2")
        col.upsert(list(range(200)), vectors, [{"n": i} for i in range(200)])
        result = run("backup", tmp_path / "db", tmp_path / "b.tar")
        col.upsert([999], vectors[:1])  # after the backup: not in it
    assert "backed up 1 collection(s), 200 points: c (200)" in result.stdout
    result = run("restore", tmp_path / "b.tar", tmp_path / "restored")
    assert "restored 1 collection(s), 200 points" in result.stdout
    with vecdb.open(tmp_path / "restored", read_only=True) as db:
        restored = db.get_collection("c")
        assert restored.count() == 200 and restored.get([999]) == []
        assert restored.search(vectors[42] + 1e-3, k=1)[0].id == 42
        assert restored.get([42])[0].payload == {"n": 42}

    fails("restore", tmp_path / "b.tar", tmp_path / "db", match="is not empty")
    run("restore", tmp_path / "b.tar", tmp_path / "db", "--force")
    assert 999 not in points(tmp_path / "db", "c")
    with vecdb.open(tmp_path / "db"):
        fails("restore", tmp_path / "b.tar", tmp_path / "db", "--force", match="open in this process")
    (tmp_path / "junk.tar").write_bytes(b"junk" * 300)
    fails("restore", tmp_path / "junk.tar", tmp_path / "other", match="is not a vecdb backup")
    fails("backup", tmp_path / "db", tmp_path / "b.tar", match="already exists")
    fails("backup", tmp_path / "plain", tmp_path / "c.tar", code=2, match="does not exist")
    assert not (tmp_path / "other").exists()



def test_backup_into_a_folder_named_with_a_trailing_slash_as_the_readme_shows(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("c", dim=2).upsert([1, 2], [[1, 0], [0, 1]])
    folder = f"{tmp_path / 'backups'}/"  # missing: created
    first = run("backup", tmp_path / "db", folder)
    second = run("backup", tmp_path / "db", folder)  # the second run adds an archive, it does not refuse
    archives = sorted((tmp_path / "backups").iterdir())
    assert len(archives) == 2 and all(path.name.startswith("vecdb-backup-") for path in archives)
    assert {archive.name for archive in archives} == {line.split(" to ")[1].split(" (")[0].rsplit("/", 1)[1]
                                                      for line in (first.stdout, second.stdout)}

def test_help_on_every_command_explains_formats_with_examples():
    for command, words in {"import": [".npy", ".fvecs", ".hdf5", ".jsonl", "--payloads", "--batch-size",
                                      "--text-field", "full-text search"],
                           "export": ["jsonl", "npy", "read-only"], "backup": ["manifest.json", "read-only"],
                           "restore": ["--force", "links"]}.items():
        text = run(command, "--help").output
        assert "Examples:" in text and f"vecdb {command} ./" in text, command
        for word in words:
            assert word in text, (command, word)
    assert all(name in run("--help").output for name in ("import", "export", "backup", "restore"))


def test_import_and_export_refuse_a_collection_of_named_vectors(tmp_path, rng):
    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("docs", vectors={"text": vecdb.VectorSpec(6), "image": vecdb.VectorSpec(3)})
    np.save(tmp_path / "v.npy", rng.standard_normal((5, 6)).astype(np.float32))
    fails("import", tmp_path / "db", "docs", tmp_path / "v.npy", match="named vectors")
    fails("export", tmp_path / "db", "docs", tmp_path / "out.jsonl", match="named vectors")
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("docs").count() == 0


# ---- Parquet ----


def test_export_parquet_then_import_gives_the_same_points(tmp_path, rng):
    pq = pytest.importorskip("pyarrow.parquet")
    make_source(tmp_path / "db", rng)
    out = run("export", tmp_path / "db", "docs", tmp_path / "docs.parquet", "--format", "parquet").output
    assert "exported 298 points" in out and f"vecdb import DB COLLECTION {tmp_path / 'docs.parquet'}" in out
    table = pq.read_table(tmp_path / "docs.parquet")
    assert table.column_names[:2] == ["id", "vector"] and table.num_rows == 298
    run("import", tmp_path / "copy", "docs", tmp_path / "docs.parquet", "--batch-size", 64)
    assert_same_points(points(tmp_path / "copy", "docs"), points(tmp_path / "db", "docs"))


def test_import_parquet_with_named_columns_into_a_new_collection(tmp_path, rng):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    vectors = rng.standard_normal((50, 5))
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(50)], "embedding": vectors.tolist(),
                             "title": [f"title {i}" for i in range(50)]}), tmp_path / "in.parquet")
    out = run("import", tmp_path / "db", "docs", tmp_path / "in.parquet", "--id-column", "doc_id",
              "--vector-column", "embedding", "--metric", "l2", "--text-field", "title").output
    assert "imported 50 points" in out
    expected = {f"d{i}": ({"title": f"title {i}"}, vectors[i].astype(np.float32)) for i in range(50)}
    assert_same_points(points(tmp_path / "db", "docs"), expected)
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        docs = db.get_collection("docs")
        assert docs.metric == "l2" and list(docs.text_indexes) == ["title"]


def test_parquet_import_and_export_of_named_vectors(tmp_path):
    pytest.importorskip("pyarrow")
    specs = {"text": vecdb.VectorSpec(3), "image": vecdb.VectorSpec(2)}
    with vecdb.open(tmp_path / "db") as db:
        db.create_collection("docs", vectors=specs).upsert(
            [1, 2], {"text": [[1, 0, 0], [0, 1, 0]], "image": [[1, 1], None]}, [{"k": 1}, {"k": 2}])
    run("export", tmp_path / "db", "docs", tmp_path / "docs.parquet", "--format", "parquet")
    fails("import", tmp_path / "copy", "docs", tmp_path / "docs.parquet", match="create collection 'docs' first")
    with vecdb.open(tmp_path / "copy") as db:
        db.create_collection("docs", vectors=specs)
    run("import", tmp_path / "copy", "docs", tmp_path / "docs.parquet")
    with vecdb.open(tmp_path / "copy") as db:
        records = db.get_collection("docs").get([1, 2], with_vector=True)
    assert [(record.payload, sorted(record.vector)) for record in records] == \
        [({"k": 1}, ["image", "text"]), ({"k": 2}, ["text"])]


def test_bad_parquet_input_ends_with_a_clear_error(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"id": [0, 1, 2, 1], "vector": [[1.0, 2.0]] * 4}), tmp_path / "dup.parquet")
    output = fails("import", tmp_path / "db", "c", tmp_path / "dup.parquet", "--batch-size", 2,
                   match="id 1 at row 3 already appeared at row 1")
    assert "2 points were imported before this" in output
    pq.write_table(pa.table({"key": [0], "vector": [[1.0, 2.0]]}), tmp_path / "noid.parquet")
    fails("import", tmp_path / "db", "c", tmp_path / "noid.parquet", match="no id column 'id'")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    fails("import", tmp_path / "db", "c", tmp_path / "junk.parquet", match="is not a readable Parquet file")
    fails("import", tmp_path / "db", "c", tmp_path / "dup.parquet", "--start-id", 5, code=2,
          match="a .parquet SOURCE carries its own ids")
    fails("import", tmp_path / "db", "c", tmp_path / "noid.parquet", "--id-column", "key", "--vector-column", "v",
          match="no vector column 'v'")
    np.save(tmp_path / "v.npy", np.ones((2, 2)))
    fails("import", tmp_path / "db", "c", tmp_path / "v.npy", "--id-column", "key", code=2,
          match="name the columns of a .parquet SOURCE")
