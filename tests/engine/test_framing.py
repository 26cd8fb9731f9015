"""The index layer's binary formats (PCA rotation, PQ code snapshot, index
snapshot header) share vecdb.index.framing: each still writes the bytes its
layout always had (files on disk keep loading), written out here with
struct, and each refuses another magic, an unknown version, a bad checksum
and a cut file with CorruptIndexError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

from vecdb import _core
from vecdb.config import Flat
from vecdb.errors import CorruptIndexError
from vecdb.index.framing import Frame
from vecdb.index.label_index import CodeScanLabelIndex
from vecdb.index.rotation import learn_pca_rotation, rotation_from_bytes, rotation_to_bytes
from vecdb.index.snapshot import Owner, read_snapshot, write_snapshot
from vecdb.native.pq import ProductQuantizer

DIM = 12


def sealed(header: bytes, payload: bytes) -> bytes:
    return header + payload + struct.pack("<Q", _core.checksum64(header + payload))


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(5).standard_normal((300, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def codes(vectors):
    index = CodeScanLabelIndex(ProductQuantizer(DIM, 4, "l2").train(vectors, seed=1))
    index.add(np.arange(0, 300, 3), vectors[::3])
    index.delete(np.array([3, 30]))
    return index


def code_bytes(index: CodeScanLabelIndex) -> bytes:
    handle = io.BytesIO()
    index.write_to(handle)
    return handle.getvalue()


def test_rotation_bytes_keep_their_layout(vectors):
    rotation = learn_pca_rotation(vectors, "cosine")
    data = rotation_to_bytes(rotation)
    assert data == sealed(struct.pack("<8sII", b"VDBROTN1", 1, DIM), rotation.astype("<f4").tobytes())
    assert np.array_equal(rotation_from_bytes(data, DIM), rotation)


def test_code_snapshot_bytes_keep_their_layout(codes):
    rows, present = codes._arrays
    codebooks = codes.quantizer.to_bytes()
    header = struct.pack("<8sIIQQQ", b"VDBCODES", 1, 0, len(codebooks), len(present), rows.shape[1])
    data = code_bytes(codes)
    assert data == sealed(header, codebooks + rows[: len(present)].tobytes() + present.tobytes())
    loaded = CodeScanLabelIndex.read_from(io.BytesIO(data))
    assert np.array_equal(loaded.labels(), codes.labels()) and np.array_equal(loaded._arrays[0], rows[: len(present)])


def test_snapshot_header_keeps_its_layout(tmp_path, codes):
    owner = Owner(bytes(range(16)), "0123456789abcdef")
    path = tmp_path / "snapshots" / "0123456789abcdef.hnsw"
    write_snapshot(path, owner, 7, 2**63 + 5, codes)
    fields = struct.pack("<8sIQ16s16sQ", b"VDBSNAP\x00", 2, 7, b"0123456789abcdef", bytes(range(16)), 2**63 + 5)
    assert path.read_bytes() == fields + struct.pack("<I", zlib.crc32(fields)) + code_bytes(codes)
    sequence, loaded = read_snapshot(path, owner, Flat(), lambda at: 2**63 + 5 if at == 7 else None,
                                     lambda at: pytest.fail("a code snapshot holds its codes"))
    assert sequence == 7 and np.array_equal(loaded.labels(), codes.labels())


def damaged(data: bytes, how: str) -> bytes:
    if how == "magic":
        return b"X" + data[1:]
    if how == "version":
        return data[:8] + struct.pack("<I", 99) + data[12:]
    if how == "checksum":
        return data[:-20] + bytes([data[-20] ^ 1]) + data[-19:]
    return data[: len(data) // 2]  # cut


MESSAGES = {"magic": "wrong magic", "version": "format version 99", "checksum": "checksum mismatch",
            "cut": "truncated"}


@pytest.mark.parametrize("how", sorted(MESSAGES))
def test_sealed_formats_refuse_damage(vectors, codes, how):
    rotation = rotation_to_bytes(learn_pca_rotation(vectors, "l2"))
    with pytest.raises(CorruptIndexError, match=MESSAGES[how]):
        rotation_from_bytes(damaged(rotation, how), DIM)
    with pytest.raises(CorruptIndexError, match=MESSAGES[how]):
        CodeScanLabelIndex.read_from(io.BytesIO(damaged(code_bytes(codes), how)))


def test_a_rotation_of_another_dimension_is_refused(vectors):
    with pytest.raises(CorruptIndexError, match="dimension"):
        rotation_from_bytes(rotation_to_bytes(learn_pca_rotation(vectors, "l2")), DIM + 1)


@pytest.mark.parametrize("how", sorted(MESSAGES))
def test_checked_headers_refuse_damage(how):
    frame = Frame("test header", b"TESTHEAD", 3, "Q")
    header = frame.header((12345,))
    assert frame.read_header(io.BytesIO(header + b"payload")) == (12345,)
    if how == "checksum":
        header = header[:-5] + bytes([header[-5] ^ 1]) + header[-4:]
    else:
        header = damaged(header, how)
    with pytest.raises(CorruptIndexError, match=MESSAGES[how]):
        frame.read_header(io.BytesIO(header))
