"""Bringing a collection's in-memory index up to date with LMDB.

On open: load the snapshot, then replay the labels the change log lists
after the snapshot's sequence (re-adding their current vectors, deleting
the ones that are gone). A missing, corrupt or too-old snapshot (the log no
longer reaches back to it), or one whose count disagrees with LMDB, is
replaced by a rebuild from the stored vectors, with a progress bar when it
takes a while. Exact (flat) collections always load from LMDB: reading the
vectors is all a rebuild does.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Optional, Tuple

import numpy as np

from vecdb.config import HNSW, CollectionConfig
from vecdb.label_index import LabelIndex, empty_label_index
from vecdb.snapshot import read_snapshot, snapshot_path, write_snapshot
from vecdb.storage.collection_store import CollectionStore, read_config
from vecdb.storage.environment import Environment

from tqdm import tqdm

_CHUNK = 10_000
_PROGRESS_FROM = 50_000  # show a progress bar from this many vectors (on a terminal)


class LoadedIndex(NamedTuple):
    index: LabelIndex
    sequence: int  # the change sequence the index reflects
    unsaved: int  # changes not in the snapshot file
    source: str  # "snapshot", "snapshot+replay", "replay" (a refresh) or "rebuild"


def load_label_index(environment: Environment, folder: Path, store: CollectionStore,
                     config: CollectionConfig) -> LoadedIndex:
    """The collection's index, from its snapshot when it can be used."""
    spec = config.index_spec
    if isinstance(spec, HNSW):
        snapshot = read_snapshot(snapshot_path(folder, config.key), config.key, spec)
        if snapshot is not None:
            sequence, index = snapshot
            caught_up = _catch_up(environment, store, index, sequence)
            if caught_up is not None:
                return LoadedIndex(index, caught_up[0], caught_up[1],
                                   "snapshot+replay" if caught_up[1] else "snapshot")
    return _rebuild(environment, store, config)


def catch_up_or_reload(environment: Environment, folder: Path, store: CollectionStore,
                       index: LabelIndex, sequence: int) -> LoadedIndex:
    """Apply changes committed since ``sequence`` to ``index`` (in place), or
    load afresh when the change log no longer reaches back that far."""
    caught_up = _catch_up(environment, store, index, sequence)
    if caught_up is not None:
        return LoadedIndex(index, caught_up[0], caught_up[1], "replay")
    with environment.read() as txn:
        config = read_config(txn, store.name)
    return load_label_index(environment, folder, store, config)


def save_snapshot(environment: Environment, folder: Path, store: CollectionStore, config: CollectionConfig,
                  index: LabelIndex, sequence: int) -> None:
    """Write the index's snapshot stamped with ``sequence`` (which it must
    reflect exactly), then drop the change log it covers."""
    write_snapshot(snapshot_path(folder, config.key), config.key, sequence, index)
    environment.write(lambda txn: store.truncate_log(txn, sequence))


def _catch_up(environment: Environment, store: CollectionStore, index: LabelIndex,
              sequence: int) -> Optional[Tuple[int, int]]:
    with environment.read() as txn:
        config = read_config(txn, store.name)
        if sequence > config.sequence or sequence + 1 < config.log_start:
            return None
        changed = store.changed_since(txn, sequence)
        vectors = [store.vector_of(txn, int(label)) for label in changed]
        expected = store.count(txn)
    present = np.array([vector is not None for vector in vectors], dtype=bool)
    if not present.all():
        index.delete(changed[~present])
    if present.any():
        _add_in_chunks(index, changed[present], np.stack([v for v in vectors if v is not None]), "replaying changes")
    if len(index) != expected:
        return None
    return config.sequence, len(changed)


def _rebuild(environment: Environment, store: CollectionStore,
             config: CollectionConfig) -> LoadedIndex:
    with environment.read() as txn:
        config = read_config(txn, store.name)
        labels, matrix = store.all_vectors(txn, config.dim)
    index = empty_label_index(config.dim, config.metric, config.index_spec)
    _add_in_chunks(index, labels, matrix, f"building the index of {config.name!r}")
    return LoadedIndex(index, config.sequence, len(labels), "rebuild")


def _add_in_chunks(index: LabelIndex, labels: np.ndarray, matrix: np.ndarray, what: str) -> None:
    starts = range(0, len(labels), _CHUNK)
    if len(labels) >= _PROGRESS_FROM:
        starts = tqdm(starts, desc=what, unit_scale=_CHUNK, unit=" vectors", disable=None)
    for start in starts:
        index.add(labels[start:start + _CHUNK], matrix[start:start + _CHUNK])
