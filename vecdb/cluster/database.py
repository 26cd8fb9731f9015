"""A cluster database: named collections whose points are spread over
shards, each an embedded database served by a Ray actor on its node.

    db = vecdb.cluster.open("/data/vecdb", shards=4)         # a local Ray
    db = vecdb.cluster.open("/data/vecdb", address="auto")  # the running one
    docs = db.create_collection("docs", dim=384)
    docs.upsert(ids, vectors, payloads)
    hits = docs.search(query, k=10, filter={"lang": "en"})

``path`` holds the catalog (``cluster.json``: the shard map) and each
shard's folder (``shard-003/``, on the node the shard runs on). Every
collection exists on every shard, with the same settings (a collection
with named vectors too: ``create_collection(name, vectors={...})``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from vecdb.api import DatabaseAPI
from vecdb.cluster import actors
from vecdb.checks import positive_int
from vecdb.cluster.backup import backup_cluster
from vecdb.cluster.catalog import ClusterCatalog, read_catalog, write_catalog
from vecdb.cluster.collection import ClusterCollection
from vecdb.collection import DEFAULT_INDEX_BACKLOG
from vecdb.config import HNSW, PQ, CollectionSettings, IndexSpec, VectorSpec, check_collection_name, check_vector_specs
from vecdb.errors import (
    ClosedError,
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidArgumentError,
    ShardUnavailableError,
)
from vecdb.sparse import check_sparse_names
from vecdb.text_in import embedding_config, embedding_dim

if TYPE_CHECKING:
    from vecdb.embeddings import EmbeddingFunction

# Shards of a new cluster when open() is not told.
DEFAULT_SHARDS = 2


class ClusterDatabase(DatabaseAPI):
    """A database spread over a Ray cluster's shards. Use
    :func:`vecdb.cluster.open`."""

    def __init__(self, path: Path, catalog: ClusterCatalog, shards: actors.ShardSet,
                 allow_partial: bool = False) -> None:
        self.path = path
        self.shards = catalog.shards  # how many shards hold each collection's points
        # Searches answer from the shards that answer (their results' missing_shards names the others).
        self.allow_partial = allow_partial
        self._catalog = catalog
        self._shard_set = shards
        self._collections: Dict[str, ClusterCollection] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> "ClusterDatabase":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"vecdb.cluster.ClusterDatabase({str(self.path)!r}, shards={self.shards})"

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
    ) -> ClusterCollection:
        """See :meth:`vecdb.Database.create_collection`: the collection is
        created on every shard. A create interrupted part-way (a shard
        unavailable) is completed by the next one; one a shard refuses (it
        holds another collection of that name) is dropped again from the
        shards that made it."""
        name = check_collection_name(name)
        if vectors is not None and embedding is not None:
            raise InvalidArgumentError("a collection with named vectors takes no embedding function (yet): "
                                       "embed its vectors yourself")
        settings = _shard_settings(embedding_dim(dim, embedding), metric, index, quantization, mrl_dims, rotate,
                                   vectors)
        names = list(check_sparse_names(sparse))
        if embedding is not None:
            settings["embedding"] = embedding_config(embedding)
        with self._lock:
            self._check_open()
            existing = self._keys_of(name)
            if len(existing) == self.shards and not exist_ok:
                raise CollectionExistsError(f"collection {name!r} already exists")
            try:
                keys = self._on_shards("create", name, {**settings, "sparse": names})
            except ShardUnavailableError:
                raise  # the shards that made it keep it: the next create completes it
            except BaseException:
                self._on_shards("drop", name, shards=[shard for shard in range(self.shards) if shard not in existing])
                raise
            return self._with_embedding(self._handle(name, [keys[shard] for shard in range(self.shards)]), embedding)

    def get_or_create_collection(self, name: str, dim: Optional[int] = None, metric: str = "cosine", *,
                                 index: Optional[IndexSpec] = None, quantization: Optional[PQ] = None,
                                 mrl_dims: Optional[Sequence[int]] = None,
                                 rotate: Optional[str] = None,
                                 sparse: Optional[Sequence[str]] = None,
                                 vectors: Optional[Dict[str, VectorSpec]] = None,
                                 embedding: Optional[EmbeddingFunction] = None) -> ClusterCollection:
        """:meth:`create_collection` with ``exist_ok=True``."""
        return self.create_collection(name, dim, metric, index=index, quantization=quantization, mrl_dims=mrl_dims,
                                      rotate=rotate, sparse=sparse, vectors=vectors, embedding=embedding,
                                      exist_ok=True)

    def get_collection(self, name: str, embedding: Optional[EmbeddingFunction] = None) -> ClusterCollection:
        """An existing collection: one on every shard (``embedding``: see
        :meth:`vecdb.Database.get_collection`)."""
        name = check_collection_name(name)
        with self._lock:
            self._check_open()
            keys = self._keys_of(name)
            if len(keys) < self.shards:
                raise CollectionNotFoundError(f"collection {name!r} does not exist"
                                              + (f" on every shard (only on {sorted(keys)}: create it again to "
                                                 "complete it, or drop it)" if keys else ""))
            return self._with_embedding(self._handle(name, [keys[shard] for shard in range(self.shards)]), embedding)

    def list_collections(self) -> List[str]:
        """Names of the collections on every shard, sorted."""
        with self._lock:
            self._check_open()
            answers = self._on_shards("keys")
        return sorted(set.intersection(*(set(keys) for keys in answers.values())))

    def describe(self) -> List[Dict[str, Any]]:
        """See :meth:`vecdb.Database.describe`: the first shard's entries,
        with counts summed over the shards."""
        with self._lock:
            self._check_open()
            answers = self._on_shards("describe")
        per_shard = [{entry["name"]: entry for entry in answers[shard]} for shard in range(self.shards)]
        names = sorted(set.intersection(*(set(entries) for entries in per_shard)))
        return [{**per_shard[0][name], "count": sum(entries[name]["count"] for entries in per_shard)}
                for name in names]

    def drop_collection(self, name: str) -> None:
        """See :meth:`vecdb.Database.drop_collection`: dropped on every shard
        holding it (a drop interrupted part-way is completed by the next)."""
        name = check_collection_name(name)
        with self._lock:
            self._check_open()
            collection = self._collections.pop(name, None)
            if collection is not None:
                collection._dropped = True
            if not any(self._on_shards("drop", name).values()):
                raise CollectionNotFoundError(f"collection {name!r} does not exist")

    def compact(self) -> int:
        """See :meth:`vecdb.Database.compact`: every shard's file, bytes freed summed."""
        with self._lock:
            self._check_open()
            return sum(self._on_shards("compact").values())

    def backup(self, destination: Union[str, os.PathLike]) -> Path:
        """Back up every shard, each as of one committed state (not one
        instant across shards), into a new folder: the catalog and one
        archive per shard (see :mod:`vecdb.cluster.backup`; restore with
        :func:`vecdb.cluster.restore`). ``destination`` is the folder to
        create, or one to create ``vecdb-cluster-backup-<UTC time>`` in (an
        existing one, or a path ending in a separator); it must be on a file
        system every shard's node sees."""
        with self._lock:
            self._check_open()
        return backup_cluster(self, destination)

    def refresh(self) -> None:
        """Nothing to do: every call reads the shards' current state."""

    def close(self) -> None:
        """Close every shard's database (index snapshots written) and stop
        its actor. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for collection in self._collections.values():
                collection._dropped = True
            self._collections.clear()
            self._shard_set.stop()

    # ---- internals ----

    def _handle(self, name: str, keys: List[str]) -> ClusterCollection:
        """One handle per collection, as in process; a new one if the
        collection was dropped and created again meanwhile."""
        collection = self._collections.get(name)
        if collection is not None and collection._keys == keys:
            return collection
        if collection is not None:
            collection._dropped = True
        info = next(entry for entry in self._on_shards("describe", shards=[0])[0] if entry["name"] == name)
        collection = self._collections[name] = ClusterCollection(self, name, keys, info)
        return collection

    @staticmethod
    def _with_embedding(collection: ClusterCollection, embedding: Optional[EmbeddingFunction]) -> ClusterCollection:
        if embedding is not None:
            collection._attach_embedding(collection._embedding_config, embedding)
        return collection

    def _keys_of(self, name: str) -> Dict[int, str]:
        """The key of ``name`` on each shard that has it."""
        answers = self._on_shards("keys", name)
        return {shard: keys[name] for shard, keys in answers.items() if name in keys}

    def _on_shards(self, method: str, *args: Any, shards: Optional[List[int]] = None,
                   arguments: Optional[Callable[[int], Tuple[Any, ...]]] = None) -> Dict[int, Any]:
        """``method`` on the primary of each of ``shards`` (default: all),
        with ``arguments(shard) + args``; after a change to the collections,
        their replicas catch up."""
        targets = list(range(self.shards) if shards is None else shards)
        try:
            return self._shard_set.call({shard: (method, (*(arguments(shard) if arguments else ()), *args), {})
                                         for shard in targets})
        finally:
            if method in ("create", "drop"):
                self._shard_set.refresh_replicas(targets)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the cluster database was closed")


def _shard_settings(dim: Any, metric: Any, index: Any, quantization: Any, mrl_dims: Any, rotate: Any,
                    vectors: Any) -> Dict[str, Any]:
    """What every shard creates a collection with: its one vector's
    settings, or each named vector's under ``"vectors"``; checked here as
    the embedded database checks them."""
    if vectors is None:
        if dim is None:
            raise InvalidArgumentError("create_collection needs dim (or vectors={name: vecdb.VectorSpec(dim)})")
        return CollectionSettings.new(dim, metric, index or HNSW(), quantization, mrl_dims, rotate).to_dict()
    if dim is not None or metric != "cosine" or index is not None or quantization is not None \
            or mrl_dims is not None or rotate is not None:
        raise InvalidArgumentError("with vectors=, each vector's dim, metric, index, quantization, mrl_dims "
                                   "and rotate go in its vecdb.VectorSpec")
    return {"vectors": {name: settings.to_dict() for name, settings in check_vector_specs(vectors).items()}}


def open_cluster(path: Union[str, os.PathLike], shards: Optional[int] = None, *, replicas: int = 0,
                 address: Optional[str] = None, allow_partial: bool = False,
                 index_backlog: int = DEFAULT_INDEX_BACKLOG) -> ClusterDatabase:
    """See :func:`vecdb.cluster.open`."""
    folder = Path(path).absolute()
    replicas = positive_int(replicas, "replicas", 0)
    index_backlog = positive_int(index_backlog, "index_backlog", 0)
    if not isinstance(allow_partial, bool):
        raise InvalidArgumentError(f"allow_partial must be true or false, got {allow_partial!r}")
    actors.connect(address)
    nodes = actors.alive_nodes()
    catalog = read_catalog(folder)
    if catalog is None:
        catalog = ClusterCatalog.new(DEFAULT_SHARDS if shards is None else shards, nodes)
        write_catalog(folder, catalog)
    elif shards is not None and shards != catalog.shards:
        raise InvalidArgumentError(f"the cluster at {folder} has {catalog.shards} shards, not {shards} "
                                   "(changing the shard count is not supported)")
    lost = sorted({node for node in catalog.nodes if node not in nodes})
    if lost and len(lost) == len(set(catalog.nodes)):
        # Every node is new: a restarted Ray cluster. The folders are where
        # they were; the shards go to the nodes there are now.
        catalog = catalog.moved_to(nodes)
        write_catalog(folder, catalog)
    elif lost:
        shard = catalog.nodes.index(lost[0])
        raise ShardUnavailableError(f"shard {shard}'s node {lost[0]} is not in the Ray cluster (nodes lost: "
                                    f"{lost}); its folder {catalog.folders[shard]} is on that node", shard=shard)
    places = [actors.ShardPlace(shard, str(folder / catalog.folders[shard]), catalog.nodes[shard])
              for shard in range(catalog.shards)]
    primaries = actors.ShardSet([actors.start_shard(catalog.name, place, index_backlog=index_backlog)
                                 for place in places])
    primaries.wait_until_serving()  # each opened (or created) its folder: replicas open them read-only
    shard_set = actors.ShardSet(primaries.primaries, [
        [actors.start_shard(catalog.name, place, replica=replica) for replica in range(1, replicas + 1)]
        for place in places])
    shard_set.wait_until_serving()
    return ClusterDatabase(folder, catalog, shard_set, allow_partial)
