"""The catalog: which collections a database holds, their settings, and
the named LMDB databases each one owns.

A collection's settings and counters live in the main database under
``collection:<name>``; its records live in named databases
``<key>:<part>`` (``<key>`` is the collection's random hex key, see
:mod:`vecdb.storage.collection_store` for the parts).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Dict, List, Set, Tuple

import lmdb
import msgpack

from vecdb.config import CollectionConfig
from vecdb.errors import CollectionNotFoundError, CorruptRecordError
from vecdb.storage.codec import MAIN, DamagedValue

if TYPE_CHECKING:  # environments are passed in; importing the module would make a cycle with upgrade.py
    from vecdb.storage.environment import Environment

CONFIG_PREFIX = b"collection:"
# "text" (text indexes' terms) is created with new collections; collections
# made before text indexes existed get it with their first text index.
PARTS = ("vectors", "payloads", "ids", "labels", "changes", "payload-index", "quantizer", "text")
OPTIONAL_PARTS = frozenset({"text"})
_DATABASE_NAME = re.compile(rb"([0-9a-f]{16}):(" + b"|".join(part.encode() for part in PARTS) + rb")")
REMEDY = ("; restore the database from a backup (vecdb restore); `vecdb check PATH` lists every damaged point")


def config_key(name: str) -> bytes:
    return CONFIG_PREFIX + name.encode()


def read_config(txn: lmdb.Transaction[bytes], name: str) -> CollectionConfig:
    data = txn.get(config_key(name))
    if data is None:
        raise CollectionNotFoundError(f"collection {name!r} does not exist")
    return config_from(config_key(name), data)


def write_config(txn: lmdb.Transaction[bytes], config: CollectionConfig) -> None:
    key = config_key(config.name)
    txn.put(key, MAIN.seal(key, msgpack.packb(config.to_dict())))


def list_configs(txn: lmdb.Transaction[bytes]) -> List[CollectionConfig]:
    cursor = txn.cursor()
    configs = []
    if cursor.set_range(CONFIG_PREFIX):
        for key, value in cursor:
            if not key.startswith(CONFIG_PREFIX):
                break
            configs.append(config_from(key, value))
    return configs


def config_from(key: bytes, stored: bytes) -> CollectionConfig:
    name = key[len(CONFIG_PREFIX):].decode(errors="replace")
    try:
        return CollectionConfig.from_dict(msgpack.unpackb(MAIN.open(key, stored)))
    except (DamagedValue, ValueError, TypeError):  # msgpack's errors are ValueErrors
        raise CorruptRecordError(f"the settings of collection {name!r} are damaged{REMEDY}",
                                 collection=name) from None


def database_names(key: str) -> List[Tuple[bytes, bool]]:
    """The named databases of the collection with this key, as
    ``(name, dupsort)``."""
    return [(f"{key}:{part}".encode(), part == "payload-index") for part in PARTS]


def part_names(key: str) -> Dict[str, bytes]:
    """The named database of each part of the collection with this key."""
    return {part: name for part, (name, _) in zip(PARTS, database_names(key))}


def create_databases(environment: Environment, key: str) -> None:
    """Create the named databases of a new collection (before its config is
    written: a crash in between leaves databases no config names, which
    :func:`remove_orphaned_databases` deletes)."""
    environment.create_databases(database_names(key))


def drop_collection(environment: Environment, name: str, key: str) -> None:
    """Delete the collection's config and its named databases in one
    transaction (CollectionNotFoundError if that collection is gone)."""
    def body(txn: lmdb.Transaction[bytes]) -> None:
        config = read_config(txn, name)
        if config.key != key:
            raise CollectionNotFoundError(f"collection {name!r} was dropped")
        txn.delete(config_key(name))

    environment.drop_databases(database_names(key), body)


def remove_orphaned_databases(environment: Environment, live: Set[str]) -> int:
    """Delete named databases that belong to none of the collections whose
    keys are ``live`` (left by a crash between creating a collection's
    databases and writing its config, or by older versions, which re-created
    dropped collections' databases on a stale lookup); returns how many.
    Call with the writer handle."""
    names = environment.database_names()
    orphans = []
    for name in names:
        match = _DATABASE_NAME.fullmatch(name)
        if match is not None and match.group(1).decode() not in live:
            orphans.append((name, match.group(2) == b"payload-index"))
    if orphans:
        environment.drop_databases(orphans, lambda txn: None)
    return len(orphans)
