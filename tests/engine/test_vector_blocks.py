"""Vectors stored in blocks (vecdb.storage.vector_blocks): every read path
(vectors_of, vector_of, records_of, vector_chunks, get) agrees with a numpy
oracle through random upserts, replacements, deletes and failed batches,
with blocks of one to 1024 rows; a damaged block header or row is reported."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import vecdb
from vecdb import errors
from vecdb.storage.keys import label_key, user_id_key
from vecdb.storage.vector_blocks import rows_per_block

ID_POOL = list(range(40))


def test_rows_per_block_is_a_power_of_two_filling_64_to_128_kib():
    # Part of storage format 3: stored collections depend on these.
    assert [rows_per_block(dim) for dim in (1, 3, 31, 32, 384, 768, 1536, 4096, 32767, 40000)] == \
        [1024, 1024, 1024, 512, 64, 32, 16, 4, 1, 1]
    for dim in range(1, 5000, 7):
        rows, row_bytes = rows_per_block(dim), 4 * dim + 4
        assert rows & (rows - 1) == 0
        assert rows == 1024 or 64 << 10 < rows * row_bytes <= 128 << 10 or rows == 1


class BlocksMachine(RuleBasedStateMachine):
    """The oracle: id -> (label, vector), labels given out as the store does
    (in batch order, never reused)."""

    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="vecdb-blocks-")
        self.model = {}
        self.next_label = 0
        self.rng = np.random.default_rng(0)

    @initialize(dim=st.sampled_from([1, 3, 2048, 4096]))
    def open_collection(self, dim):
        self.dim = dim
        self.rows = rows_per_block(dim)
        self.db = vecdb.open(self.folder)
        self.col = self.db.create_collection("c", dim=dim, metric="l2", index=vecdb.Flat())
        self.store = self.col._store

    def teardown(self):
        if hasattr(self, "db"):
            self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _vectors(self, count):
        return self.rng.standard_normal((count, self.dim)).astype(np.float32)

    def _upsert(self, ids):
        vectors = self._vectors(len(ids))
        self.col.upsert(ids, vectors)
        for user_id, vector in zip(ids, vectors):
            if user_id in self.model:
                self.model[user_id] = (self.model[user_id][0], vector)
            else:
                self.model[user_id] = (self.next_label, vector)
                self.next_label += 1

    @rule(ids=st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=12, unique=True))
    def upsert(self, ids):
        self._upsert(ids)

    @precondition(lambda self: self.rows >= 1024)
    @rule(count=st.integers(1000, 1100))
    def upsert_past_a_block(self, count):
        """Enough new points to span blocks of 1024 rows."""
        self._upsert([f"bulk{self.next_label + i}" for i in range(count)])

    @rule(ids=st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=12, unique=True))
    def delete(self, ids):
        self.col.delete(ids=ids)
        for user_id in ids:
            self.model.pop(user_id, None)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_a_whole_block(self, data):
        label = data.draw(st.sampled_from(sorted(label for label, _ in self.model.values())))
        block = label // self.rows
        gone = [user_id for user_id, (other, _) in self.model.items() if other // self.rows == block]
        self.col.delete(ids=gone)
        for user_id in gone:
            del self.model[user_id]
        with self.db._environment.read() as txn:
            assert txn.get(label_key(block), db=self.store.vectors) is None

    @rule(ids=st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=12, unique=True))
    def a_failed_batch_writes_nothing(self, ids):
        vectors = self._vectors(len(ids))

        def body(txn):
            self.store.upsert(txn, [user_id_key(user_id) for user_id in ids], vectors, [None] * len(ids),
                              [None] * len(ids))
            raise RuntimeError("the batch fails after its vectors were written")

        with pytest.raises(RuntimeError):
            self.db._environment.write(body)

    @invariant()
    def reads_agree_with_the_oracle(self):
        if not hasattr(self, "db"):
            return
        by_label = sorted((label, vector) for label, vector in self.model.values())
        labels = np.array([label for label, _ in by_label], dtype=np.int64)
        vectors = np.array([vector for _, vector in by_label], dtype=np.float32).reshape(-1, self.dim)
        with self.db._environment.read() as txn:
            for size in (1, 3, 1000):
                chunks = list(self.store.vector_chunks(txn, self.dim, size))
                assert all(len(chunk_labels) == size for chunk_labels, _ in chunks[:-1])
                np.testing.assert_array_equal(np.concatenate([l for l, _ in chunks] or [labels]), labels)
                np.testing.assert_array_equal(np.concatenate([m for _, m in chunks] or [vectors]), vectors)
            # Stored, deleted and never-written labels, shuffled, some twice.
            asked = np.concatenate([labels, np.arange(self.next_label + 3), labels[:2]])
            self.rng.shuffle(asked)
            matrix, present = self.store.vectors_of(txn, asked, self.dim)
            stored = dict(zip(labels.tolist(), vectors))
            np.testing.assert_array_equal(present, [label in stored for label in asked.tolist()])
            expected = np.array([stored.get(label, np.zeros(self.dim, np.float32)) for label in asked.tolist()],
                                dtype=np.float32).reshape(-1, self.dim)
            np.testing.assert_array_equal(matrix, expected)
            for label in asked[:3].tolist():
                vector = self.store.vector_of(txn, label)
                assert (vector is None) == (label not in stored)
                if vector is not None:
                    np.testing.assert_array_equal(vector, stored[label])
        records = self.col.get(list(self.model), with_vector=True)
        assert {record.id for record in records} == set(self.model)
        for record in records:
            np.testing.assert_array_equal(record.vector, self.model[record.id][1])


BlocksMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
TestBlocks = BlocksMachine.TestCase


def _damaged_first_block(path, at, mask):
    """A collection of six 4096-d points (two blocks) whose first block has
    the bits ``mask`` of its byte ``at`` flipped."""
    db = vecdb.open(path)
    col = db.create_collection("c", dim=4096, metric="l2", index=vecdb.Flat())
    col.upsert([f"p{i}" for i in range(6)], np.arange(6 * 4096, dtype=np.float32).reshape(6, 4096))
    vectors = col._store.vectors
    with db._environment.read() as txn:
        key, value = next(iter(txn.cursor(db=vectors)))
    db._environment.write(lambda txn: txn.put(key, value[:at] + bytes([value[at] ^ mask]) + value[at + 1:],
                                              db=vectors))
    return db, col


def test_a_block_fills_and_empties_in_place(tmp_path):
    """One point, replaced in place, deleted and inserted again: the block
    grows with its last row and is deleted once empty."""
    db = vecdb.open(tmp_path / "db")
    col = db.create_collection("c", dim=4096, metric="l2", index=vecdb.Flat())
    store = col._store

    def block_sizes():
        with db._environment.read() as txn:
            return [len(value) for _, value in txn.cursor(db=store.vectors)]

    col.upsert(["a"], np.ones((1, 4096)))
    assert block_sizes() == [8 + 16388]  # the header (bitmap and check), then one row
    col.upsert(["a"], np.full((1, 4096), 2.0))
    np.testing.assert_array_equal(col.get(["a"], with_vector=True)[0].vector, np.full(4096, 2.0))
    assert block_sizes() == [8 + 16388]
    col.upsert(["b", "c"], np.zeros((2, 4096)))
    assert block_sizes() == [8 + 3 * 16388]
    col.delete(ids=["c"])
    assert block_sizes() == [8 + 2 * 16388]  # trimmed to its last stored row
    col.delete(ids=["a", "b"])
    assert block_sizes() == []
    col.upsert(["a"], np.full((1, 4096), 3.0))  # label 3: the same block again, rows 0-2 absent
    assert block_sizes() == [8 + 4 * 16388]
    assert [r.id for r in col.get(["a", "b"], with_vector=True)] == ["a"]
    db.close()


def test_a_damaged_block_header_is_reported_naming_the_block(tmp_path):
    """A row read stands on its own check; what needs the header (a scan, a
    rewrite of the block, telling an absent row from a damaged one) checks it."""
    db, col = _damaged_first_block(tmp_path / "db", 0, 0x04)  # row 2's bit in the bitmap of present rows
    assert col.get(["p2"], with_vector=True)[0].vector[0] == 2 * 4096
    header = r"collection 'c': the header of the stored vectors of labels 0\.\.3 is damaged \(checksum mismatch\)"
    with db._environment.read() as txn, pytest.raises(errors.CorruptRecordError, match=header):
        list(col._store.vector_chunks(txn, 4096, 10))
    with pytest.raises(errors.CorruptRecordError, match=header):
        col.upsert(["p2"], np.zeros((1, 4096)))  # a write never rewrites a block it cannot read
    assert col.get(["p5"], with_vector=True)[0].vector[0] == 5 * 4096  # the next block is intact
    db.close()


def test_a_damaged_header_never_passes_for_an_absent_row(tmp_path):
    db, col = _damaged_first_block(tmp_path / "db", 0, 0)
    col.delete(ids=["p1"])  # its slot now holds a row that fails its check
    with db._environment.read() as txn:
        assert col._store.vectors_of(txn, np.array([1, 0]), 4096)[1].tolist() == [False, True]
    vectors = col._store.vectors
    with db._environment.read() as txn:
        key, value = next(iter(txn.cursor(db=vectors)))
    db._environment.write(lambda txn: txn.put(key, bytes([value[0] ^ 0x02]) + value[1:], db=vectors))
    with db._environment.read() as txn, pytest.raises(errors.CorruptRecordError, match=r"labels 0\.\.3 is damaged"):
        col._store.vectors_of(txn, np.array([1, 0]), 4096)
    db.close()


def test_a_damaged_row_in_a_block_names_its_point(tmp_path):
    db, col = _damaged_first_block(tmp_path / "db", 8 + 2 * (4 * 4096 + 4) + 100, 0x01)  # in row 2's vector
    assert col.get(["p1", "p3"], with_vector=True)[1].vector[0] == 3 * 4096
    with pytest.raises(errors.CorruptRecordError, match=r"the stored vector of point 'p2' \(label 2\) is damaged"):
        col.get(["p2"], with_vector=True)
    with db._environment.read() as txn, pytest.raises(errors.CorruptRecordError, match="'p2'"):
        list(col._store.vector_chunks(txn, 4096, 10))
    db.close()


def test_a_block_cut_short_is_reported_when_a_row_past_its_end_is_read(tmp_path):
    db, col = _damaged_first_block(tmp_path / "db", 0, 0)
    vectors = col._store.vectors
    with db._environment.read() as txn:
        key, value = next(iter(txn.cursor(db=vectors)))
    db._environment.write(lambda txn: txn.put(key, value[:-100], db=vectors))
    assert col.get(["p2"], with_vector=True)[0].vector[0] == 2 * 4096
    with pytest.raises(errors.CorruptRecordError, match=r"the stored vector of point 'p3' \(label 3\) is cut off "
                                                        r"\(its block ends before it\)"):
        col.get(["p3"], with_vector=True)
    db.close()
