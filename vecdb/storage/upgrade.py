"""Upgrading a database from storage format 1 (vecdb 0.1: values stored
bare) to format 2 (every value sealed with a checksum, a fingerprint in
each change-log entry, a database id).

The first writable open of a format-1 folder does it, once, before LMDB
opens it for use: every value is rewritten sealed into a new data file in
``<folder>/.upgrading/``, which replaces ``data.mdb`` by one rename, only
while no other process has the folder open. That rename is the commit: a
crash or an error before it leaves the format-1 file as it was (the next
open starts again), and no reader ever sees half of each format. Named
databases no collection uses any more (left behind by drops) are not
copied. Index snapshots of format 1 are not used afterwards: each
collection rebuilds its index once, from LMDB, when next loaded.

Read-only handles cannot upgrade; they refuse a format-1 folder and say so
(see :meth:`vecdb.storage.environment.Environment`).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Set, Tuple

import lmdb
import msgpack

from vecdb import _core
from vecdb.config import CollectionConfig
from vecdb.progress import Progress, Task
from vecdb.storage.codec import CHECK_BYTES, ValueCodec, in_chunks
from vecdb.storage.catalog import CONFIG_PREFIX, part_names, write_config
from vecdb.storage.collection_store import chain_fingerprint, point_entry
from vecdb.storage.folder_locks import lock_out_lmdb_users, swap_in_if_alone
from vecdb.storage.format import MAX_NAMED_DATABASES, new_database_id, put_identity

STAGING = ".upgrading"
_CHUNK = 10_000  # records per write transaction of the new file

Pairs = List[Tuple[bytes, bytes]]


def upgrade_format_1(folder: Path, progress: Progress) -> None:
    """Rewrite the format-1 database in ``folder`` in the current format,
    reporting the records rewritten to ``progress``.
    The caller holds the folder's writer lock and has LMDB closed on it.
    Raises StorageLockedError (nothing changed) if another process has the
    folder open, even read-only."""
    if (folder / "lock.mdb").exists():  # no lock file: no process has it open
        os.close(lock_out_lmdb_users(folder, "upgrading its storage format"))
    warnings.warn(f"{folder} is in vecdb storage format 1: upgrading it once to format 2 (a checksum on every "
                  "stored value); indexes are rebuilt from LMDB when next loaded", RuntimeWarning, stacklevel=2)
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
                _Rewrite(source, target, progress).run()
                target.sync(True)
            finally:
                target.close()
        finally:
            source.close()
        with open(staging / "data.mdb", "rb") as handle:
            os.fsync(handle.fileno())
        swap_in_if_alone(folder, staging / "data.mdb", folder / "data.mdb")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Rewrite:
    """Copies every collection of ``source`` (format 1) into the empty
    environment ``target``, sealed."""

    _TASK = Task("upgrading to storage format 2", "records")

    def __init__(self, source: lmdb.Environment, target: lmdb.Environment, progress: Progress) -> None:
        self._source = source
        self._target = target
        self._progress = progress
        self._done = 0
        self._total = 0
        with source.begin() as txn:
            self._configs = [CollectionConfig.from_dict(msgpack.unpackb(value))
                             for key, value in txn.cursor() if key.startswith(CONFIG_PREFIX)]
            existing = {key for key, _ in txn.cursor()}
        # Handles are opened outside a read transaction (one opened inside
        # an aborted read would close with it).
        self._databases: Dict[bytes, Tuple[Any, Any]] = {}
        for config in self._configs:
            for part, name in part_names(config.key).items():
                if name in existing:
                    dupsort = part == "payload-index"
                    self._databases[name] = (source.open_db(name, create=False, dupsort=dupsort, dupfixed=dupsort),
                                             target.open_db(name, dupsort=dupsort, dupfixed=dupsort))

    def run(self) -> None:
        with self._source.begin() as txn:
            self._total = sum(txn.stat(source)["entries"] for source, _ in self._databases.values())
        self._progress(self._TASK, 0, self._total)
        for config in self._configs:
            self._collection(config, self._advance)
        identity = new_database_id()

        def main(txn: lmdb.Transaction[bytes]) -> None:
            for config in self._configs:
                write_config(txn, config)
            put_identity(txn, identity)

        self._write(main)

    def _collection(self, config: CollectionConfig, advance: Callable[[int], None]) -> None:
        names = part_names(config.key)
        state = 0  # a digest of every stored vector: the state the fingerprints start from
        with_payload: Set[bytes] = set()  # labels whose point has a payload (flagged in its labels entry)
        for part in ("vectors", "payloads", "ids", "labels", "quantizer", "payload-index"):
            codec = ValueCodec(names[part])
            for pairs in self._chunks(names[part]):
                if part == "payloads":
                    with_payload.update(key for key, _ in pairs)
                elif part == "labels":
                    pairs = [(key, point_entry(value, key in with_payload)) for key, value in pairs]
                sealed = [(key, codec.seal(key, value)) for key, value in pairs]
                if part == "vectors":
                    state = _core.checksum64(state.to_bytes(8, "little")
                                             + b"".join(value[-CHECK_BYTES:] for _, value in sealed))
                self._put(names[part], sealed, dupdata=part == "payload-index")
                advance(len(pairs))
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
            advance(len(pairs))
        config.fingerprint = fingerprint

    def _advance(self, records: int) -> None:
        self._done += records
        self._progress(self._TASK, self._done, self._total)

    def _chunks(self, name: bytes) -> Iterator[Pairs]:
        if name not in self._databases:
            return
        source = self._databases[name][0]
        with self._source.begin() as txn:
            yield from in_chunks(txn.cursor(db=source), _CHUNK)  # dupsort: one pair per duplicate

    def _put(self, name: bytes, pairs: Pairs, dupdata: bool) -> None:
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
