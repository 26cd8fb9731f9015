"""Every stored value carries a checksum (since storage format 2): a damaged
vector, payload, id entry, payload-index entry, change-log entry or
collection setting raises CorruptRecordError naming the collection and the
point, instead of answering with wrong data or a decoder's exception."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import vecdb
from vecdb import errors
from vecdb.storage.codec import MAIN, ValueCodec
from vecdb.storage.keys import label_key, user_id_key

DIM = 8


def vectors(n: int, offset: int = 0) -> np.ndarray:
    return np.sin(np.arange(offset, offset + n * DIM) * 0.7).reshape(n, DIM).astype(np.float32) + 0.01


def make(path, index=None):
    with vecdb.open(path) as db:
        col = db.create_collection("c", dim=DIM, metric="l2", index=index or vecdb.HNSW(M=8, ef_construction=32))
        col.create_payload_index("g", "keyword")
        col.upsert([f"p{i}" for i in range(200)], vectors(200),
                   [{"g": "ab"[i % 2], "text": f"payload number {i:04d}"} for i in range(200)])
    with vecdb.open(path) as db:
        db.compact()  # no stale copies of values in free pages: each needle below is found once


def flip(path, needle: bytes, at: int = 0) -> None:
    """Flip one bit of the single place ``needle`` is stored in data.mdb, in
    place (a process with the file mapped sees it)."""
    data = (path / "data.mdb").read_bytes()
    position = data.find(needle)
    assert position >= 0 and data.find(needle, position + 1) < 0, "needle must occur exactly once"
    with open(path / "data.mdb", "r+b") as handle:
        handle.seek(position + at)
        handle.write(bytes([data[position + at] ^ 0x10]))


def test_a_damaged_vector_names_the_point(tmp_path):
    make(tmp_path / "db")
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")  # its index is loaded: every vector read from LMDB, whole
        flip(tmp_path / "db", vectors(1, 17 * DIM).tobytes(), at=5)
        assert col.get(["p16"], with_vector=True)[0].id == "p16"
        with pytest.raises(errors.CorruptRecordError, match=r"collection 'c': the stored vector of point 'p17' "
                                                            r"\(label 17\) is damaged") as raised:
            col.get(["p17"], with_vector=True)
        assert raised.value.collection == "c" and raised.value.point_id == "p17"
        assert raised.value.http_status == 500 and isinstance(raised.value, errors.CorruptDatabaseError)
        assert "vecdb restore" in str(raised.value) and "vecdb check" in str(raised.value)
        with pytest.raises(errors.CorruptRecordError, match="p17"):
            col.search(vectors(1, 17 * DIM)[0], k=3, with_vector=True)
        assert col.search(vectors(1, 17 * DIM)[0], k=3)[0].id == "p17"  # the index holds what it read whole
    with vecdb.open(tmp_path / "db") as db:
        # The snapshot holds links, not a second copy of the vectors: loading the index reads each one.
        with pytest.raises(errors.CorruptRecordError, match=r"the stored vector of point 'p17' \(label 17\)"):
            db.get_collection("c")


def test_a_damaged_vector_read_for_a_pq_re_rank_names_the_point(tmp_path):
    """A PQ collection re-ranks its shortlist with vectors read from LMDB
    (many at once, checked in one native pass): a damaged one is reported
    by point, not ranked."""
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=DIM, metric="l2", quantization=vecdb.PQ(m=4, rerank=20, train_size=256))
        col.upsert([f"p{i}" for i in range(300)], vectors(300))
        assert col.wait_indexed() and col.stats()["quantization"]["trained"]
    with vecdb.open(tmp_path / "db") as db:
        db.compact()
    flip(tmp_path / "db", vectors(1, 17 * DIM).tobytes(), at=5)
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        assert col.search(vectors(1, 250 * DIM)[0], k=1, with_payload=False)[0].id == "p250"
        with pytest.raises(errors.CorruptRecordError, match=r"stored vector of point 'p17'"):
            col.search(vectors(1, 17 * DIM)[0], k=3, with_payload=False)


def test_a_rebuild_refuses_a_damaged_vector(tmp_path):
    make(tmp_path / "db", index=vecdb.Flat())  # flat indexes load from LMDB
    flip(tmp_path / "db", vectors(1, 42 * DIM).tobytes(), at=9)
    with vecdb.open(tmp_path / "db") as db:
        with pytest.raises(errors.CorruptRecordError, match="point 'p42'"):
            db.get_collection("c")


def test_a_damaged_payload_names_the_point(tmp_path):
    make(tmp_path / "db")
    flip(tmp_path / "db", b"payload number 0033", at=16)
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        with pytest.raises(errors.CorruptRecordError, match="the stored payload of point 'p33'"):
            col.get(["p33"])
        assert col.get(["p33"], with_payload=False)[0].id == "p33"
        with pytest.raises(errors.CorruptRecordError, match="p33"):
            col.search(vectors(1, 33 * DIM)[0], k=1)
        with pytest.raises(errors.CorruptRecordError, match="p33"):
            col.count(filter={"text": {"$gte": "payload"}})  # an unindexed field: a scan of every payload
        assert col.count(filter={"g": "a"}) == 100  # answered by the payload index
        with pytest.raises(errors.CorruptRecordError, match="p33"):
            col.scroll(limit=1000)
        with pytest.raises(errors.CorruptRecordError, match="p33"):
            col.upsert(["p33"], vectors(1), [{"g": "a"}])  # its index entries cannot be found to remove
        col.upsert(["p34"], vectors(1), [{"g": "b"}])  # other points stay writable


def test_a_damaged_id_entry(tmp_path):
    make(tmp_path / "db")
    flip(tmp_path / "db", label_key(123) + b"\x01sp123", at=13)  # the label -> id entry (not the id -> label one)
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        with pytest.raises(errors.CorruptRecordError, match="the stored id of the point with label 123"):
            col.search(vectors(1, 123 * DIM)[0], k=1)
        with pytest.raises(errors.CorruptRecordError, match="label 123"):
            col.count(filter={"g": "b"})  # stored_only: reads the label map


def test_a_damaged_payload_index_says_how_to_rebuild_it(tmp_path):
    make(tmp_path / "db")
    with vecdb.open(tmp_path / "db") as db:
        seal = ValueCodec(db.get_collection("c")._store._names["payload-index"]).seal
    flip(tmp_path / "db", seal(b"g\x00kb", label_key(7)), at=9)  # in its check (a label flip breaks the order)
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        with pytest.raises(errors.CorruptRecordError, match=r"payload index of field 'g' is damaged.*"
                                                            r"drop_payload_index\('g'\)"):
            col.count(filter={"g": "b"})
        assert col.count(filter={"g": "a"}) == 100
        col.drop_payload_index("g")
        col.create_payload_index("g", "keyword")
        assert col.count(filter={"g": "b"}) == 100


def test_damaged_settings_name_the_collection(tmp_path):
    make(tmp_path / "db")
    with vecdb.open(tmp_path / "db") as db:
        key = db.get_collection("c")._config.key
    flip(tmp_path / "db", b"\xa3key\xb0" + key.encode(), at=8)  # the key inside its stored settings (msgpack)
    with vecdb.open(tmp_path / "db") as db:
        with pytest.raises(errors.CorruptRecordError, match="the settings of collection 'c' are damaged"):
            db.get_collection("c")
        with pytest.raises(errors.CorruptRecordError, match="'c'"):
            db.list_collections()


def test_a_damaged_change_log_entry_is_reported_on_replay(tmp_path, monkeypatch):
    monkeypatch.setattr(vecdb.collection, "SNAPSHOT_MIN_CHANGES", 100)
    db = vecdb.open(tmp_path / "db")
    col = db.create_collection("c", dim=DIM, index=vecdb.HNSW(M=8, ef_construction=32))
    col.upsert(list(range(150)), vectors(150))  # snapshot at sequence 1
    col.upsert([1000], vectors(1, 5000))  # sequence 2, in the log only
    entry = col._config.fingerprint.to_bytes(8, "little") + label_key(150)  # its fingerprint and label
    col._changes_since_snapshot = 0  # as if killed before the snapshot on close
    db.close()
    flip(tmp_path / "db", entry, at=12)
    with vecdb.open(tmp_path / "db") as db:
        with pytest.raises(errors.CorruptRecordError, match="change-log entry 2 is damaged"):
            db.get_collection("c")


def test_values_are_sealed_with_their_key_and_database(tmp_path):
    """A value moved under another key, or into another database, fails its
    check even though its bytes are intact."""
    make(tmp_path / "db")
    with vecdb.open(tmp_path / "db") as db:
        store = db.get_collection("c")._store
        with db._environment.read() as txn:
            stored = txn.get(label_key(5), db=store.payloads)
            assert msgpack.unpackb(store._codecs["payloads"].open(label_key(5), stored)) == \
                {"g": "b", "text": "payload number 0005"}
            assert store._codecs["payloads"].open(label_key(5), None) is None
            for codec, key in [(store._codecs["payloads"], label_key(6)), (store._codecs["vectors"], label_key(5)),
                               (MAIN, label_key(5))]:
                with pytest.raises(vecdb.storage.codec.DamagedValue):
                    codec.open(key, stored)
            assert store.label_of(txn, user_id_key("p9")) == 9


def test_a_vector_or_payload_gone_missing_is_reported(tmp_path):
    """A damaged key that keeps its page in order hides its entry from
    lookups; a point's entry says what it must have, so the gap is reported
    rather than answered as "no payload" or "no vector"."""
    make(tmp_path / "db")
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        store = col._store
        db._environment.write(lambda txn: (txn.delete(label_key(11), db=store.payloads),
                                           store._blocks.delete_rows(txn, store.vectors, np.array([12]))))
        with pytest.raises(errors.CorruptRecordError, match=r"the stored payload of point 'p11' \(label 11\) is "
                                                            "missing"):
            col.get(["p11"])
        with pytest.raises(errors.CorruptRecordError, match="p11"):
            col.search(vectors(1, 11 * DIM)[0], k=1)
        with pytest.raises(errors.CorruptRecordError, match=r"vector of point 'p12' \(label 12\) is missing"):
            col.get(["p12"], with_vector=True)
        assert col.get(["p12"])[0].payload["text"] == "payload number 0012"
        col.upsert(["p13"], vectors(1), None)  # a point without a payload is no gap
        assert col.get(["p13"])[0].payload == {}
