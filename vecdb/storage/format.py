"""What a vecdb environment says about itself in its main database: the
storage format version and the database's identity.

- ``vecdb-format``: the storage format, stored bare (it says how everything
  else is stored). Format 3 seals every other value with a checksum
  (:mod:`vecdb.storage.codec`) and stores vectors in blocks
  (:mod:`vecdb.storage.vector_blocks`); format 2 stored one record per
  vector, format 1 (vecdb 0.1) stored values bare. Both are upgraded in
  place by the first writable open (:mod:`vecdb.storage.upgrade`).
- ``vecdb-database-id``: 16 random bytes drawn when the database is created
  (or upgraded from format 1). A copy of the folder shares it; snapshots and
  backup manifests carry it, so files of another database are never taken
  for this one's.
"""

from __future__ import annotations

import os
from typing import Optional

import lmdb

from vecdb.storage.codec import MAIN, DamagedValue
from vecdb.errors import CorruptRecordError

FORMAT_KEY = b"vecdb-format"
FORMAT_VERSION = b"3"
FORMAT_1 = b"1"
FORMAT_2 = b"2"
OLD_FORMATS = (FORMAT_1, FORMAT_2)  # what the first writable open upgrades
DATABASE_ID_KEY = b"vecdb-database-id"
MAX_NAMED_DATABASES = 4096  # LMDB named databases an environment is opened with


def new_database_id() -> bytes:
    return os.urandom(16)


def put_identity(txn: lmdb.Transaction[bytes], database_id: bytes) -> None:
    """Stamp the current format and ``database_id`` (a new database)."""
    txn.put(FORMAT_KEY, FORMAT_VERSION)
    txn.put(DATABASE_ID_KEY, MAIN.seal(DATABASE_ID_KEY, database_id))


def read_database_id(txn: lmdb.Transaction[bytes]) -> Optional[str]:
    """The database's id in hex (None only before it is stamped)."""
    try:
        stored = MAIN.open(DATABASE_ID_KEY, txn.get(DATABASE_ID_KEY))
    except DamagedValue:
        raise CorruptRecordError("the database's id (vecdb-database-id) is damaged; restore the database from a "
                                 "backup (vecdb restore)") from None
    return None if stored is None else bytes(stored).hex()
