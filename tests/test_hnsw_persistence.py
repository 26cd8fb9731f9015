"""HNSWIndex save/load: identical results after a round trip, and damaged
data refused with CorruptIndexError, never a crash or a broken index."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb import _core
from tests.datasets import clustered
from vecdb.errors import CorruptIndexError, InvalidDTypeError

HEADER_BYTES = 8 + 4 * 4 + 8 * 7  # magic, four u32, seven u64 (see csrc/hnsw/hnsw_index.cpp)


def restamp(data: bytes) -> bytes:
    """Recompute the trailing checksum after a deliberate edit."""
    body = data[:-8]
    return body + _core.checksum64(body).to_bytes(8, "little")


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
    shape = ("live", "deleted", "nodes_per_level", "mean_out_degree", "entry_level", "M", "ef_construction")
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
    future = restamp(data[:8] + (4).to_bytes(4, "little") + data[12:])
    with pytest.raises(CorruptIndexError, match="format version 4"):
        vecdb.HNSWIndex.from_bytes(future)
    ancient = restamp(data[:8] + (1).to_bytes(4, "little") + data[12:])
    with pytest.raises(CorruptIndexError, match="format version 1"):
        vecdb.HNSWIndex.from_bytes(ancient)


def test_version_2_files_still_load(small):
    # Version 3 added PQ codebooks; a float index is laid out as in version 2.
    data = small[0].to_bytes()
    old = vecdb.HNSWIndex.from_bytes(restamp(data[:8] + (2).to_bytes(4, "little") + data[12:]))
    assert len(old) == len(small[0])
    np.testing.assert_array_equal(old.ids(), small[0].ids())


def test_huge_sizes_in_a_valid_looking_header_are_refused(small):
    data = bytearray(small[0].to_bytes())
    slots_offset = 8 + 4 * 4 + 8 * 4
    data[slots_offset:slots_offset + 16] = (2**31).to_bytes(8, "little") * 2  # slots, inserts ever made
    with pytest.raises(CorruptIndexError, match="truncated"):
        vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))


def test_consistent_checksum_but_bad_link_is_refused(small):
    data = bytearray(small[0].to_bytes())
    slots = small[0].stats()["live"] + small[0].stats()["deleted"]
    first_link = HEADER_BYTES + 8 + slots + 4  # entry point, levels, then node 0's count
    data[first_link:first_link + 4] = (10_000).to_bytes(4, "little")
    with pytest.raises(CorruptIndexError, match="bad link"):
        vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))


def test_consistent_checksum_but_repeated_id_is_refused():
    index = vecdb.HNSWIndex(2, metric="l2")
    index.add(np.eye(2), ids=[7, 8])
    data = bytearray(index.to_bytes())
    labels = HEADER_BYTES + 8 + 2 + 2 * (1 + 2 * 16) * 4  # entry, levels, layer-0 links (M=16)
    assert int.from_bytes(data[labels + 8:labels + 16], "little") == 8
    data[labels + 8:labels + 16] = (7).to_bytes(8, "little")
    with pytest.raises(CorruptIndexError, match="id 7 appears twice"):
        vecdb.HNSWIndex.from_bytes(restamp(bytes(data)))


def test_not_bytes():
    with pytest.raises(InvalidDTypeError, match="must be bytes"):
        vecdb.HNSWIndex.from_bytes("graph")
