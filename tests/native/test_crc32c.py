"""CRC-32C, the checksum on stored values: every implementation this CPU has
(forced in turn) against a bit-by-bit reference, and the sealing helpers."""

from __future__ import annotations

import numpy as np
import pytest

from vecdb import _core


def reference_crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


@pytest.fixture(params=_core.crc32c_implementations())
def implementation(request):
    previous = _core.crc32c_implementation()
    _core.set_crc32c_implementation(request.param)
    yield request.param
    _core.set_crc32c_implementation(previous)


def test_known_values(implementation):
    assert _core.crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C
    assert _core.crc32c(b"") == 0
    assert _core.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4


def test_against_the_reference_at_every_length_and_alignment(implementation):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    for start in range(9):
        for length in list(range(0, 40)) + [63, 64, 65, 255, 291 - start]:
            piece = data[start:start + length]
            assert _core.crc32c(piece) == reference_crc32c(piece), (start, length)
    assert _core.crc32c(memoryview(data)[3:200]) == reference_crc32c(data[3:200])
    assert _core.crc32c(np.frombuffer(data[:200], dtype=np.float32)) == reference_crc32c(data[:200])


def test_chaining(implementation):
    assert _core.crc32c(b"56789", _core.crc32c(b"1234")) == _core.crc32c(b"123456789")


def test_unknown_implementation_refused():
    with pytest.raises(ValueError, match="not available"):
        _core.set_crc32c_implementation("avx9000")


def test_sealed_values_detect_any_single_bit_flip(implementation):
    seed = _core.crc32c(b"vecdb:some database")
    sealed = _core.seal_value(seed, b"key", b"value bytes")
    assert sealed[:-4] == b"value bytes" and _core.value_intact(seed, b"key", sealed)
    assert not _core.value_intact(seed, b"kez", sealed)  # the key is covered too
    assert not _core.value_intact(seed ^ 1, b"key", sealed)  # and the database
    for bit in range(len(sealed) * 8):
        flipped = bytearray(sealed)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not _core.value_intact(seed, b"key", bytes(flipped))
    assert not _core.value_intact(seed, b"key", sealed[:3])
    pairs = [(b"a", _core.seal_value(seed, b"a", b"1")), (b"b", _core.seal_value(seed, b"b", b"22"))]
    assert _core.first_damaged_pair(seed, pairs) == -1
    assert _core.first_damaged_pair(seed, pairs + [(b"c", pairs[0][1])]) == 2


def test_sealed_rows(implementation):
    seed = 12345
    rows = np.arange(24, dtype=np.float32).reshape(3, 8)
    keys = b"".join(i.to_bytes(8, "big") for i in range(3))
    sealed = _core.seal_rows(seed, keys, rows, 32)
    assert sealed.shape == (3, 36) and sealed[:, :32].tobytes() == rows.tobytes()
    for row in range(3):
        assert _core.value_intact(seed, keys[8 * row:8 * row + 8], sealed[row].tobytes())
    assert _core.first_damaged_row(seed, keys, sealed, 36) == -1
    sealed[2, 5] ^= 4
    assert _core.first_damaged_row(seed, keys, sealed, 36) == 2
    # Without keys: each row's leading bytes are its key (packed LMDB records).
    packed = np.frombuffer(b"".join(b"k" + _core.seal_value(seed, b"k", b"label%03d" % i) for i in range(4)),
                           dtype=np.uint8)
    assert _core.first_damaged_row(seed, None, packed, 1 + 8 + 4) == -1
    with pytest.raises(ValueError):
        _core.first_damaged_row(seed, None, packed[:-1], 13)
    with pytest.raises(ValueError, match="contiguous"):
        _core.seal_rows(seed, keys, np.zeros((3, 16), dtype=np.float32)[:, ::2], 32)


def test_gather_sealed_rows_copies_the_rows_that_pass_their_seal():
    """The re-rank's read of vectors stored in blocks (header, then sealed
    rows at label % rows_per_block): rows copied by label, in any order, a
    row whose seal fails or that lies past its block (or in a missing one)
    reported, and arguments checked rather than trusted."""
    seed, dim, per_block, header = 7, 4, 8, 5
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((24, dim)).astype(np.float32)
    keys = b"".join(label.to_bytes(8, "big") for label in range(24))
    sealed = _core.seal_rows(seed, keys, vectors, 4 * dim)
    # Blocks 0 and 1 full, block 2 holds labels 16-18 only (its value ends there).
    blocks = [b"h" * header + sealed[first:min(first + per_block, 19)].tobytes() for first in (0, 8, 16)]
    labels = np.array([17, 3, 9, 3, 20, 12], dtype=np.int64)
    block_keys, position = _core.block_keys(labels, 3)
    assert block_keys == [i.to_bytes(8, "big") for i in (0, 1, 2)] and position.tolist() == [2, 0, 1, 0, 2, 1]
    damaged = bytearray(blocks[1])
    damaged[header + (12 % per_block) * (4 * dim + 4) + 2] ^= 1  # label 12's floats
    values = [memoryview(blocks[0]), bytes(damaged), blocks[2]]
    out = np.full((len(labels), dim), -1.0, dtype=np.float32)
    passed = _core.gather_sealed_rows(seed, values, labels, position, per_block, header, out)
    assert passed.tolist() == [True, True, True, True, False, False]  # 20: past its block's end; 12: damaged
    np.testing.assert_array_equal(out[:4], vectors[labels[:4]])
    assert (out[4:] == -1).all()
    values[2] = None  # a missing block
    assert _core.gather_sealed_rows(seed, values, labels, position, per_block, header, out).tolist()[0] is False
    for bad, match in [(dict(out=out.astype(np.float64)), "float32"), (dict(out=out[::2]), "float32"),
                       (dict(out=np.asfortranarray(np.zeros((6, 2), np.float32))), "float32"),
                       (dict(position=position + 3), "position"), (dict(labels=labels - 20), "labels"),
                       (dict(rows_per_block=6), "power of two")]:
        arguments = dict(seed=seed, values=values, labels=labels, position=position, rows_per_block=per_block,
                         header_bytes=header, out=out)
        arguments.update(bad)
        with pytest.raises(ValueError, match=match):
            _core.gather_sealed_rows(**arguments)
    with pytest.raises(ValueError, match=">= 0"):
        _core.block_keys(np.array([1, -1]), 3)
