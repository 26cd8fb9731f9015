"""Index snapshots: a collection's HNSW graph (or its PQ codes) saved beside
the LMDB environment so that reopening does not rebuild it.

The main graph of a collection of full vectors is saved without them
(links, ids, and only the vectors of retired slots, which LMDB no longer
holds but which still route searches): LMDB holds each vector once, and
reading it back costs about what reading a second copy from the snapshot
did. The reader passes the vectors stored as of the snapshot's batch (the
points changed since are left out: catching up replaces or deletes them).
Prefix graphs hold vectors LMDB does not (rotated prefixes) and keep them.

A snapshot file is a 64-byte header followed by the index in its own
checksummed format. The header (format version 2, a checked header of
:class:`~vecdb.index.framing.Frame`): magic, version, the
change sequence the index reflects, the collection's key, the database's
id, the collection's fingerprint at that sequence (a hash chained over every
committed batch, see ``CollectionStore.fingerprint_at``), and a CRC-32 of
the header. A snapshot is used only if all of them match: a snapshot from
another database, or from a copy of this one that has since diverged (same
sequence and count, other data), is never taken for this collection's. It
is written atomically (temp file, fsync, rename, directory fsync): a crash
leaves the previous snapshot or the new one, never a torn file. Any problem
reading it (missing, truncated, corrupt, another collection's or state's,
format version 1) means "rebuild from LMDB".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from vecdb._files import write_atomically
from vecdb.config import HNSW, IndexSpec
from vecdb.errors import CorruptIndexError
from vecdb.index.framing import Frame
from vecdb.index.label_index import CodeScanLabelIndex, GraphLabelIndex, SavedIndex

SNAPSHOT_FOLDER = "snapshots"
TERMS_SUFFIX = ".terms"  # a collection's inverted indexes (vecdb.index.term_snapshot)
# After magic and version: sequence, collection key (16 hex digits), database id, fingerprint; then a CRC-32.
_HEADER = Frame("index snapshot", b"VDBSNAP\x00", 2, "Q16s16sQ")
# snapshot_path and prefix_snapshot_path: the collection key, then the rotation version of a prefix's.
_SNAPSHOT_NAME = re.compile(r"([0-9a-f]{16})(?:\.mrl[0-9]+\.r([0-9]+))?\.hnsw")


@dataclass(frozen=True)
class Owner:
    """Whose index a snapshot holds: a collection (its key) of a database
    (its 16-byte id)."""

    database_id: bytes
    key: str

    def packed_key(self) -> bytes:
        return self.key.encode()[:16].ljust(16, b"\x00")


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
    """Every snapshot file of the collection (main and prefix indexes, and
    its inverted indexes': :mod:`vecdb.index.term_snapshot`)."""
    return [snapshot_path(folder, key), *prefix_snapshot_paths(folder, key),
            folder / SNAPSHOT_FOLDER / f"{key}{TERMS_SUFFIX}"]


def remove_abandoned_snapshots(folder: Path, rotation_versions: Dict[str, int]) -> None:
    """Delete what a killed writer left in the snapshot folder: temporary
    files half-written, snapshots of collections no longer stored (killed
    between a drop's commit and its deletion of their files) and prefix
    snapshots of a rotation since replaced (killed before
    :func:`vecdb.index.loader.save_snapshots` removed them).
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
    for snapshot in (folder / SNAPSHOT_FOLDER).glob(f"*{TERMS_SUFFIX}"):
        if snapshot.name[:-len(TERMS_SUFFIX)] not in rotation_versions:
            snapshot.unlink(missing_ok=True)


def write_snapshot(path: Path, owner: Owner, sequence: int, fingerprint: int, index: SavedIndex,
                   vectors_in_lmdb: bool = False) -> None:
    """Save ``index``, which reflects the collection's state after batch
    ``sequence`` (whose fingerprint is ``fingerprint``); a graph whose live
    vectors are the collection's (``vectors_in_lmdb``) without them."""
    path.parent.mkdir(exist_ok=True)
    header = _HEADER.header((sequence, owner.packed_key(), owner.database_id, fingerprint))

    def write(handle: BinaryIO) -> None:
        handle.write(header)
        if isinstance(index, GraphLabelIndex):
            index.write_to(handle, live_vectors=not vectors_in_lmdb)
        else:
            index.write_to(handle)

    write_atomically(path, write)


def owned_sequence(frame: Frame, handle: BinaryIO, owner: Owner,
                   fingerprint_at: Callable[[int], Optional[int]]) -> Optional[int]:
    """The sequence in a snapshot's checked header (sequence, key, database
    id, fingerprint) if the snapshot is ``owner``'s at a state the collection
    went through, else None (CorruptIndexError if the header is damaged)."""
    sequence, stored_key, database_id, fingerprint = frame.read_header(handle)
    if stored_key != owner.packed_key() or database_id != owner.database_id or fingerprint_at(sequence) != fingerprint:
        return None
    return sequence


def read_snapshot(path: Path, owner: Owner, spec: IndexSpec, fingerprint_at: Callable[[int], Optional[int]],
                  vectors_at: Callable[[int], Iterable[Tuple[np.ndarray, np.ndarray]]],
                  ) -> Optional[Tuple[int, SavedIndex]]:
    """``(sequence, index)`` from a snapshot file, or None if there is no
    usable snapshot (the reason does not matter: the caller rebuilds).
    ``fingerprint_at(sequence)`` is the collection's fingerprint after that
    batch (None once the change log no longer reaches back so far);
    ``vectors_at(sequence)`` the vectors stored as of that batch, as
    ``(labels, rows)`` chunks (read only for a graph saved without them)."""
    try:
        with open(path, "rb") as handle:
            sequence = owned_sequence(_HEADER, handle, owner, fingerprint_at)
            if sequence is None:
                return None
            if isinstance(spec, HNSW):
                return sequence, GraphLabelIndex.read_from(handle, spec, lambda: vectors_at(sequence))
            return sequence, CodeScanLabelIndex.read_from(handle)
    except (OSError, CorruptIndexError):
        return None
