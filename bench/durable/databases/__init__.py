"""The databases the durable benchmark can drive, by name (``--systems``)."""

from __future__ import annotations

from typing import Dict

from bench.durable.databases.base import DurableDatabase
from bench.durable.databases.chroma_persistent import CHROMA
from bench.durable.databases.lancedb_table import LANCE
from bench.durable.databases.qdrant_local import QDRANT
from bench.durable.databases.vecdb_collection import VECDB_COLLECTION, VECDB_FLAT_PQ, VECDB_NATIVE, VECDB_PQ

DATABASES: Dict[str, DurableDatabase] = {
    database.name: database
    for database in (VECDB_COLLECTION, VECDB_NATIVE, CHROMA, QDRANT, LANCE, VECDB_PQ, VECDB_FLAT_PQ)
}

__all__ = ["DATABASES", "DurableDatabase"]
