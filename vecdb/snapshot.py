"""Index snapshots: a collection's HNSW graph (or its PQ codes) saved beside
the LMDB environment so that reopening does not rebuild it.

A snapshot file is a 32-byte header (magic, format version, the change
sequence it reflects, the collection key, a CRC-32 of the header) followed by
the index in its own checksummed format. It is written atomically
(temp file, fsync, rename, directory fsync): a crash leaves the previous
snapshot or the new one, never a torn file. Any problem reading it (missing,
truncated, corrupt, another collection's) means "rebuild from LMDB".
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from vecdb._files import write_atomically
from vecdb.config import HNSW, IndexSpec
from vecdb.errors import CorruptIndexError
from vecdb.label_index import CodeScanLabelIndex, GraphLabelIndex, LabelIndex

SNAPSHOT_FOLDER = "snapshots"
_MAGIC = b"VDBSNAP\x00"
_VERSION = 1
_HEADER = struct.Struct("<8sIQ8sI")  # magic, version, sequence, key (8 bytes of hex), crc32
# snapshot_path and prefix_snapshot_path: the collection key, then the rotation version of a prefix's.
_SNAPSHOT_NAME = re.compile(r"([0-9a-f]{16})(?:\.mrl[0-9]+\.r([0-9]+))?\.hnsw")


def snapshot_path(folder: Path, key: str) -> Path:
    # Named .hnsw since before code snapshots; renaming would force every
    # existing collection to rebuild once.
    return folder / SNAPSHOT_FOLDER / f"{key}.hnsw"


def prefix_snapshot_path(folder: Path, key: str, dims: int, rotation_version: int) -> Path:
    """Where the index of a ``dims`` prefix is saved; the rotation version
    is in the name, so a snapshot made under another rotation is never read."""
    return folder / SNAPSHOT_FOLDER / f"{key}.mrl{dims}.r{rotation_version}.hnsw"


def prefix_snapshot_paths(folder: Path, key: str) -> List[Path]:
    """Every prefix-index snapshot file of the collection, of any rotation."""
    return list((folder / SNAPSHOT_FOLDER).glob(f"{key}.mrl*.hnsw"))


def collection_snapshot_paths(folder: Path, key: str) -> List[Path]:
    """Every snapshot file of the collection (main and prefix indexes)."""
    return [snapshot_path(folder, key), *prefix_snapshot_paths(folder, key)]


def remove_abandoned_snapshots(folder: Path, rotation_versions: Dict[str, int]) -> None:
    """Delete what a killed writer left in the snapshot folder: temporary
    files half-written, snapshots of collections no longer stored (killed
    between a drop's commit and its deletion of their files) and prefix
    snapshots of a rotation since replaced (killed before
    :func:`vecdb.index_loader.save_snapshots` removed them).
    ``rotation_versions`` maps every stored collection's key to its
    rotation version. Only the writer calls this, at open: no other process
    writes snapshots."""
    for leftover in (folder / SNAPSHOT_FOLDER).glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
    for snapshot in (folder / SNAPSHOT_FOLDER).glob("*.hnsw"):
        match = _SNAPSHOT_NAME.fullmatch(snapshot.name)
        if match is None:
            continue
        key, rotation = match.group(1), match.group(2)
        if key not in rotation_versions or (rotation is not None and int(rotation) != rotation_versions[key]):
            snapshot.unlink(missing_ok=True)


def write_snapshot(path: Path, key: str, sequence: int, index: LabelIndex) -> None:
    path.parent.mkdir(exist_ok=True)
    fields = (_MAGIC, _VERSION, sequence, key.encode()[:8])
    header = _HEADER.pack(*fields, zlib.crc32(struct.pack("<8sIQ8s", *fields)))

    def write(handle) -> None:
        handle.write(header)
        index.write_to(handle)

    write_atomically(path, write)


def read_snapshot(path: Path, key: str, spec: IndexSpec) -> Optional[Tuple[int, Union[GraphLabelIndex, CodeScanLabelIndex]]]:
    """``(sequence, index)`` from a snapshot file, or None if there is no
    usable snapshot (the reason does not matter: the caller rebuilds)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER.size)
            if len(header) != _HEADER.size:
                return None
            magic, version, sequence, stored_key, crc = _HEADER.unpack(header)
            if (magic != _MAGIC or version != _VERSION or stored_key != key.encode()[:8]
                    or crc != zlib.crc32(header[:-4])):
                return None
            reader = GraphLabelIndex if isinstance(spec, HNSW) else CodeScanLabelIndex
            return sequence, reader.read_from(handle, spec)
    except (OSError, CorruptIndexError):
        return None
