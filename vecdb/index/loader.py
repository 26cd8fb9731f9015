"""Bringing a collection's in-memory indexes up to date with LMDB.

A collection keeps a main index (full dimension) and, with ``mrl_dims``, one
index per prefix size (see :mod:`vecdb.index.prefix_index`). On open, inside one
LMDB read transaction: each index whose snapshot can be used is loaded and
replays the labels the change log lists after the snapshot's sequence
(re-adding their current vectors, deleting the ones that are gone); the
rest (no snapshot, corrupt, too old for the log, count disagreeing with
LMDB) are rebuilt together in one pass over the stored vectors, reported to
the caller's :data:`~vecdb.progress.Progress` callback. Exact (flat) indexes of vectors always
load from LMDB: reading the vectors is all a rebuild does; PQ code scans are
snapshotted (their rebuild also encodes every vector).

Quantized collections (``vecdb.PQ``) search exactly until their codebooks
are trained; from then on the main index holds PQ codes made with the
codebooks stored in LMDB, and a snapshot made with other codebooks is not
used. Prefix indexes of a ``rotate="pca"`` collection exist once its
rotation is learned, and their snapshots are named by rotation version.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple, TypeVar, Union

import numpy as np

from vecdb.config import HNSW, CollectionConfig
from vecdb.errors import CorruptIndexError, CorruptRecordError
from vecdb.index.label_index import (
    CodeScanLabelIndex,
    ExactLabelIndex,
    GraphLabelIndex,
    LabelIndex,
    RerankingLabelIndex,
    SavedIndex,
    VectorReader,
    WrappedIndex,
    empty_label_index,
    empty_quantized_index,
)
from vecdb.native.pq import ProductQuantizer
from vecdb.index.prefix_index import IndexSet, PrefixLabelIndex
from vecdb.index.rotation import rotation_from_bytes
from vecdb.index.snapshot import (
    Owner,
    prefix_snapshot_path,
    prefix_snapshot_paths,
    read_snapshot,
    snapshot_path,
    write_snapshot,
)
from vecdb.progress import Progress, Task
from vecdb.storage.collection_store import CollectionStore
from vecdb.storage.environment import Environment

_CHUNK = 10_000
# Vectors read from LMDB per step of a rebuild: small enough that the read
# buffers (freed, but kept by the allocator) stay a few MB.
_READ_CHUNK = 2_048

Part = Union[LabelIndex, PrefixLabelIndex]
T = TypeVar("T")
SnapshotReader = Callable[[Path], Optional[Tuple[int, SavedIndex]]]


class LoadedIndex(NamedTuple):
    indexes: IndexSet
    sequence: int  # the change sequence the indexes reflect
    unsaved: int  # changes not in the snapshot files
    source: str  # of the main index: "snapshot", "snapshot+replay", "replay" (a refresh) or "rebuild"


def load_indexes(environment: Environment, folder: Path, store: CollectionStore, progress: Progress) -> LoadedIndex:
    """The collection's indexes, from their snapshots where they can be used
    (a rebuild reports to ``progress``)."""
    with environment.read() as txn:
        config = store.config(txn)
        codebooks = _model(config, lambda: store.codebooks(txn)) if config.quantizer_version else None
        quantizer = None if codebooks is None else _model(config, lambda: ProductQuantizer.from_bytes(codebooks))
        rotation = (_model(config, lambda: _rotation(config, store.rotation(txn)), rotation=True)
                    if config.prefixes_ready and config.rotate else None)
        prefix_dims = config.mrl_dims if config.prefixes_ready and (config.rotate is None or rotation is not None) else []
        vector_reader = _vector_reader(environment, store, config.dim)
        owner = snapshot_owner(environment, config)

        def read(path: Path) -> Optional[Tuple[int, SavedIndex]]:
            return read_snapshot(path, owner, config.index_spec, lambda at: store.fingerprint_at(txn, config, at),
                                 lambda at: _vectors_as_of(txn, store, config, at))

        main_snapshot = (_main_from_snapshot(read, folder, config, codebooks, vector_reader)
                         if isinstance(config.index_spec, HNSW) or quantizer is not None else None)
        prefix_snapshots = {dims: _prefix_from_snapshot(read, folder, config, dims, rotation) for dims in prefix_dims}
        snapshots: List[Tuple[object, Optional[Tuple[Part, int]]]] = [("main", main_snapshot),
                                                                       *prefix_snapshots.items()]
        by_sequence: Dict[int, Dict[object, Part]] = {}  # snapshots saved together replay together
        for name, snapshot in snapshots:
            if snapshot is not None:
                by_sequence.setdefault(snapshot[1], {})[name] = snapshot[0]
        usable: Set[object] = set()
        unsaved, count = 0, store.count(txn)
        for sequence, parts in by_sequence.items():
            changes = _catch_up(txn, store, config, list(parts.values()), sequence)
            if changes is not None:  # else rebuilt below, as is a part whose count disagrees with LMDB
                usable.update(name for name, part in parts.items() if len(part) == count)
                unsaved = max(unsaved, changes)
        main_index = main_snapshot[0] if main_snapshot is not None and "main" in usable else None
        prefix_indexes = {dims: snapshot[0] for dims, snapshot in prefix_snapshots.items()
                          if snapshot is not None and dims in usable}
        source = ("snapshot+replay" if unsaved else "snapshot") if main_index is not None else "rebuild"
        missing: List[Part] = []
        if main_index is None:
            main_index = empty_index(config, quantizer, vector_reader)
            missing.append(main_index)
        for dims in prefix_dims:
            if dims not in prefix_indexes:
                prefix_indexes[dims] = PrefixLabelIndex.empty(dims, config.metric, config.index_spec, rotation)
                missing.append(prefix_indexes[dims])
        if missing:
            _warn_of_rebuild(folder, config, missing, store.count(txn))
            unsaved = max(unsaved, _fill(txn, store, config, missing, progress))
        indexes = IndexSet(main_index, prefix_indexes, config.rotation_version)
        return LoadedIndex(indexes, config.sequence, unsaved, source)


def empty_index(config: CollectionConfig, quantizer: Optional[ProductQuantizer],
                vector_reader: VectorReader) -> LabelIndex:
    """An empty main index for the collection: of vectors, searched exactly
    while a quantized collection waits for its codebooks, or of PQ codes."""
    pq = config.pq
    if pq is None:
        return empty_label_index(config.dim, config.metric, config.index_spec)
    if quantizer is None:
        return ExactLabelIndex(config.dim, config.metric)
    return empty_quantized_index(config.dim, config.metric, config.index_spec, quantizer, pq.rerank,
                                 vector_reader, config.quantizer_version)


def build_main_index(environment: Environment, store: CollectionStore, config: CollectionConfig,
                     quantizer: Optional[ProductQuantizer], progress: Progress) -> LabelIndex:
    """A new main index of every stored vector (the writer calls this with
    its write lock held: it reflects the collection's current sequence);
    the work is reported to ``progress``."""
    index = empty_index(config, quantizer, _vector_reader(environment, store, config.dim))
    with environment.read() as txn:
        store.config(txn)
        _fill(txn, store, config, [index], progress)
    return index


def build_prefix_indexes(environment: Environment, store: CollectionStore, config: CollectionConfig,
                         rotation: Optional[np.ndarray], progress: Progress) -> Dict[int, PrefixLabelIndex]:
    """New prefix indexes of every stored vector (as build_main_index)."""
    prefixes = {dims: PrefixLabelIndex.empty(dims, config.metric, config.index_spec, rotation)
                for dims in config.mrl_dims}
    with environment.read() as txn:
        store.config(txn)
        _fill(txn, store, config, list(prefixes.values()), progress)
    return prefixes


def catch_up_or_reload(environment: Environment, folder: Path, store: CollectionStore, indexes: IndexSet,
                       sequence: int, progress: Progress) -> LoadedIndex:
    """Apply changes committed since ``sequence`` to ``indexes`` (in place),
    or load afresh when the change log no longer reaches back that far or
    the codebooks or rotation changed."""
    with environment.read() as txn:
        config = store.config(txn)
        same_models = (config.quantizer_version == indexes.quantizer_version
                       and config.rotation_version == indexes.rotation_version)
        if same_models:
            changes = _catch_up(txn, store, config, indexes.parts, sequence)
            if changes is not None and all(len(part) == store.count(txn) for part in indexes.parts):
                return LoadedIndex(indexes, config.sequence, changes, "replay")
    return load_indexes(environment, folder, store, progress)


def save_snapshots(environment: Environment, folder: Path, store: CollectionStore, config: CollectionConfig,
                   indexes: IndexSet, sequence: int) -> None:
    """Write a snapshot of each index that keeps one, stamped with
    ``sequence`` (which they must reflect exactly) and the collection's
    fingerprint then, remove prefix snapshots of other rotations, then drop
    the change log they cover."""
    with environment.read() as txn:
        fingerprint = store.fingerprint_at(txn, store.config(txn), sequence)
    if fingerprint is None:  # the log no longer reaches back to the indexes' state: nothing to stamp
        return
    owner = snapshot_owner(environment, config)
    for dims, prefix in indexes.prefixes.items():
        saved_prefix = _saved_form(prefix)
        if saved_prefix is not None:
            write_snapshot(prefix_snapshot_path(folder, config.key, dims, indexes.rotation_version), owner,
                           sequence, fingerprint, saved_prefix)
    saved_main = _saved_form(indexes.main)
    if saved_main is not None:
        write_snapshot(snapshot_path(folder, config.key), owner, sequence, fingerprint, saved_main,
                       vectors_in_lmdb=isinstance(saved_main, GraphLabelIndex) and saved_main.quantizer is None)
    current = {prefix_snapshot_path(folder, config.key, dims, indexes.rotation_version)
               for dims in indexes.prefixes}
    for stale in prefix_snapshot_paths(folder, config.key):
        if stale not in current:
            stale.unlink(missing_ok=True)
    environment.write(lambda txn: store.truncate_log(txn, sequence))


def _saved_form(part: Part) -> Optional[SavedIndex]:
    """What the snapshot of ``part`` holds (None: it keeps none): the graph
    or code scan itself, taken out of its re-ranking or prefix wrapper, which
    _adopt_snapshot and _prefix_from_snapshot make anew on load."""
    inner = part.inner if isinstance(part, WrappedIndex) else part
    if part.snapshots and isinstance(inner, (GraphLabelIndex, CodeScanLabelIndex)):
        return inner
    return None


def _catch_up(txn, store: CollectionStore, config: CollectionConfig, parts: List[Part],
              sequence: int) -> Optional[int]:
    """Replay changes after ``sequence`` into each of ``parts`` (their
    vectors read once for all); the number of changed labels, or None if the
    log no longer reaches back that far. Callers check each part's count
    against LMDB's."""
    if sequence > config.sequence or sequence + 1 < config.log_start:
        return None
    changed = store.changed_since(txn, sequence)
    matrix, present = store.vectors_of(txn, changed, config.dim)
    for part in parts:
        if not present.all():
            part.delete(changed[~present])
        labels, rows = changed[present], matrix[present]
        for start in range(0, len(labels), _CHUNK):
            part.add(labels[start:start + _CHUNK], rows[start:start + _CHUNK])
    return len(changed)


def _fill(txn, store: CollectionStore, config: CollectionConfig, parts: List[Part], progress: Progress) -> int:
    """Add every stored vector to each of ``parts`` (one pass over LMDB)."""
    total, done = store.count(txn), 0
    task = Task(f"building the index of {config.label}", "vectors")
    progress(task, done, total)
    for labels, matrix in store.vector_chunks(txn, config.dim, _READ_CHUNK):
        for part in parts:
            part.add(labels, matrix)
        done += len(labels)
        progress(task, done, total)
    return total


def _vectors_as_of(txn, store: CollectionStore, config: CollectionConfig,
                   sequence: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """The stored vectors as they were after batch ``sequence``, in chunks,
    except those of points changed since (which _catch_up replaces or
    deletes): what a snapshot saved without its vectors is filled with."""
    changed = store.changed_since(txn, sequence)
    for labels, matrix in store.vector_chunks(txn, config.dim, _READ_CHUNK):
        if len(changed):
            unchanged = ~np.isin(labels, changed, assume_unique=True)
            labels, matrix = labels[unchanged], matrix[unchanged]
        yield labels, matrix


def snapshot_owner(environment: Environment, config: CollectionConfig) -> Owner:
    """Whose snapshots these are: the collection (its key) of this database (its id)."""
    return Owner(bytes.fromhex(environment.database_id or ""), config.key)


def _warn_of_rebuild(folder: Path, config: CollectionConfig, missing: List[Part], count: int) -> None:
    """Say so when an index that keeps snapshots is rebuilt from LMDB at open
    (after a crash before the first snapshot, a restore, or a snapshot that
    could not be used): at any size it is the slow path, and the reason
    matters (indexes rebuilt by design, exact ones, stay quiet)."""
    if count == 0 or not any(part.snapshots for part in missing):
        return
    reason = ("its snapshot could not be used (damaged, of another state or too old for the change log)"
              if snapshot_path(folder, config.key).exists() else "it has no snapshot yet")
    warnings.warn(f"collection {config.label}: rebuilding its index from the {count:,} stored vectors: {reason}",
                  RuntimeWarning, stacklevel=4)


def _main_from_snapshot(read: SnapshotReader, folder: Path, config: CollectionConfig, codebooks: Optional[bytes],
                        vector_reader: VectorReader) -> Optional[Tuple[LabelIndex, int]]:
    snapshot = read(snapshot_path(folder, config.key))
    if snapshot is None:
        return None
    sequence, saved = snapshot
    index = _adopt_snapshot(config, saved, codebooks, vector_reader)
    return None if index is None else (index, sequence)


def _prefix_from_snapshot(read: SnapshotReader, folder: Path, config: CollectionConfig, dims: int,
                          rotation: Optional[np.ndarray]) -> Optional[Tuple[PrefixLabelIndex, int]]:
    if not isinstance(config.index_spec, HNSW):
        return None  # exact prefixes are rebuilt: reading the vectors is the work
    snapshot = read(prefix_snapshot_path(folder, config.key, dims, config.rotation_version))
    if snapshot is None:
        return None
    sequence, saved = snapshot
    if not isinstance(saved, GraphLabelIndex) or saved.graph.dim != dims or saved.quantizer is not None:
        return None
    return PrefixLabelIndex(dims, saved, rotation), sequence


def _model(config: CollectionConfig, read: Callable[[], T], rotation: bool = False) -> Optional[T]:
    """A stored model (PQ codebooks or the PCA rotation), read by ``read``;
    if it is damaged (its checksum in LMDB, or its own format), None: the
    collection opens and searches exactly (without prefix indexes), and
    training again replaces it. Indexes are caches of LMDB; the points
    themselves are not touched by this damage."""
    try:
        return read()
    except (CorruptRecordError, CorruptIndexError) as exc:
        what, remedy = (("PCA rotation is", "searching without prefix indexes until Collection.learn_rotation() "
                         "learns a new one") if rotation else
                        ("PQ codebooks are", "searching exactly until Collection.train_quantizer() trains new ones"))
        warnings.warn(f"the {what} damaged in collection {config.label} ({exc}); {remedy}",
                      RuntimeWarning, stacklevel=3)
        return None


def _rotation(config: CollectionConfig, data: Optional[bytes]) -> Optional[np.ndarray]:
    """The stored PCA rotation (None: missing)."""
    return None if data is None else rotation_from_bytes(data, config.dim)


def _adopt_snapshot(config: CollectionConfig, saved: SavedIndex, codebooks: Optional[bytes],
                    vector_reader: VectorReader) -> Optional[LabelIndex]:
    """The snapshot's index as the collection's, if it was made with the
    codebooks LMDB holds (or, unquantized, is a graph of vectors)."""
    pq = config.pq
    if codebooks is None:
        return saved if isinstance(saved, GraphLabelIndex) and saved.quantizer is None and pq is None else None
    quantizer = saved.quantizer
    # Without PQ settings the collection is not quantized, whatever LMDB holds (as in empty_index).
    if pq is None or quantizer is None or quantizer.to_bytes() != codebooks:
        return None
    return RerankingLabelIndex(saved, config.metric, pq.rerank, vector_reader, config.quantizer_version)


def _vector_reader(environment: Environment, store: CollectionStore, dim: int) -> VectorReader:
    """Reads full vectors by label from LMDB (for re-ranking)."""
    def read(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        with environment.read() as txn:  # a search's own transaction, when one is open
            store.config(txn)
            return store.vectors_of(txn, labels, dim)
    return read
