"""A collection's inverted indexes (text by field, sparse vectors by name)
saved beside the LMDB environment, so reopening does not read and decode
every point's stored terms again (50,000 texts: ~1 s of Python; loading
the snapshot: the native index rebuilt from one buffer), then brought up
to date as the vector indexes are.

One file per collection, ``snapshots/<key>.terms``: the checked header of
:class:`~vecdb.index.framing.Frame` (magic, version, the change sequence
the indexes reflect, the collection's key, the database's id and the
collection's fingerprint at that sequence) followed by a sealed msgpack map
``{"text": {field: [settings, index bytes]}, "sparse": {name: index
bytes}}``, each index in ``InvertedIndex.to_bytes()``'s checksummed form.
Written atomically; a snapshot of another collection, database or state
(fingerprint), or one the change log no longer reaches back to, is not
used. Loading takes each index the snapshot holds with the same settings,
replays the points the change log lists after its sequence (their terms
read from LMDB again, the gone ones removed) and builds the others from
LMDB, all in the caller's read transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import msgpack

from vecdb import _core
from vecdb._files import write_atomically
from vecdb.config import CollectionConfig
from vecdb.errors import CorruptIndexError, VecdbError
from vecdb.index.framing import Frame
from vecdb.index.snapshot import SNAPSHOT_FOLDER, TERMS_SUFFIX, Owner, owned_sequence
from vecdb.index.term_indexes import TermIndexes
from vecdb.storage.collection_store import CollectionStore
from vecdb.text.settings import TextIndexSettings

# After magic and version: sequence, collection key (16 hex digits), database id, fingerprint; then a CRC-32.
_HEADER = Frame("text index snapshot", b"VDBTERMS", 1, "Q16s16sQ")
_BODY = Frame("text index snapshot body", b"VDBTERM1", 1, "Q")  # the msgpack map's length


def term_snapshot_path(folder: Path, key: str) -> Path:
    return folder / SNAPSHOT_FOLDER / f"{key}{TERMS_SUFFIX}"


def save_term_snapshot(folder: Path, owner: Owner, sequence: int, fingerprint: int, terms: TermIndexes) -> None:
    """Save ``terms``, which reflect the collection's state after batch
    ``sequence`` (whose fingerprint is ``fingerprint``)."""
    body = msgpack.packb({"text": {field: [index.settings.to_dict(), index.index.to_bytes()]
                                   for field, index in terms.by_field.items()},
                          "sparse": {name: index.index.to_bytes() for name, index in terms.by_sparse.items()}})
    path = term_snapshot_path(folder, owner.key)
    path.parent.mkdir(exist_ok=True)
    header = _HEADER.header((sequence, owner.packed_key(), owner.database_id, fingerprint))
    write_atomically(path, lambda handle: (handle.write(header), handle.write(_BODY.seal((len(body),), body))))


def load_term_indexes(txn: Any, store: CollectionStore, config: CollectionConfig, folder: Path,
                      owner: Owner) -> Tuple[TermIndexes, bool]:
    """The collection's inverted indexes as of ``txn``'s state (``config``
    read in it), and whether any came from the snapshot."""
    terms = TermIndexes({field: TextIndexSettings.from_dict(settings)
                         for field, settings in config.text_indexes.items()}, config.sparse)
    saved = _read(term_snapshot_path(folder, owner.key), owner,
                  lambda sequence: store.fingerprint_at(txn, config, sequence)) if (
        terms.by_field or terms.by_sparse) else None
    sequence, text, sparse = saved if saved is not None else (0, {}, {})
    changed = store.changed_since(txn, sequence).tolist() if saved is not None else []
    loaded = False
    for field, index in terms.by_field.items():
        stored = text.get(field)
        if stored is not None and stored[0] == index.settings.to_dict():
            index.index, loaded = stored[1], True
            index.set(changed, store.text_terms_of(txn, field, changed))
        else:
            for labels, analyzed in store.text_terms(txn, field):
                index.set(labels, analyzed)
    for name, sparse_index in terms.by_sparse.items():
        if name in sparse:
            sparse_index.index, loaded = sparse[name], True
            sparse_index.set(changed, store.sparse_vectors_of(txn, name, changed))
        else:
            for labels, vectors in store.sparse_vectors(txn, name):
                sparse_index.set(labels, vectors)
    return terms, loaded


def _read(path: Path, owner: Owner, fingerprint_at: Any) -> Optional[Tuple[int, Dict[str, Any], Dict[str, Any]]]:
    """``(sequence, {field: (settings, index)}, {name: index})`` from a
    usable snapshot, or None (the reason does not matter: the caller builds
    from LMDB)."""
    try:
        with open(path, "rb") as handle:
            sequence = owned_sequence(_HEADER, handle, owner, fingerprint_at)
            if sequence is None:
                return None
            _, body = _BODY.unseal(handle.read(), lambda fields: fields[0])
        saved = msgpack.unpackb(body)
        text = {field: (settings, _core.InvertedIndex.from_bytes(data))
                for field, (settings, data) in saved["text"].items()}
        sparse = {name: _core.InvertedIndex.from_bytes(data) for name, data in saved["sparse"].items()}
        return sequence, text, sparse
    except (OSError, CorruptIndexError, VecdbError, ValueError, KeyError, TypeError, msgpack.UnpackException):
        return None
