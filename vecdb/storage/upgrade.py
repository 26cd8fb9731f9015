"""Upgrading a database to the current storage format (3) from an older one:

- format 1 (vecdb 0.1): values stored bare. Every value is sealed with a
  checksum, each change-log entry gets a fingerprint and the database an id;
- format 2: values sealed, one record per vector. Vectors are regrouped into
  blocks (:mod:`vecdb.storage.vector_blocks`), each keeping its own seal:
  fingerprints, the database id and index snapshots stay valid.

The first writable open of an old folder does it, once, before LMDB opens
it for use: everything is rewritten into a new data file in
``<folder>/.upgrading/``, which replaces ``data.mdb`` by one rename, only
while no other process has the folder open. That rename is the commit: a
crash or an error before it leaves the old file as it was (the next open
starts again), and no reader ever sees half of each format. Named databases
no collection uses any more (left behind by drops) are not copied. Index
snapshots of format 1 are not used afterwards: each collection rebuilds its
index once, from LMDB, when next loaded.

A new file rather than an upgrade in place, collection by collection: a
crash midway would leave collections in both layouts, so either every read
would have to know both, or the format would have to be recorded per
collection; the copy keeps one layout per file, at the cost of the disk
space of a second copy while it runs.

Read-only handles cannot upgrade; they refuse an old folder and say so
(see :meth:`vecdb.storage.environment.Environment`).
"""

from __future__ import annotations

import os
import shutil
import warnings
from abc import ABC, abstractmethod
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, Dict, Generator, Iterator, List, Set, Tuple

import lmdb
import msgpack
import numpy as np

from vecdb import _core
from vecdb.config import CollectionConfig
from vecdb.errors import CorruptRecordError
from vecdb.progress import Progress, Task
from vecdb.storage.codec import CHECK_BYTES, ValueCodec, in_chunks
from vecdb.storage.catalog import CONFIG_PREFIX, REMEDY, config_from, part_names, write_config
from vecdb.storage.collection_store import chain_fingerprint, point_entry
from vecdb.storage.folder_locks import lock_out_lmdb_users, swap_in_if_alone
from vecdb.storage.format import (
    DATABASE_ID_KEY,
    FORMAT_1,
    FORMAT_KEY,
    FORMAT_VERSION,
    MAX_NAMED_DATABASES,
    new_database_id,
    put_identity,
)
from vecdb.storage.keys import labels_from_bytes
from vecdb.storage.vector_blocks import VectorBlocks

STAGING = ".upgrading"
_CHUNK = 10_000  # records per write transaction of the new file

Pairs = List[Tuple[bytes, bytes]]


def upgrade_data_file(folder: Path, stored_format: bytes, progress: Progress) -> int:
    """Rewrite the database in ``folder``, in storage format ``stored_format``
    (1 or 2), in the current format, reporting the records rewritten to
    ``progress``. The caller holds the folder's writer lock and has LMDB
    closed on it. Raises StorageLockedError (nothing changed) if another
    process has the folder open, even read-only. Returns the descriptor
    holding other LMDB users out, for the caller to close as
    :func:`~vecdb.storage.folder_locks.swap_in_if_alone` says."""
    if (folder / "lock.mdb").exists():  # no lock file: no process has it open
        os.close(lock_out_lmdb_users(folder, "upgrading its storage format"))
    rewrite = _FromFormat1 if stored_format == FORMAT_1 else _FromFormat2
    warnings.warn(f"{folder} is in vecdb storage format {stored_format.decode()}: upgrading it once to format "
                  f"{FORMAT_VERSION.decode()} ({rewrite.CHANGE})", RuntimeWarning, stacklevel=2)
    staging = folder / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # a crashed upgrade's leftovers
    staging.mkdir()
    try:
        source = lmdb.open(str(folder), readonly=True, max_dbs=MAX_NAMED_DATABASES, readahead=False)
        try:
            data_bytes = (folder / "data.mdb").stat().st_size
            target = lmdb.open(str(staging), map_size=data_bytes * 2 + (64 << 20), max_dbs=MAX_NAMED_DATABASES,
                               readahead=False, sync=False, metasync=False)  # made durable once, below
            try:
                rewrite(source, target, progress).run()
                target.sync(True)
            finally:
                target.close()
        finally:
            source.close()
        with open(staging / "data.mdb", "rb") as handle:
            os.fsync(handle.fileno())
        return swap_in_if_alone(folder, staging / "data.mdb", folder / "data.mdb", "upgrading its storage format")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Rewrite(ABC):
    """Copies every collection of ``source`` (an older format) into the
    empty environment ``target``, in the current format."""

    CHANGE = ""  # what the upgrade changes, for its warning
    _TASK = Task(f"upgrading to storage format {FORMAT_VERSION.decode()}", "records")

    def __init__(self, source: lmdb.Environment, target: lmdb.Environment, progress: Progress) -> None:
        self._source = source
        self._target = target
        self._progress = progress
        self._done = 0
        self._total = 0
        with source.begin() as txn:
            self._main = list(txn.cursor())  # named databases' records among them: never copied
            self._configs = [self._config(key, value) for key, value in self._main if key.startswith(CONFIG_PREFIX)]
            existing = {key for key, _ in self._main}
        # Handles are opened outside a read transaction (one opened inside
        # an aborted read would close with it).
        self._databases: Dict[bytes, Tuple[Any, Any]] = {}
        for config in self._configs:
            for part, name in part_names(config.key).items():
                if name in existing:
                    dupsort = part == "payload-index"
                    self._databases[name] = (source.open_db(name, create=False, dupsort=dupsort, dupfixed=dupsort),
                                             target.open_db(name, dupsort=dupsort, dupfixed=dupsort))

    @abstractmethod
    def _config(self, key: bytes, value: bytes) -> CollectionConfig:
        """A collection's settings as the old format stored them."""

    @abstractmethod
    def _collection(self, config: CollectionConfig) -> None:
        """Copy the collection's records (and bring ``config``'s counters up to date)."""

    @abstractmethod
    def _main_database(self, txn: lmdb.Transaction[bytes]) -> None:
        """Write the main database's records (settings, identity, format)."""

    def run(self) -> None:
        with self._source.begin() as txn:
            self._total = sum(txn.stat(source)["entries"] for source, _ in self._databases.values())
        self._progress(self._TASK, 0, self._total)
        for config in self._configs:
            self._collection(config)
        self._write(self._main_database)

    def _vectors(self, config: CollectionConfig, sealed: Generator[Pairs, None, None]) -> None:
        """Store a collection's vectors, given as sealed ``(label key, row)``
        records in label order, in blocks."""
        name = part_names(config.key)["vectors"]
        blocks = VectorBlocks(ValueCodec(name), config.dim)

        def rows() -> Iterator[Tuple[np.ndarray, np.ndarray]]:
            for pairs in sealed:
                for key, value in pairs:
                    if len(value) != blocks.row_bytes:
                        raise CorruptRecordError(
                            f"collection {config.name!r}: the stored vector of label {int.from_bytes(key, 'big')} "
                            f"holds {len(value)} bytes, not {blocks.row_bytes}; it cannot be upgraded{REMEDY}",
                            collection=config.name)
                labels = labels_from_bytes(b"".join(key for key, _ in pairs))
                yield labels, np.frombuffer(b"".join(value for _, value in pairs), dtype=np.uint8).reshape(
                    len(pairs), blocks.row_bytes)
                self._advance(len(pairs))

        with closing(sealed):  # now, on an error too: it reads in a transaction of the source
            for pairs in blocks.blocks_from_rows(rows()):
                self._put(name, pairs, dupdata=False)

    def _advance(self, records: int) -> None:
        self._done += records
        self._progress(self._TASK, self._done, self._total)

    def _chunks(self, name: bytes) -> Generator[Pairs, None, None]:
        if name not in self._databases:
            return
        source = self._databases[name][0]
        with self._source.begin() as txn:
            yield from in_chunks(txn.cursor(db=source), _CHUNK)  # dupsort: one pair per duplicate

    def _put(self, name: bytes, pairs: Pairs, dupdata: bool) -> None:
        if not pairs:
            return
        target = self._databases[name][1]

        def put(txn: lmdb.Transaction[bytes]) -> None:
            # Sorted already; appending to a non-dupsort database is cheapest.
            consumed, added = txn.cursor(db=target).putmulti(pairs, dupdata=dupdata, append=not dupdata)
            if added != len(pairs):
                raise RuntimeError(f"upgrading {name!r}: stored {added} of {len(pairs)} records")

        self._write(put)

    def _write(self, body: Callable[[lmdb.Transaction[bytes]], None]) -> None:
        while True:
            try:
                with self._target.begin(write=True) as txn:
                    body(txn)
                return
            except lmdb.MapFullError:  # the transaction was aborted: grow, write it again
                self._target.set_mapsize(self._target.info()["map_size"] * 2)


class _FromFormat1(_Rewrite):
    """Format 1: every value sealed, fingerprints and an id added."""

    CHANGE = "a checksum on every stored value, vectors in blocks; indexes are rebuilt from LMDB when next loaded"

    def _config(self, key: bytes, value: bytes) -> CollectionConfig:
        return CollectionConfig.from_dict(msgpack.unpackb(value))

    def _collection(self, config: CollectionConfig) -> None:
        names = part_names(config.key)
        state = 0  # a digest of every stored vector: the state the fingerprints start from

        with_payload: Set[bytes] = set()  # labels whose point has a payload (flagged in its labels entry)

        def sealed_vectors() -> Generator[Pairs, None, None]:
            nonlocal state
            for pairs in self._sealed("vectors", names, with_payload):
                state = _core.checksum64(state.to_bytes(8, "little")
                                         + b"".join(value[-CHECK_BYTES:] for _, value in pairs))
                yield pairs

        self._vectors(config, sealed_vectors())
        for part in ("payloads", "ids", "labels", "quantizer", "payload-index"):
            for pairs in self._sealed(part, names, with_payload):
                self._put(names[part], pairs, dupdata=part == "payload-index")
                self._advance(len(pairs))
        fingerprint = chain_fingerprint(0, config.log_start - 1, state)
        config.base_fingerprint = fingerprint
        codec = ValueCodec(names["changes"])
        for pairs in self._chunks(names["changes"]):
            sealed = []
            for key, labels in pairs:
                sequence = int.from_bytes(key, "big")
                fingerprint = chain_fingerprint(fingerprint, sequence, _core.checksum64(b"upgrade" + labels))
                sealed.append((key, codec.seal(key, fingerprint.to_bytes(8, "little") + labels)))
            self._put(names["changes"], sealed, dupdata=False)
            self._advance(len(pairs))
        config.fingerprint = fingerprint

    def _sealed(self, part: str, names: Dict[str, bytes], with_payload: Set[bytes]) -> Iterator[Pairs]:
        """A part's records, sealed, a chunk at a time; payloads' keys are
        noted in ``with_payload`` and flag the labels entries."""
        codec = ValueCodec(names[part])
        for pairs in self._chunks(names[part]):
            if part == "payloads":
                with_payload.update(key for key, _ in pairs)
            elif part == "labels":
                pairs = [(key, point_entry(value, key in with_payload)) for key, value in pairs]
            yield [(key, codec.seal(key, value)) for key, value in pairs]

    def _main_database(self, txn: lmdb.Transaction[bytes]) -> None:
        for config in self._configs:
            write_config(txn, config)
        put_identity(txn, new_database_id())


class _FromFormat2(_Rewrite):
    """Format 2: values copied as they are (sealed already), vectors
    regrouped into blocks."""

    CHANGE = "vectors stored in blocks, a third less space"

    def _config(self, key: bytes, value: bytes) -> CollectionConfig:
        return config_from(key, value)

    def _collection(self, config: CollectionConfig) -> None:
        names = part_names(config.key)
        self._vectors(config, self._chunks(names["vectors"]))
        for part in ("payloads", "ids", "labels", "changes", "quantizer", "payload-index"):
            for pairs in self._chunks(names[part]):
                self._put(names[part], pairs, dupdata=part == "payload-index")
                self._advance(len(pairs))

    def _main_database(self, txn: lmdb.Transaction[bytes]) -> None:
        for key, value in self._main:
            if key.startswith(CONFIG_PREFIX) or key == DATABASE_ID_KEY:
                txn.put(key, value)
        txn.put(FORMAT_KEY, FORMAT_VERSION)
