"""Vectors in request bodies, decoded for the vector they are for: a
query for the named vector ``using`` picks (None: the default), and an
upsert's vectors, one batch or ``{name: vectors}``. MessagePack's float32
bytes need the dimension of that vector to be read (see
:func:`vecdb.wire.vectors_from_wire`); everything else about them is
checked by the collection, as in process."""

from __future__ import annotations

from typing import Any, Optional

from vecdb.api import CollectionAPI
from vecdb.wire import vectors_from_wire


def vector_dim(collection: CollectionAPI, using: Any) -> Optional[int]:
    """The dimension of the vector ``using`` names (None: the default);
    None when the collection has no such vector (it refuses the name
    before reading any vector)."""
    if using is None:
        return collection.dim
    spec = collection.vectors.get(using) if isinstance(using, str) else None
    return None if spec is None else spec.dim


def upsert_vectors(collection: CollectionAPI, value: Any) -> Any:
    """An upsert's ``vectors`` as sent: one batch for a collection of one
    vector, or ``{name: vectors}`` for one with named vectors (a name it
    lacks goes on as sent, for the collection to refuse)."""
    if not isinstance(value, dict):
        return vectors_from_wire(value, collection.dim, batch=True)
    specs = collection.vectors
    return {name: _named_batch(vectors, specs[name].dim) if name in specs else vectors
            for name, vectors in value.items()}


def _named_batch(value: Any, dim: int) -> Any:
    """One name's vectors: a batch (a list of vectors, or float32 bytes),
    or a list with a vector (a list or float32 bytes) or null per id."""
    if isinstance(value, list) and any(entry is None or isinstance(entry, (bytes, bytearray)) for entry in value):
        return [vectors_from_wire(entry, dim, batch=False) if isinstance(entry, (bytes, bytearray)) else entry
                for entry in value]
    return vectors_from_wire(value, dim, batch=True)
