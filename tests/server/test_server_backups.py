"""Backups over HTTP: round trips, and the attacks our peers' advisories
describe, each tried here: path traversal in backup names (Qdrant
CVE-2024-2221, CVE-2024-3584), symbolic links (CVE-2024-3829), and archives
whose members climb out when restored (Weaviate's ZipSlip, CVE-2025-67818).
Nothing may be read or written outside the database folder."""

from __future__ import annotations

import json
import os
import tarfile
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

import vecdb
from vecdb import errors
from vecdb.transfer.backup import restore_backup
from vecdb.server import ServerSettings
from tests.support.servers import serve_in_thread
from tests.engine.test_backup import hostile_archives, write_archive

KEY = "backup-test-key-0123456789"
AUTH = {"x-api-key": KEY}


def everything_outside(tmp_path: Path) -> dict:
    """Every file under tmp_path except the served database folder, with its bytes."""
    return {str(path): path.read_bytes() for path in tmp_path.rglob("*")
            if path.is_file() and not path.is_symlink() and "served" not in path.parts}


@pytest.fixture
def served(tmp_path):
    with serve_in_thread(tmp_path / "served", ServerSettings(api_key=KEY, max_upload_bytes=2**20)) as url:
        with vecdb.connect(url, api_key=KEY) as db:
            docs = db.create_collection("docs", dim=4, metric="l2")
            docs.create_payload_index("lang", "keyword")
            docs.create_text_index("title", language="french", stopwords=["le"], k1=1.6, b=0.5)
            docs.upsert([f"d{i}" for i in range(300)], np.arange(1200, dtype=np.float32).reshape(300, 4),
                        [{"lang": "en" if i % 2 else "fr", "i": i, "title": f"le livre {i % 7} des livres"}
                         for i in range(300)])
            yield url, db


def test_remote_backup_downloads_a_restorable_archive(tmp_path, served):
    url, db = served
    (tmp_path / "downloads").mkdir()
    archive = db.backup(tmp_path / "downloads")
    assert archive.parent == tmp_path / "downloads" and archive.stat().st_size > 0
    with pytest.raises(errors.InvalidArgumentError, match="already exists"):
        db.backup(archive)
    listed = httpx.get(f"{url}/v1/backups", headers=AUTH).json()["backups"]
    assert [entry["name"] for entry in listed] == [archive.name]
    manifest = restore_backup(archive, tmp_path / "restored")
    assert [(c["name"], c["count"]) for c in manifest.collections] == [("docs", 300)]
    with vecdb.open(tmp_path / "restored") as restored:
        docs = restored.get_collection("docs")
        assert docs.count(filter={"lang": "en"}) == 150
        assert docs.search(np.full(4, 400.0), k=1)[0].id == "d100"


def test_collection_backup_restores_into_a_new_collection(served):
    url, db = served
    made = httpx.post(f"{url}/v1/collections/docs/backup", headers=AUTH)
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert name.startswith("docs-") and [c["name"] for c in made.json()["collections"]] == ["docs"]
    restored = httpx.post(f"{url}/v1/collections/copy/restore", json={"backup": name, "source": "docs"},
                          headers=AUTH)
    assert restored.status_code == 201 and restored.json()["count"] == 300, restored.text
    original, copy = db.get_collection("docs"), db.get_collection("copy")
    assert copy.payload_indexes == {"lang": "keyword"}
    assert copy.text_indexes == original.text_indexes == {
        "title": {"language": "french", "stopwords": ["le"], "k1": 1.6, "b": 0.5}}
    assert [(hit.id, hit.score) for hit in copy.search(text="livre 3", k=50)] == \
        [(hit.id, hit.score) for hit in original.search(text="livre 3", k=50)]
    ids = [f"d{i}" for i in range(0, 300, 7)]
    for ours, theirs in zip(original.get(ids, with_vector=True), copy.get(ids, with_vector=True)):
        assert ours.id == theirs.id and ours.payload == theirs.payload
        np.testing.assert_array_equal(ours.vector, theirs.vector)
    again = httpx.post(f"{url}/v1/collections/copy/restore", json={"backup": name, "source": "docs"}, headers=AUTH)
    assert again.status_code == 409 and again.json()["error"]["type"] == "CollectionExistsError"
    missing = httpx.post(f"{url}/v1/collections/other/restore", json={"backup": name, "source": "nope"},
                         headers=AUTH)
    assert missing.status_code == 404 and "other" not in db.list_collections()


def test_backups_in_quick_succession_and_of_any_collection_name(served):
    url, db = served
    made = [httpx.post(f"{url}/v1/backups", headers=AUTH) for _ in range(3)]
    assert [response.status_code for response in made] == [201, 201, 201]
    odd = db.create_collection("_private-" + "x" * 110, dim=2)
    odd.upsert([1], [[1, 2]])
    backup = httpx.post(f"{url}/v1/collections/{odd.name}/backup", headers=AUTH)
    assert backup.status_code == 201, backup.text
    name = backup.json()["name"]
    assert name in [entry["name"] for entry in httpx.get(f"{url}/v1/backups", headers=AUTH).json()["backups"]]
    assert httpx.get(f"{url}/v1/backups/{name}", headers=AUTH).status_code == 200
    restored = httpx.post(f"{url}/v1/collections/again/restore", json={"backup": name, "source": odd.name},
                          headers=AUTH)
    assert restored.status_code == 201 and restored.json()["count"] == 1


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/backups/..%2F..%2Fsecret.tar"),
    ("GET", "/v1/backups/%2Fetc%2Fpasswd"),
    ("GET", "/v1/backups/.."),
    ("GET", "/v1/backups/secret"),
    ("GET", "/v1/backups/x.tar%2F..%2F..%2F..%2Fsecret.tar"),
    ("PUT", "/v1/backups/..%2F..%2Fplanted.tar"),
    ("PUT", "/v1/backups/..%2Fplanted.tar"),
    ("PUT", "/v1/backups/.planted.tar"),
    ("PUT", "/v1/backups/planted"),
    ("DELETE", "/v1/backups/..%2F..%2Fsecret.tar"),
    ("DELETE", "/v1/backups/..%5C..%5Csecret.tar"),
])
def test_backup_names_cannot_climb_out(tmp_path, served, method, path):
    url, _ = served
    (tmp_path / "secret.tar").write_bytes(b"do not read or delete")
    before = everything_outside(tmp_path)
    response = httpx.request(method, url + path, content=b"x" * 100 if method == "PUT" else None, headers=AUTH)
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["message"]
    assert everything_outside(tmp_path) == before
    assert not list(tmp_path.rglob("planted*"))


def test_restore_names_in_the_body_cannot_climb_out(tmp_path, served):
    url, db = served
    for name in ("../secret.tar", "/etc/passwd", "..", "a/b.tar", 42):
        response = httpx.post(f"{url}/v1/collections/x/restore", json={"backup": name}, headers=AUTH)
        assert response.status_code == 400 and "invalid backup name" in response.json()["error"]["message"]
    assert db.list_collections() == ["docs"]


def test_symbolic_links_in_the_backups_folder_are_never_followed(tmp_path, served):
    url, _ = served
    secret = tmp_path / "secret.tar"
    secret.write_bytes(b"do not read, overwrite or delete")
    backups = tmp_path / "served" / "backups"
    backups.mkdir(exist_ok=True)
    os.symlink(secret, backups / "leak.tar")
    download = httpx.get(f"{url}/v1/backups/leak.tar", headers=AUTH)
    assert download.status_code == 400 and "symbolic link" in download.text and b"do not" not in download.content
    assert httpx.get(f"{url}/v1/backups", headers=AUTH).json()["backups"] == []
    assert httpx.delete(f"{url}/v1/backups/leak.tar", headers=AUTH).status_code == 400
    assert httpx.put(f"{url}/v1/backups/leak.tar", content=b"x", headers=AUTH).status_code == 400
    restore = httpx.post(f"{url}/v1/collections/x/restore", json={"backup": "leak.tar"}, headers=AUTH)
    assert restore.status_code == 400
    assert secret.read_bytes() == b"do not read, overwrite or delete" and (backups / "leak.tar").is_symlink()


@pytest.mark.parametrize("attack", ["dot-dot-after-manifest", "nested-dot-dot", "absolute", "symlink-out",
                                    "hardlink", "extra-member", "bad-checksum", "device"])
def test_uploaded_hostile_archives_are_refused_and_write_nothing(tmp_path, served, attack):
    url, db = served
    genuine = db.backup(tmp_path / "genuine.tar")
    with tarfile.open(genuine) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        data = tar.extractfile("data.mdb").read()
    members, _ = hostile_archives(tmp_path, manifest, data)[attack]
    archive = write_archive(tmp_path / "hostile.tar", members)
    (tmp_path / "outside-target").write_text("precious")
    before = everything_outside(tmp_path)
    uploaded = httpx.put(f"{url}/v1/backups/hostile.tar", content=archive.read_bytes(), headers=AUTH)
    assert uploaded.status_code == 201, uploaded.text  # the manifest is fine; the rest is checked on restore
    restored = httpx.post(f"{url}/v1/collections/x/restore", json={"backup": "hostile.tar", "source": "docs"},
                          headers=AUTH)
    assert restored.status_code == 400 and restored.json()["error"]["type"] == "CorruptBackupError", restored.text
    assert everything_outside(tmp_path) == before and not (tmp_path / "outside").exists()
    assert db.list_collections() == ["docs"]
    leftovers = [path.name for path in (tmp_path / "served" / "backups").iterdir()]
    assert sorted(leftovers) == sorted(["hostile.tar"] + [name for name in leftovers if name.startswith("vecdb-")])


def test_uploads_are_checked_and_limited(tmp_path, served):
    url, _ = served
    not_a_backup = httpx.put(f"{url}/v1/backups/junk.tar", content=b"junk" * 100, headers=AUTH)
    assert not_a_backup.status_code == 400 and not_a_backup.json()["error"]["type"] == "CorruptBackupError"
    too_big = httpx.put(f"{url}/v1/backups/big.tar", content=b"x" * (2**20 + 1), headers=AUTH)
    assert too_big.status_code == 413
    assert list((tmp_path / "served" / "backups").iterdir()) == []  # no partial uploads left


def test_staging_left_by_a_killed_server_is_removed_at_start(tmp_path):
    folder = tmp_path / "db"
    backups = folder / "backups"
    with vecdb.open(folder) as db:
        db.create_collection("c", dim=2).upsert([1], [[1, 2]])
        backups.mkdir()
        kept = db.backup(backups)
    leftovers = [backups / ".restore-x1", backups / ".collection-x2", backups / ".vecdb-backup-x3"]
    for staging in leftovers:
        staging.mkdir()
        (staging / "data.mdb").write_bytes(b"half a copy")
    leftovers += [backups / ".upload-x4.tmp", backups / f".{kept.name}.abc.tmp"]
    for partial in leftovers[3:]:
        partial.write_bytes(b"half a file")
    with serve_in_thread(folder) as url:
        listed = httpx.get(f"{url}/v1/backups").json()["backups"]
    assert not any(path.exists() for path in leftovers)
    assert kept.is_file() and [entry["name"] for entry in listed] == [kept.name]


@pytest.mark.parametrize("suffix", ["%0A", "%0D", "%00", "%0D%0A", "%C3%A9", "%E2%80%A8"])
def test_backup_names_with_a_trailing_control_or_unicode_character_are_refused(tmp_path, served, suffix):
    """Python's "$" matches before a final newline: names are matched whole
    (fullmatch), so no file the listing cannot show is ever written."""
    url, db = served
    genuine = db.backup(tmp_path / "genuine.tar")
    backups = tmp_path / "served" / "backups"
    before = sorted(os.listdir(backups))
    for method, content in (("PUT", genuine.read_bytes()), ("GET", None), ("DELETE", None)):
        response = httpx.request(method, f"{url}/v1/backups/evil.tar{suffix}", content=content, headers=AUTH)
        assert response.status_code == 400 and "invalid backup name" in response.json()["error"]["message"]
    decoded = "evil.tar" + httpx.URL(f"/{suffix}").path[1:]
    restore = httpx.post(f"{url}/v1/collections/x/restore", json={"backup": decoded}, headers=AUTH)
    assert restore.status_code == 400 and "invalid backup name" in restore.json()["error"]["message"]
    assert sorted(os.listdir(backups)) == before and db.list_collections() == ["docs"]


def test_uploads_racing_for_one_name_leave_exactly_one_archive(tmp_path, served):
    url, _ = served
    archives = []
    for number in range(4):
        with vecdb.open(tmp_path / f"db{number}") as source:
            source.create_collection(f"c{number}", dim=2).upsert(list(range(number + 1)), np.ones((number + 1, 2)))
            archives.append(source.backup(tmp_path / f"a{number}.tar").read_bytes())
    for round_number in range(3):
        name = f"raced-{round_number}.tar"
        start = threading.Barrier(len(archives))
        statuses = {}

        def upload(number: int) -> None:
            start.wait()
            statuses[number] = httpx.put(f"{url}/v1/backups/{name}", content=archives[number], headers=AUTH)

        threads = [threading.Thread(target=upload, args=(number,)) for number in range(len(archives))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [number for number, response in statuses.items() if response.status_code == 201]
        assert len(winners) == 1, {number: response.text for number, response in statuses.items()}
        assert all(response.status_code == 409 and response.json()["error"]["type"] == "BackupExistsError"
                   for number, response in statuses.items() if number not in winners)
        stored = (tmp_path / "served" / "backups" / name).read_bytes()
        assert stored == archives[winners[0]]
    names = sorted(os.listdir(tmp_path / "served" / "backups"))
    assert names == [f"raced-{round_number}.tar" for round_number in range(3)]  # no partial uploads left


def test_collection_backups_hold_one_committed_state_while_a_writer_writes(tmp_path, served):
    """A writer re-upserts and deletes continuously; every collection backup
    must equal the collection after one of its writes (the states it
    recorded), never a mix of pages read at different times."""
    url, db = served
    live = db.create_collection("live", dim=2, index=vecdb.Flat())
    rng = np.random.default_rng(15)
    state = {point_id: 0 for point_id in range(2500)}  # id -> generation in its payload
    live.upsert(list(state), rng.random((len(state), 2)), [{"g": 0}] * len(state))
    states = [frozenset(state.items())]
    stop = threading.Event()

    def write() -> None:
        with vecdb.connect(url, api_key=KEY) as writer:
            collection = writer.get_collection("live")
            generation = 0
            while not stop.is_set():
                generation += 1
                changed = sorted(rng.choice(2600, size=400, replace=False).tolist())
                collection.upsert(changed, rng.random((len(changed), 2)), [{"g": generation}] * len(changed))
                state.update({point_id: generation for point_id in changed})
                states.append(frozenset(state.items()))
                gone = [point_id for point_id in rng.choice(2600, size=100, replace=False).tolist()
                        if point_id in state]
                collection.delete(gone)
                for point_id in gone:
                    del state[point_id]
                states.append(frozenset(state.items()))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        names = []
        for _ in range(6):
            made = httpx.post(f"{url}/v1/collections/live/backup", headers=AUTH, timeout=120)
            assert made.status_code == 201, made.text
            names.append(made.json()["name"])
    finally:
        stop.set()
        writer.join()
    recorded = set(states)
    for number, name in enumerate(names):
        archive = tmp_path / name
        archive.write_bytes(httpx.get(f"{url}/v1/backups/{name}", headers=AUTH).content)
        manifest = restore_backup(archive, tmp_path / f"restored{number}")
        with vecdb.open(tmp_path / f"restored{number}", read_only=True) as restored:
            records, cursor = restored.get_collection("live").scroll(limit=10_000)
        assert cursor is None and manifest.collections[0]["count"] == len(records)
        assert frozenset((record.id, record.payload["g"]) for record in records) in recorded, name


def test_uploads_and_the_backups_folder_get_the_modes_the_umask_gives(tmp_path):
    old = os.umask(0o027)
    try:
        with vecdb.open(tmp_path / "source") as source:
            source.create_collection("c", dim=2).upsert([1], [[1, 2]])
            archive = source.backup(tmp_path / "a.tar")
        with serve_in_thread(tmp_path / "served") as url:
            assert httpx.put(f"{url}/v1/backups/up.tar", content=archive.read_bytes()).status_code == 201
            made = httpx.post(f"{url}/v1/backups").json()["name"]
            assert httpx.post(f"{url}/v1/collections/r/restore", json={"backup": "up.tar", "source": "c"}
                              ).status_code == 201
    finally:
        os.umask(old)
    backups = tmp_path / "served" / "backups"
    assert backups.stat().st_mode & 0o777 == 0o750
    assert {(backups / name).stat().st_mode & 0o777 for name in ("up.tar", made)} == {0o640}
