"""Copying one collection, settings and points, into another database: what
collection backups and restores on the server are made of."""

from __future__ import annotations

import contextlib
from typing import Any, Dict

from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.config import CollectionSettings
from vecdb.database import Database
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError
from vecdb.text_in import DescribedEmbedding

_BATCH = 1000


def copy_collection(source: Database, name: str, target: DatabaseAPI, target_name: str) -> CollectionAPI:
    """Create ``target_name`` in ``target`` with the settings of ``name`` in
    ``source`` (index, quantization, MRL prefixes, payload indexes, text
    indexes with their settings, sparse vector names, the embedding
    function's config) and copy its points (sparse vectors and documents
    too), in insertion order,
    as of one committed state (read in one transaction while writers go
    on). If anything fails, the partial copy is dropped. The tuned plan is
    not copied: tune the copy again. ``target`` may be any backend (a
    cluster's database, say)."""
    described = _described(source, name)
    if "vectors" in described:
        raise InvalidArgumentError(f"collection {name!r} has named vectors; copying those is not supported yet")
    settings = CollectionSettings.from_dict(described)
    collection = source.get_collection(name)
    sparse_names = list(described.get("sparse") or [])
    copy = target.create_collection(target_name, settings.dim, settings.metric, index=settings.index,
                                    quantization=settings.quantization, mrl_dims=list(settings.mrl_dims) or None,
                                    rotate=settings.rotate, sparse=sparse_names or None,
                                    embedding=None if described.get("embedding") is None else
                                    DescribedEmbedding(described["embedding"], settings.dim))
    try:
        for field, kind in described["payload_indexes"].items():
            copy.create_payload_index(field, kind)
        for field, text_settings in described["text_indexes"].items():
            copy.create_text_index(field, **text_settings)
        # One read transaction (one committed state), closed at once if the copy fails.
        with contextlib.closing(collection._read_all(_BATCH)) as batches:
            for records in batches:
                sparse = {name: [(record.sparse or {}).get(name) for record in records] for name in sparse_names}
                documents = [record.document for record in records]
                copy.upsert([record.id for record in records], [record.vector for record in records],
                            [record.payload for record in records], sparse=sparse or None,
                            documents=documents if any(text is not None for text in documents) else None)
        return copy
    except BaseException:
        target.drop_collection(target_name)
        raise


def _described(database: Database, name: str) -> Dict[str, Any]:
    for entry in database.describe():
        if entry["name"] == name:
            return entry
    raise CollectionNotFoundError(f"collection {name!r} does not exist (the database has: "
                                  f"{', '.join(database.list_collections()) or 'none'})")
