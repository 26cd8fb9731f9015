"""The embedded database: a folder holding collections.

    db = vecdb.open("./data")
    docs = db.create_collection("docs", dim=384, metric="cosine")
    ...
    db.close()                      # or: with vecdb.open("./data") as db: ...

One process at a time may open a folder for writing; any number may open it
with ``read_only=True`` alongside and see what was committed up to their
open or their last :meth:`Database.refresh`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from vecdb.api import DatabaseAPI
from vecdb.checks import positive_int
from vecdb.collection import DEFAULT_INDEX_BACKLOG, Collection
from vecdb.sparse import check_sparse_names
from vecdb.config import (HNSW, PQ, CollectionConfig, IndexSpec, VectorSpec, check_collection_name, check_vector_specs,
                          is_part_name, vector_part_name)
from vecdb.errors import (CollectionExistsError, CollectionNotFoundError, CorruptRecordError, InvalidArgumentError,
                          ReadOnlyError)
from vecdb.index.snapshot import collection_snapshot_paths, remove_abandoned_snapshots
from vecdb.named_vectors import NamedVectorsCollection, points_config
from vecdb.progress import Progress, terminal_bars
from vecdb.text_in import embedding_config, embedding_dim
from vecdb.storage.catalog import (
    config_key,
    create_databases,
    drop_collection,
    list_configs,
    read_config,
    remove_orphaned_databases,
    write_config,
)
from vecdb.storage.collection_store import describe_collections
from vecdb.storage.environment import ReadOnlyView, open_environment, release_environment
from vecdb.transfer.backup import create_backup

if TYPE_CHECKING:
    from vecdb.embeddings import EmbeddingFunction


class Database(DatabaseAPI):
    """An open database folder. Use :func:`vecdb.open`."""

    def __init__(self, path: Union[str, os.PathLike], *, read_only: bool = False,
                 progress: Progress = terminal_bars, index_backlog: int = DEFAULT_INDEX_BACKLOG,
                 _trains_itself: bool = True) -> None:
        self._index_backlog = positive_int(index_backlog, "index_backlog", 0)
        self.path = Path(path)
        self._trains_itself = _trains_itself  # False in a cluster's shards: see Collection
        self.read_only = read_only
        self._progress = progress
        self._shared_environment = open_environment(self.path, read_only, progress)
        self._environment = self._shared_environment
        if read_only and self._environment.writable:  # this process's writer opened it first
            self._environment = ReadOnlyView(self._shared_environment)
        if not read_only:
            try:
                self._remove_what_a_kill_left()
            except BaseException:
                release_environment(self._shared_environment)
                raise
        self._collections: Dict[str, Union[Collection, NamedVectorsCollection]] = {}
        self._lock = threading.Lock()
        self._closed = False
        # The last commit this handle is known to see (collections loaded
        # later see later ones): refresh() has nothing to do while it stays.
        self._refreshed_at = self._environment.seen_commit()

    def _remove_what_a_kill_left(self) -> None:
        """Delete named databases and snapshots no collection owns (a writer
        killed between two steps of a create or drop leaves them). Nothing is
        deleted while a collection's settings are damaged: which databases
        are its own is then unknown (they stay for a restore or a repair)."""
        try:
            with self._environment.read() as txn:
                configs = list_configs(txn)
        except CorruptRecordError:
            return
        parts = {vector_part_name(config.name, vector) for config in configs for vector in config.vectors}
        for config in configs:
            if is_part_name(config.name) and config.name not in parts:  # its collection's create or drop was cut short
                drop_collection(self._environment, config.name, config.key)
        configs = [config for config in configs if not is_part_name(config.name) or config.name in parts]
        remove_orphaned_databases(self._environment, {config.key for config in configs})
        remove_abandoned_snapshots(self.path, {config.key: config.rotation_version for config in configs})

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"vecdb.Database({str(self.path)!r}{mode})"

    def create_collection(
        self,
        name: str,
        dim: Optional[int] = None,
        metric: str = "cosine",
        *,
        index: Optional[IndexSpec] = None,
        quantization: Optional[PQ] = None,
        mrl_dims: Optional[Sequence[int]] = None,
        rotate: Optional[str] = None,
        sparse: Optional[Sequence[str]] = None,
        vectors: Optional[Dict[str, VectorSpec]] = None,
        embedding: Optional[EmbeddingFunction] = None,
        exist_ok: bool = False,
    ) -> Any:
        """Create a collection of ``dim``-dimensional vectors (or of points
        with several named vectors: ``vectors=``).

        Args:
            name: 1-128 letters, digits, ``-`` or ``_``.
            dim: vector dimension.
            metric: ``"cosine"`` (default), ``"ip"`` (dot product) or ``"l2"``.
            index: ``vecdb.HNSW(M=16, ef_construction=200)`` (the default) or
                ``vecdb.Flat()`` for exact search.
            quantization: ``vecdb.PQ(m=48, rerank=100)`` keeps PQ codes in
                memory instead of vectors (16-32x less RAM), re-ranking each
                search's shortlist with the full vectors from disk; trained
                automatically once the collection holds ``train_size`` vectors.
            mrl_dims: prefix sizes (each below ``dim``), e.g. ``[64, 128]``, for
                embeddings trained with Matryoshka representation learning
                (OpenAI text-embedding-3, Nomic, ...): an index over each
                prefix gives cheap shortlists that searches re-rank at full
                dimension (see :meth:`Collection.explain`).
            rotate: ``"pca"`` for models without MRL training: once the
                collection holds ``max(1024, 2 * dim)`` vectors a PCA rotation
                is learned and the prefixes are taken from rotated vectors.
            sparse: names of sparse vectors its points may have (SPLADE, BM42,
                ...), e.g. ``["splade"]``: each is searched by dot product
                on an inverted index (see :mod:`vecdb.sparse`).
            vectors: instead of ``dim`` and the settings above, several
                named vectors per point, each with its own settings and
                index: ``{"text": vecdb.VectorSpec(384), "image":
                vecdb.VectorSpec(512, "cosine", index=vecdb.Flat())}``; the
                first is the default of searches (see
                :class:`vecdb.named_vectors.NamedVectorsCollection`).
            embedding: text in: an embedding function (:mod:`vecdb.embeddings`,
                e.g. ``vecdb.embeddings.WordLlama()``) that embeds the
                documents of :meth:`Collection.add` and text queries
                (``search("...")``); ``dim`` may be left out (the function's).
                Its config is stored with the collection, so opening it
                again finds a ready-made function by itself.
            exist_ok: return the existing collection instead of raising
                CollectionExistsError (its settings must then match).
        """
        name = check_collection_name(name)
        if vectors is not None:
            if embedding is not None:
                raise InvalidArgumentError("a collection with named vectors takes no embedding function (yet): "
                                           "embed its vectors yourself")
            return self._create_named(name, dim, metric, index, quantization, mrl_dims, rotate, sparse, vectors,
                                      exist_ok)
        dim = embedding_dim(dim, embedding)
        if dim is None:
            raise InvalidArgumentError("create_collection needs dim (or vectors={name: vecdb.VectorSpec(dim)}, "
                                       "or embedding=...)")
        config = CollectionConfig.new(name, secrets.token_hex(8), dim, metric, index or HNSW(), quantization,
                                      mrl_dims, rotate)
        config.sparse = list(check_sparse_names(sparse))
        config.embedding = None if embedding is None else embedding_config(embedding)

        with self._lock:  # this process is the only writer: nothing else creates meanwhile
            with self._environment.read() as txn:
                existing = None if txn.get(config_key(name)) is None else read_config(txn, name)
            if existing is None:
                create_databases(self._environment, config.key)
                self._environment.write(lambda txn: write_config(txn, config))
        if existing is not None:
            if not exist_ok:
                raise CollectionExistsError(f"collection {name!r} already exists")
            if existing.settings != config.settings or existing.sparse != config.sparse:
                raise InvalidArgumentError(f"collection {name!r} exists with {_describe(existing)}; "
                                           f"asked for {_describe(config)}")
            return self.get_collection(name, embedding=embedding)
        try:
            return self.get_collection(name, embedding=embedding)
        except BaseException:  # its index cannot be built: do not leave it stored
            self.drop_collection(name)
            raise

    def _create_named(self, name: str, dim: Any, metric: Any, index: Any, quantization: Any, mrl_dims: Any,
                      rotate: Any, sparse: Any, vectors: Any, exist_ok: bool) -> NamedVectorsCollection:
        """create_collection(vectors=...): the vector parts first, the points
        part (which names them) last: a crash in between leaves parts no
        collection names, deleted at the next open."""
        if dim is not None or metric != "cosine" or index is not None or quantization is not None \
                or mrl_dims is not None or rotate is not None:
            raise InvalidArgumentError("with vectors=, each vector's dim, metric, index, quantization, mrl_dims "
                                       "and rotate go in its vecdb.VectorSpec")
        settings = check_vector_specs(vectors)
        points = points_config(name, secrets.token_hex(8), list(settings), check_sparse_names(sparse))
        with self._lock:
            with self._environment.read() as txn:
                existing = None if txn.get(config_key(name)) is None else read_config(txn, name)
                stored = {} if existing is None else {
                    vector: read_config(txn, vector_part_name(name, vector)).settings for vector in existing.vectors}
            if existing is None:
                parts = [CollectionConfig(name=vector_part_name(name, vector), key=secrets.token_hex(8),
                                          settings=vector_settings) for vector, vector_settings in settings.items()]
                for config in [*parts, points]:
                    create_databases(self._environment, config.key)
                    self._environment.write(functools.partial(write_config, config=config))
        if existing is not None:
            if not exist_ok:
                raise CollectionExistsError(f"collection {name!r} already exists")
            if stored != settings or existing.sparse != points.sparse:
                raise InvalidArgumentError(f"collection {name!r} exists with other settings")
        collection = self.get_collection(name)
        assert isinstance(collection, NamedVectorsCollection)
        return collection

    def get_or_create_collection(self, name: str, dim: Optional[int] = None, metric: str = "cosine", *,
                                 index: Optional[IndexSpec] = None, quantization: Optional[PQ] = None,
                                 mrl_dims: Optional[Sequence[int]] = None,
                                 rotate: Optional[str] = None, sparse: Optional[Sequence[str]] = None,
                                 vectors: Optional[Dict[str, VectorSpec]] = None,
                                 embedding: Optional[EmbeddingFunction] = None) -> Any:
        """:meth:`create_collection` with ``exist_ok=True``."""
        return self.create_collection(name, dim, metric, index=index, quantization=quantization, mrl_dims=mrl_dims,
                                      rotate=rotate, sparse=sparse, vectors=vectors, embedding=embedding,
                                      exist_ok=True)

    def get_collection(self, name: str, embedding: Optional[EmbeddingFunction] = None) -> Any:
        """An existing collection (its index is loaded on first use): a
        :class:`Collection`, or a
        :class:`~vecdb.named_vectors.NamedVectorsCollection` for one made
        with ``vectors=``. ``embedding``: the embedding function it was
        created with, when that is not a ready-made one (those are found
        by themselves)."""
        name = check_collection_name(name)
        with self._lock:
            collection = self._collections.get(name)
            if collection is None or not collection._is_current():
                collection = self._open_collection(name)
            if embedding is not None:
                collection._attach_embedding(collection._embedding_config, embedding)
            return collection

    def _open_collection(self, name: str) -> Union[Collection, NamedVectorsCollection]:
        """A new handle to collection ``name`` (under the lock); a stale one
        (its collection dropped, maybe created again, through another
        handle) is marked dropped."""
        stale = self._collections.get(name)
        if isinstance(stale, NamedVectorsCollection):
            stale._mark_dropped()
        elif stale is not None:
            stale._dropped = True
        with self._environment.read() as txn:
            config = read_config(txn, name)
            parts = [read_config(txn, vector_part_name(name, vector)) for vector in config.vectors]
        points = self._open(config)
        opened: Union[Collection, NamedVectorsCollection] = points if not parts else NamedVectorsCollection(
            points, {vector: self._open(part) for vector, part in zip(config.vectors, parts)})
        self._collections[name] = opened
        return opened

    def _open(self, config: CollectionConfig) -> Collection:
        return Collection(self._environment, self.path, config, self._progress, self._trains_itself,
                          self._index_backlog)

    def list_collections(self) -> List[str]:
        """Names of the collections, sorted."""
        with self._environment.read() as txn:
            return sorted(config.name for config in list_configs(txn) if not is_part_name(config.name))

    def describe(self) -> List[Dict[str, Any]]:
        """Every collection's settings and point count, read from LMDB without
        loading any index (cheap on any size; what ``vecdb info`` prints)."""
        return describe_collections(self._environment)

    def drop_collection(self, name: str) -> None:
        """Delete a collection and everything in it (its LMDB databases are
        freed for reuse; the file shrinks only with :meth:`compact`)."""
        name = check_collection_name(name)
        if not self._environment.writable:  # before the handle is marked dropped
            raise ReadOnlyError(f"{self.path} is open read-only; dropping a collection needs the writer")
        with self._lock:
            with self._environment.read() as txn:
                config = read_config(txn, name)
                parts = [read_config(txn, vector_part_name(name, vector)) for vector in config.vectors]
            collection = self._collections.pop(name, None)
            if parts:  # the points part first (the collection is gone), then its vectors' parts
                with collection._held_for_drop() if isinstance(collection, NamedVectorsCollection) \
                        else contextlib.nullcontext():
                    for part in [config, *parts]:
                        drop_collection(self._environment, part.name, part.key)
                        for snapshot in collection_snapshot_paths(self.path, part.key):
                            snapshot.unlink(missing_ok=True)
                return
            assert not isinstance(collection, NamedVectorsCollection)
            # After the write in flight through this handle, if any (it may
            # be writing a snapshot the drop must delete).
            with collection._write_lock if collection is not None else contextlib.nullcontext():
                if collection is not None:
                    collection._dropped = True
                    collection._stop_indexing()
                # Waits for this process's reads to finish; later reads through
                # a handle to it raise CollectionNotFoundError.
                drop_collection(self._environment, name, config.key)
                for snapshot in collection_snapshot_paths(self.path, config.key):
                    snapshot.unlink(missing_ok=True)

    def compact(self) -> int:
        """Rewrite the LMDB file without the space deleted points and dropped
        collections left free (LMDB reuses free pages but never shrinks its
        file); returns the bytes given back to the disk. Other processes must
        not have the folder open meanwhile (StorageLockedError names them).
        Collection indexes are compacted by :meth:`Collection.compact`."""
        with self._lock:
            return self._environment.compact()

    def backup(self, destination: Union[str, os.PathLike]) -> Path:
        """Write the whole database to one archive file and return its path.

        ``destination`` is the archive's path, or a folder to create
        ``vecdb-backup-<UTC time>.tar`` in: an existing one, or a path
        ending in a separator (``"./backups/"``, created if missing). An
        existing file is never overwritten. The archive holds one committed state even while
        writers keep writing, and works from read-only handles (``vecdb
        backup`` opens one). Indexes are not included: a restored database
        rebuilds them from the stored vectors when first opened. Restore
        with :func:`vecdb.transfer.backup.restore_backup` or ``vecdb restore``.
        """
        return create_backup(self._environment, destination)  # as given: a trailing '/' means a folder

    def _is_behind(self) -> bool:
        """Whether anything was committed to the folder since this handle
        last refreshed (or opened): a few microseconds, no transaction. (For
        a server's reader processes; not part of the database API.)"""
        return self._environment.last_commit() != self._refreshed_at

    def refresh(self) -> None:
        """Make this handle see everything committed so far (for read-only
        handles; a writer always sees its own writes). Cheap when nothing
        was committed since the last refresh (a few microseconds), so
        calling it before every read is fine."""
        if not self._is_behind():
            return
        with self._lock:
            commit = self._environment.seen_commit()  # before catching up: what follows sees at least this
            if commit == self._refreshed_at:  # another thread caught up meanwhile
                return
            for name, collection in list(self._collections.items()):
                try:
                    collection._refresh()
                except CollectionNotFoundError:
                    if isinstance(collection, NamedVectorsCollection):
                        collection._mark_dropped()
                    else:
                        collection._dropped = True
                    del self._collections[name]
            self._refreshed_at = commit

    def close(self) -> None:
        """Snapshot unsaved index changes and release the folder. Closing
        twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for collection in self._collections.values():
                    collection._close()
            finally:
                self._collections.clear()
                release_environment(self._shared_environment)


def open(path: Union[str, os.PathLike], *, read_only: bool = False,  # noqa: A001 - vecdb.open
         progress: Progress = terminal_bars, index_backlog: int = DEFAULT_INDEX_BACKLOG) -> Database:
    """Open the database in folder ``path`` (created if missing, unless
    ``read_only``).

    ``index_backlog``: how many upserted points each collection with a graph
    index may leave for its background indexer (searched exactly until
    indexed); past it an upsert indexes before it returns. 0: every upsert
    indexes its points (and trains what is due) before it returns.

    Long work (an index rebuilt from the stored vectors when a collection
    is loaded, the one-time upgrade of a vecdb 0.1 folder) reports to
    ``progress`` (see :mod:`vecdb.progress`): by default a bar on stderr
    when it is a terminal and the work takes over a second;
    ``vecdb.progress.silent`` shows nothing.

    Raises StorageLockedError at once if another process has the folder open
    for writing (open it ``read_only=True`` to read alongside).
    """
    return Database(path, read_only=read_only, progress=progress, index_backlog=index_backlog)


def _describe(config: CollectionConfig) -> str:
    return (f"dim={config.dim}, metric={config.metric!r}, index={config.index_spec}, quantization={config.pq}, "
            f"mrl_dims={list(config.mrl_dims)}, rotate={config.rotate!r}"
            + (f", sparse={config.sparse}" if config.sparse else ""))
