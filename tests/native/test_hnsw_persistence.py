"""HNSWIndex save/load: identical results after a round trip, and damaged
data refused with CorruptIndexError, never a crash or a broken index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb import _core
from tests.support.datasets import clustered
from vecdb.errors import CorruptIndexError, InvalidDTypeError

HEADER_BYTES = 8 + 4 * 4 + 8 * 7  # magic, four u32, seven u64 (see csrc/hnsw/hnsw_index.cpp)
DATA = Path(__file__).parents[1] / "data"


def restamp(data: bytes) -> bytes:
    """Recompute the trailing checksum after a deliberate edit."""
    body = data[:-8]
    return body + _core.checksum64(body).to_bytes(8, "little")


def as_version(data: bytes, version: int, M: int) -> bytes:
    """A version 4 float index without copies, laid out as `version` (2 or
    3: the same but for the copy ring word leading each layer-0 row)."""
    slots = int.from_bytes(data[HEADER_BYTES - 24:HEADER_BYTES - 16], "little")
    rows = HEADER_BYTES + 8 + slots  # entry point, levels
    words = np.frombuffer(data[rows:rows + slots * (2 + 2 * M) * 4], dtype="<u4").reshape(slots, 2 + 2 * M)
    assert (words[:, 0] == np.arange(slots)).all()  # no copies
    old = data[:8] + version.to_bytes(4, "little") + data[12:rows] + words[:, 1:].tobytes() + \
        data[rows + words.nbytes:]
    return restamp(old)


@pytest.fixture(params=["float32", "float16"])
def small(request):
    rng = np.random.default_rng(11)
    index = vecdb.HNSWIndex(6, metric="cosine", M=4, ef_construction=20, seed=9, dtype=request.param)
    index.add(clustered(rng, 300, 6))
    index.delete([5, 17])
    index.add(clustered(rng, 2, 6), ids=[40, 1000])  # one replaced, one new id
    return index, clustered(rng, 10, 6)


def assert_same_index(loaded, index, queries):
    assert (len(loaded), loaded.id_bound, loaded.dim, loaded.metric, loaded.dtype) == (
        len(index), index.id_bound, index.dim, index.metric, index.dtype)
    # Same contents; a loaded index holds no spare capacity.
    shape = ("live", "deleted", "copies", "nodes_per_level", "mean_out_degree", "entry_level", "M", "ef_construction")
    assert {key: loaded.stats()[key] for key in shape} == {key: index.stats()[key] for key in shape}
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for ef in (4, 50):
        want = index.search(queries, 5, ef=ef)
        got = loaded.search(queries, 5, ef=ef)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_round_trip_through_bytes_and_file(tmp_path, small):
    index, queries = small
    path = tmp_path / "graph.hnsw"
    index.save(path)
    index.save(path)  # replacing an existing file
    assert [p.name for p in tmp_path.iterdir()] == ["graph.hnsw"]  # no temp files left
    data = index.to_bytes()
    assert path.read_bytes() == data
    for loaded in (vecdb.HNSWIndex.from_bytes(data), vecdb.HNSWIndex.from_bytes(memoryview(data)),
                   vecdb.HNSWIndex.from_bytes(bytearray(data)), vecdb.HNSWIndex.load(path)):
        assert_same_index(loaded, index, queries)


def test_loaded_index_keeps_working(small):
    index, queries = small
    loaded = vecdb.HNSWIndex.from_bytes(index.to_bytes())
    assert 5 not in loaded and 40 in loaded and 1000 in loaded
    np.testing.assert_array_equal(loaded.add(queries), np.arange(1001, 1011))
    ids, dists = loaded.search(queries[0], 1)
    assert ids[0] == 1001 and dists[0] == pytest.approx(0.0, abs=1e-3)
    assert loaded.delete([1001, 0]) == 2 and loaded.compact() == 5  # 2 + 2 deleted, 1 replaced
    assert 1001 not in loaded.search(queries[0], 5)[0]
    # Identical further inserts into the original and the copy stay identical.
    again = vecdb.HNSWIndex.from_bytes(index.to_bytes())
    index.add(queries, threads=1)
    again.add(queries, threads=1)
    assert_same_index(again, index, queries)


def test_empty_index_round_trips():
    loaded = vecdb.HNSWIndex.from_bytes(vecdb.HNSWIndex(3, metric="l2").to_bytes())
    assert len(loaded) == 0 and loaded.search(np.ones(3), 2)[0].shape == (0,)
    assert loaded.add(np.ones((1, 3))).tolist() == [0]


def test_every_truncation_is_refused(small):
    data = small[0].to_bytes()
    for length in list(range(0, HEADER_BYTES + 16)) + list(range(HEADER_BYTES + 16, len(data), 97)) + [len(data) - 1]:
        with pytest.raises(CorruptIndexError):
            vecdb.HNSWIndex.from_bytes(data[:length])


def test_truncated_file_is_refused(tmp_path, small):
    path = tmp_path / "graph.hnsw"
    small[0].save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptIndexError, match="truncated"):
        vecdb.HNSWIndex.load(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(CorruptIndexError):
        vecdb.HNSWIndex.load(path)
    with pytest.raises(FileNotFoundError):
        vecdb.HNSWIndex.load(tmp_path / "missing.hnsw")


def test_flipped_bits_are_refused(small):
    data = bytearray(small[0].to_bytes())
    for position in range(0, len(data), max(1, len(data) // 60)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises(CorruptIndexError):
            vecdb.HNSWIndex.from_bytes(bytes(damaged))


def test_wrong_magic_and_unknown_version(small):
    data = small[0].to_bytes()
    with pytest.raises(CorruptIndexError, match="magic"):
        vecdb.HNSWIndex.from_bytes(b"NOTVECDB" + data[8:])
    future = restamp(data[:8] + (6).to_bytes(4, "little") + data[12:])
    with pytest.raises(CorruptIndexError, match="format version 6"):
        vecdb.HNSWIndex.from_bytes(future)
    ancient = restamp(data[:8] + (1).to_bytes(4, "little") + data[12:])
    with pytest.raises(CorruptIndexError, match="format version 1"):
        vecdb.HNSWIndex.from_bytes(ancient)


@pytest.mark.parametrize("version", [2, 3])
def test_version_2_and_3_files_still_load(small, version):
    # Version 3 added PQ codebooks (a float index is laid out as in version
    # 2), version 4 the rings of copies.
    index, queries = small
    assert_same_index(vecdb.HNSWIndex.from_bytes(as_version(index.to_bytes(), version, M=4)), index, queries)


def test_version_4_files_still_load(small):
    # Version 5 gave the reserved header word a meaning (0: every vector saved, as version 4 always did).
    index, queries = small
    data = index.to_bytes()
    assert_same_index(vecdb.HNSWIndex.from_bytes(restamp(data[:8] + (4).to_bytes(4, "little") + data[12:])),
                      index, queries)
    refused = restamp(data[:8] + (4).to_bytes(4, "little") + data[12:20] + (1).to_bytes(4, "little") + data[24:])
    with pytest.raises(CorruptIndexError, match="invalid header"):
        vecdb.HNSWIndex.from_bytes(refused)


def without_live_vectors(index, path):
    with open(path, "wb") as handle:
        index.write_to(handle, live_vectors=False)
    return path


def refilled(path, chunks):
    with open(path, "rb") as handle:
        return vecdb.HNSWIndex.read_from(handle, lambda: iter(chunks))


@pytest.fixture(params=["float32", "float16"])
def kept(request):
    """An index as `small` builds it, and the live vectors as its caller keeps them (as given to add)."""
    rng = np.random.default_rng(11)
    index = vecdb.HNSWIndex(6, metric="cosine", M=4, ef_construction=20, seed=9, dtype=request.param)
    rows = clustered(rng, 300, 6)
    index.add(rows)
    index.delete([5, 17])
    added = clustered(rng, 2, 6)
    index.add(added, ids=[40, 1000])
    stored = {i: rows[i] for i in range(300) if i not in (5, 17)} | {40: added[0], 1000: added[1]}
    return index, clustered(rng, 10, 6), stored


def stored_vectors(stored):
    ids = np.array(sorted(stored), dtype=np.int64)
    return ids, np.array([stored[i] for i in ids.tolist()], dtype=np.float32)


def test_saved_without_live_vectors_and_refilled_is_the_same_index(tmp_path, kept):
    # The retired slots (ids 5 and 17 deleted, 40 replaced) keep their vectors in the file: they still route.
    index, queries, stored = kept
    path = without_live_vectors(index, tmp_path / "links.hnsw")
    assert path.stat().st_size < len(index.to_bytes())
    ids, rows = stored_vectors(stored)
    order = np.random.default_rng(3).permutation(len(ids))  # any order, in several chunks, with unknown ids
    chunks = [(ids[part], rows[part]) for part in np.array_split(order, 7)]
    chunks.append((np.array([5, 17, 99_999], dtype=np.int64), np.ones((3, 6), dtype=np.float32)))
    loaded = refilled(path, chunks)
    assert_same_index(loaded, index, queries)
    assert loaded.to_bytes() == index.to_bytes()


def test_an_index_saved_without_live_vectors_is_refused_without_them(tmp_path, kept):
    path = without_live_vectors(kept[0], tmp_path / "links.hnsw")
    for read in (lambda: vecdb.HNSWIndex.load(path), lambda: vecdb.HNSWIndex.from_bytes(path.read_bytes())):
        with pytest.raises(CorruptIndexError, match="without its live vectors"):
            read()
    ids, rows = stored_vectors(kept[2])
    with pytest.raises(CorruptIndexError, match="dimension"):
        refilled(path, [(ids, rows[:, :5].copy())])


def test_ids_left_unfilled_take_an_identical_vectors_copy_or_zeros(tmp_path):
    # Callers leave out the ids they are about to replace or delete: a copy of an identical vector takes the
    # vector of another member of its ring (all equal); a node with none takes zeros and only routes.
    index = vecdb.HNSWIndex(2, metric="l2", M=4)
    rows = np.array([[1, 0], [0, 1], [1, 0], [1, 0], [3, 3]], dtype=np.float32)  # 2 and 3 copy 0
    index.add(rows)
    path = without_live_vectors(index, tmp_path / "links.hnsw")
    loaded = refilled(path, [(np.array([1, 3], dtype=np.int64), rows[[1, 3]])])  # 0, 2 and 4 left out
    got = loaded.get_vectors(np.arange(5))
    np.testing.assert_array_equal(got[:4], rows[:4])
    np.testing.assert_array_equal(got[4], [0, 0])
    loaded.add(rows[4:], ids=[4])  # the caller's catch-up: replaced, the zeros slot retires
    ids, dists = loaded.search(np.array([3, 3], dtype=np.float32), 1)
    assert ids.tolist() == [4] and dists.tolist() == [0.0]


def test_refilled_copies_that_disagree_are_refused(tmp_path):
    index = vecdb.HNSWIndex(2, metric="l2", M=4)
    rows = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)  # 2 copies 0
    index.add(rows)
    path = without_live_vectors(index, tmp_path / "links.hnsw")
    with pytest.raises(CorruptIndexError, match="not a copy of its head"):
        refilled(path, [(np.arange(3), np.array([[1, 0], [0, 1], [2, 0]], dtype=np.float32))])


def test_a_version_3_file_with_identical_vectors_loads_and_takes_copies():
    # Saved by vecdb before copies existed (format version 3): 40 identical
    # vectors [0, 0, 0, 1] (ids 0-39), each a node of its own, then 20
    # random ones (see tests/data/README.md).
    data = (DATA / "hnsw_v3_duplicates.hnsw").read_bytes()
    assert int.from_bytes(data[8:12], "little") == 3
    index = vecdb.HNSWIndex.from_bytes(data)
    assert len(index) == 60 and index.stats()["copies"] == 0
    index.add(np.array([[0, 0, 0, 1]] * 5, dtype=np.float32), ids=np.arange(100, 105))
    assert index.stats()["copies"] == 5  # of the first of the 40 old nodes
    ids, dists = index.search(np.array([0, 0, 0, 1], dtype=np.float32), 10, allowed=np.arange(100, 105))
    assert sorted(ids[:5].tolist()) == list(range(100, 105)) and np.allclose(dists[:5], 0, atol=1e-6)
    reloaded = vecdb.HNSWIndex.from_bytes(index.to_bytes())
    assert reloaded.stats()["copies"] == 5 and len(reloaded) == 65


def test_huge_sizes_in_a_valid_looking_header_are_refused(small):
    data = bytearray(small[0].to_bytes())
    slots_offset = 8 + 4 * 4 + 8 * 4
    data[slots_offset:slots_offset + 16] = (2**31).to_bytes(8, "little") * 2  # slots, inserts ever made
    with pytest.raises(CorruptIndexError, match="truncated"):
        vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))


def test_consistent_checksum_but_bad_link_is_refused(small):
    data = bytearray(small[0].to_bytes())
    slots = small[0].stats()["live"] + small[0].stats()["deleted"]
    first_link = HEADER_BYTES + 8 + slots + 8  # entry point, levels, then node 0's ring word and count
    data[first_link:first_link + 4] = (10_000).to_bytes(4, "little")
    with pytest.raises(CorruptIndexError, match="bad link"):
        vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))


def test_consistent_checksum_but_repeated_id_is_refused():
    index = vecdb.HNSWIndex(2, metric="l2")
    index.add(np.eye(2), ids=[7, 8])
    data = bytearray(index.to_bytes())
    labels = HEADER_BYTES + 8 + 2 + 2 * (2 + 2 * 16) * 4  # entry, levels, layer-0 rows (M=16)
    assert int.from_bytes(data[labels + 8:labels + 16], "little") == 8
    data[labels + 8:labels + 16] = (7).to_bytes(8, "little")
    with pytest.raises(CorruptIndexError, match="id 7 appears twice"):
        vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))


@pytest.mark.parametrize("edit, message", [
    ("ring out of range", "bad copy link"),
    ("two rings into one node", "bad copy link"),
    ("a ring without head", "heads"),
    ("a copy with links", "copy 2 has links"),
    ("a copy of another vector", "not a copy of its head"),
])
def test_consistent_checksum_but_bad_copies_are_refused(edit, message):
    index = vecdb.HNSWIndex(2, metric="l2", M=2)
    index.add(np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32))  # 2 and 3 copy 0
    data = bytearray(index.to_bytes())
    levels = HEADER_BYTES + 8
    rows = levels + 4
    ring = [int.from_bytes(data[rows + 24 * node:rows + 24 * node + 4], "little") for node in range(4)]
    assert ring[1] == 1 and sorted(ring) == [0, 1, 2, 3] and data[levels + 2] == data[levels + 3] == 0xff

    def set_ring(node, value):
        data[rows + 24 * node:rows + 24 * node + 4] = value.to_bytes(4, "little")

    if edit == "ring out of range":
        set_ring(0, 4)
    elif edit == "two rings into one node":
        set_ring(1, ring[0])
    elif edit == "a ring without head":
        set_ring(0, 0)
        set_ring(ring.index(0), ring[0])  # 2 and 3 now ring among themselves
    elif edit == "a copy with links":
        data[rows + 24 * 2 + 4] = 1
    else:
        vectors = len(data) - 8 - 4 * 2 * 4
        data[vectors + 2 * 8:vectors + 2 * 8 + 4] = np.float32(0.5).tobytes()
    with pytest.raises(CorruptIndexError, match=message):
        vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))


def test_not_bytes():
    with pytest.raises(InvalidDTypeError, match="must be bytes"):
        vecdb.HNSWIndex.from_bytes("graph")


def test_an_id_given_twice_keeps_its_last_row(tmp_path):
    index = vecdb.HNSWIndex(2, metric="l2", M=4)
    rows = np.arange(400, dtype=np.float32).reshape(200, 2)
    index.add(rows)
    path = without_live_vectors(index, tmp_path / "links.hnsw")
    ids = np.concatenate([np.arange(200), [7]]).astype(np.int64)
    loaded = refilled(path, [(ids, np.concatenate([rows + 1, rows[7:8]]))])
    np.testing.assert_array_equal(loaded.get_vectors(np.array([6, 7, 8])), rows[6:9] + [[1], [0], [1]])
