"""Bringing a collection's in-memory index up to date with LMDB.

On open: load the snapshot, then replay the labels the change log lists
after the snapshot's sequence (re-adding their current vectors, deleting
the ones that are gone). A missing, corrupt or too-old snapshot (the log no
longer reaches back to it), or one whose count disagrees with LMDB, is
replaced by a rebuild from the stored vectors, with a progress bar when it
takes a while. Exact (flat) collections of vectors always load from LMDB:
reading the vectors is all a rebuild does; PQ code scans are snapshotted
(their rebuild also encodes every vector).

Quantized collections (``vecdb.PQ``) search exactly until their codebooks
are trained; from then on the index holds PQ codes made with the codebooks
stored in LMDB, and a snapshot made with other codebooks is not used.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np

from vecdb.config import HNSW, CollectionConfig
from vecdb.errors import CorruptIndexError
from vecdb.label_index import (
    CodeScanLabelIndex,
    ExactLabelIndex,
    GraphLabelIndex,
    LabelIndex,
    RerankingLabelIndex,
    VectorReader,
    empty_label_index,
    empty_quantized_index,
)
from vecdb.pq import ProductQuantizer
from vecdb.snapshot import read_snapshot, snapshot_path, write_snapshot
from vecdb.storage.collection_store import CollectionStore, read_config
from vecdb.storage.environment import Environment

from tqdm import tqdm

_CHUNK = 10_000
# Vectors read from LMDB per step of a rebuild: small enough that the read
# buffers (freed, but kept by the allocator) stay a few MB.
_READ_CHUNK = 2_048
_PROGRESS_FROM = 50_000  # show a progress bar from this many vectors (on a terminal)


class LoadedIndex(NamedTuple):
    index: LabelIndex
    sequence: int  # the change sequence the index reflects
    unsaved: int  # changes not in the snapshot file
    source: str  # "snapshot", "snapshot+replay", "replay" (a refresh) or "rebuild"


def load_label_index(environment: Environment, folder: Path, store: CollectionStore,
                     config: CollectionConfig) -> LoadedIndex:
    """The collection's index, from its snapshot when it can be used."""
    with environment.read() as txn:
        config = read_config(txn, store.name)
        codebooks = store.codebooks(txn) if config.quantizer_version else None
    spec = config.index_spec
    if isinstance(spec, HNSW) or codebooks is not None:  # a graph, or PQ codes
        snapshot = read_snapshot(snapshot_path(folder, config.key), config.key, spec)
        if snapshot is not None:
            sequence, saved = snapshot
            index = _adopt_snapshot(environment, store, config, saved, codebooks)
            caught_up = None if index is None else _catch_up(environment, store, index, sequence)
            if caught_up is not None:
                return LoadedIndex(index, caught_up[0], caught_up[1],
                                   "snapshot+replay" if caught_up[1] else "snapshot")
    return _rebuild(environment, store, config, codebooks)


def empty_index(environment: Environment, store: CollectionStore, config: CollectionConfig,
                quantizer: Optional[ProductQuantizer]) -> LabelIndex:
    """An empty index for the collection: of vectors, searched exactly while
    a quantized collection waits for its codebooks, or of PQ codes."""
    pq = config.pq
    if pq is None:
        return empty_label_index(config.dim, config.metric, config.index_spec)
    if quantizer is None:
        return ExactLabelIndex(config.dim, config.metric)
    return empty_quantized_index(config.dim, config.metric, config.index_spec, quantizer, pq.rerank,
                                 _vector_reader(environment, store, config.dim), config.quantizer_version)


def build_index(environment: Environment, store: CollectionStore, config: CollectionConfig,
                quantizer: Optional[ProductQuantizer]) -> LoadedIndex:
    """A new index of every stored vector (read from LMDB in chunks)."""
    index = empty_index(environment, store, config, quantizer)
    with environment.read() as txn:
        sequence = read_config(txn, store.name).sequence
        total = store.count(txn)
        with tqdm(total=total, desc=f"building the index of {config.name!r}", unit=" vectors",
                  disable=None if total >= _PROGRESS_FROM else True) as progress:
            for labels, matrix in store.vector_chunks(txn, config.dim, _READ_CHUNK):
                index.add(labels, matrix)
                progress.update(len(labels))
    return LoadedIndex(index, sequence, total, "rebuild")


def catch_up_or_reload(environment: Environment, folder: Path, store: CollectionStore,
                       index: LabelIndex, sequence: int) -> LoadedIndex:
    """Apply changes committed since ``sequence`` to ``index`` (in place), or
    load afresh when the change log no longer reaches back that far or the
    codebooks changed."""
    with environment.read() as txn:
        config = read_config(txn, store.name)
    if config.quantizer_version == index.quantizer_version:
        caught_up = _catch_up(environment, store, index, sequence)
        if caught_up is not None:
            return LoadedIndex(index, caught_up[0], caught_up[1], "replay")
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
        labels, matrix = changed[present], np.stack([v for v in vectors if v is not None])
        for start in range(0, len(labels), _CHUNK):
            index.add(labels[start:start + _CHUNK], matrix[start:start + _CHUNK])
    if len(index) != expected:
        return None
    return config.sequence, len(changed)


def _rebuild(environment: Environment, store: CollectionStore, config: CollectionConfig,
             codebooks: Optional[bytes]) -> LoadedIndex:
    return build_index(environment, store, config, None if codebooks is None else _quantizer(config, codebooks))


def _quantizer(config: CollectionConfig, codebooks: bytes) -> Optional[ProductQuantizer]:
    """The stored codebooks; if they are damaged, None: the collection opens
    and searches exactly, and train_quantizer() can replace them."""
    try:
        return ProductQuantizer.from_bytes(codebooks)
    except CorruptIndexError as exc:
        warnings.warn(f"the PQ codebooks of collection {config.name!r} in LMDB are damaged ({exc}); searching "
                      "exactly until Collection.train_quantizer() trains new ones", RuntimeWarning, stacklevel=2)
        return None


def _adopt_snapshot(environment: Environment, store: CollectionStore, config: CollectionConfig,
                    saved: Union[GraphLabelIndex, CodeScanLabelIndex], codebooks: Optional[bytes]) -> Optional[LabelIndex]:
    """The snapshot's index as the collection's, if it was made with the
    codebooks LMDB holds (or, unquantized, holds vectors)."""
    quantizer = saved.quantizer
    if codebooks is None:
        return saved if quantizer is None and config.pq is None else None
    if quantizer is None or quantizer.to_bytes() != codebooks:
        return None
    return RerankingLabelIndex(saved, config.metric, config.pq.rerank, _vector_reader(environment, store, config.dim),
                               config.quantizer_version)


def _vector_reader(environment: Environment, store: CollectionStore, dim: int) -> VectorReader:
    """Reads full vectors by label from LMDB (for re-ranking)."""
    def read(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        with environment.read() as txn:
            return store.vectors_of(txn, labels, dim)
    return read
