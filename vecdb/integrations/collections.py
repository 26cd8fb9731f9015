"""What both framework adapters do with a database and a collection beyond
single calls: open the database a store is built on, and list the ids of
the points a filter matches (the frameworks' "delete everything" and
"get by filter" have no single vecdb call)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.errors import InvalidArgumentError
from vecdb.records import Record

# Points read per scroll page when listing a collection.
PAGE_SIZE = 1000


def open_database(database: Optional[DatabaseAPI] = None, path: Optional[Union[str, os.PathLike]] = None,
                  url: Optional[str] = None) -> Tuple[DatabaseAPI, bool]:
    """The database a store is built on: ``database`` itself, or one opened
    at ``path`` (embedded) or connected to at ``url`` (a ``vecdb serve``),
    exactly one of the three. Also returns whether it was opened here (the
    store then owns it and closes it)."""
    given = [name for name, value in (("database", database), ("path", path), ("url", url)) if value is not None]
    if len(given) != 1:
        raise InvalidArgumentError(f"give exactly one of database=, path= or url=, got {given or 'none'}")
    if database is not None:
        return database, False
    if path is not None:
        from vecdb.database import open as open_embedded  # the native core, only when a path asks for it

        return open_embedded(path), True
    from vecdb.client import connect

    return connect(str(url)), True


def scroll_all(collection: CollectionAPI, filter: Optional[Dict[str, Any]] = None, *, with_payload: bool = False,
               with_document: bool = False) -> List[Record]:
    """Every point ``filter`` matches (all with None), in insertion order."""
    records: List[Record] = []
    cursor: Optional[int] = None
    while True:
        page, cursor = collection.scroll(filter, limit=PAGE_SIZE, cursor=cursor, with_payload=with_payload,
                                         with_document=with_document)
        records.extend(page)
        if cursor is None:
            return records
