"""One shard of a cluster database: an ordinary embedded database in its
own folder, serving the driver's calls. The body of a Ray actor
(:mod:`vecdb.cluster.actors` wraps it); plain Python, so it is also usable
and testable without Ray.

Every collection call names the collection and the key it had when the
driver's handle was made (the key a collection gets at creation): a handle
whose collection was dropped, or dropped and created again, raises
:class:`vecdb.errors.CollectionNotFoundError` here as an embedded handle
does.

**Insertion order across shards.** A single database breaks score ties,
and scrolls, in insertion order (a point's label). Labels count each
shard's own insertions, so the driver numbers every new point of the
cluster (its *order*: the batch's start plus its position) and the shard
stores that number with the point, in the payload under :data:`ORDER_FIELD`,
in the same transaction as the point: a field no user payload may have
(the driver refuses it), added here and removed from everything a shard
returns. A point upserted again keeps its order, as it keeps its label; so
within a shard, orders rise with labels, which lets a scroll find where an
order starts by bisecting labels.

**Named vectors.** A collection with named vectors keeps each point's
payload in its points part and a copy in the part of each vector it has,
so the order travels into every part with it. A vector's index breaks ties
by when the point got that vector (its label in that part), not by when
the point came: a point given a vector it lacked comes after every point
that had it. So the payload also holds, under :func:`vector_order_field`,
the order at which the point got each vector it has (numbered by the
driver as new points are, from the same count; kept while the point keeps
the vector): a vector's searches merge over the shards by it, and within a
part it rises with labels too.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from vecdb.cluster.merge import HitColumns
from vecdb.collection import DEFAULT_INDEX_BACKLOG, Collection
from vecdb.config import CollectionSettings, VectorSpec
from vecdb.database import Database
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError
from vecdb.fusion import Fusion
from vecdb.named_vectors import NamedVectorsCollection
from vecdb.plans import Plan
from vecdb.progress import silent
from vecdb.query.planner import SearchShape
from vecdb.records import Hit, Record
from vecdb.storage.keys import user_id_key
from vecdb.text_in import DescribedEmbedding
from vecdb.index.term_indexes import Corpus

# The payload field holding a point's cluster-wide insertion order (the
# NUL makes it a name no filter or payload index can reach); the fields
# holding when it got each named vector start with it too.
ORDER_FIELD = "\x00order"

# What the driver may call on a shard's collection: the CollectionAPI's
# methods, nothing private.
COLLECTION_METHODS = frozenset({
    "delete", "delete_payload_keys", "explain", "count", "stats", "create_payload_index", "drop_payload_index",
    "create_text_index", "drop_text_index", "compact", "train_quantizer", "learn_rotation", "tune", "wait_indexed",
})

# A shard's collection: of one unnamed vector, or of named vectors.
AnyCollection = Union[Collection, NamedVectorsCollection]


def vector_order_field(vector: str) -> str:
    """The payload field holding the order at which a point got named
    vector ``vector`` (see the module's docstring)."""
    return f"{ORDER_FIELD}.{vector}"


class Shard:
    """The database in ``folder`` (created if missing; ``read_only`` opens
    it alongside its writer, for a read replica)."""

    def __init__(self, folder: str, read_only: bool = False, index_backlog: int = DEFAULT_INDEX_BACKLOG) -> None:
        Path(folder).parent.mkdir(parents=True, exist_ok=True)
        # The cluster trains PQ codebooks and PCA rotations once, for every shard.
        self._database = Database(folder, read_only=read_only, progress=silent, index_backlog=index_backlog,
                                  _trains_itself=False)

    def pid(self) -> int:
        """The process serving this shard (tests kill it)."""
        return os.getpid()

    # ---- collections ----

    def keys(self, name: Optional[str] = None) -> Dict[str, str]:
        """Each collection's key (or only ``name``'s, if it exists here)."""
        names = self._database.list_collections() if name is None else [name]
        found = {}
        for each in names:
            try:
                found[each] = self._collection_key(self._database.get_collection(each))
            except CollectionNotFoundError:
                continue
        return found

    def create(self, name: str, settings: Dict[str, Any]) -> str:
        """Create ``name`` (or return the existing one, if its settings are
        these); its key. ``settings``: CollectionSettings' dict (or, for a
        collection of named vectors, each vector's under ``"vectors"``) and
        the sparse vectors' names (``"sparse"``)."""
        collection: AnyCollection
        embedding = (None if settings.get("embedding") is None else
                     DescribedEmbedding(settings["embedding"], settings["dim"]))
        if "vectors" in settings:
            collection = self._database.create_collection(
                name, vectors={vector: VectorSpec.of(CollectionSettings.from_dict(spec))
                               for vector, spec in settings["vectors"].items()},
                sparse=settings.get("sparse"), exist_ok=True)
        else:
            checked = CollectionSettings.from_dict(settings)
            collection = self._database.create_collection(
                name, checked.dim, checked.metric, index=checked.index, quantization=checked.quantization,
                mrl_dims=list(checked.mrl_dims) or None, rotate=checked.rotate, sparse=settings.get("sparse"),
                embedding=embedding, exist_ok=True)
        return self._collection_key(collection)

    def drop(self, name: str) -> bool:
        """Drop ``name`` if it exists here; whether it did."""
        try:
            self._database.drop_collection(name)
        except CollectionNotFoundError:
            return False
        return True

    def call(self, name: str, key: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``collection.method(*args, **kwargs)`` on collection ``name``, if
        it is still the one with ``key``."""
        if method not in COLLECTION_METHODS:
            raise InvalidArgumentError(f"{method!r} is not a collection method a shard serves")
        return getattr(self._collection(name, key), method)(*args, **kwargs)

    def _collection(self, name: str, key: str) -> AnyCollection:
        collection: AnyCollection = self._database.get_collection(name)
        if self._collection_key(collection) != key:
            raise CollectionNotFoundError(f"collection {name!r} was dropped")
        return collection

    def _vector_collection(self, name: str, key: str, using: Optional[str]) -> Collection:
        """The collection holding vector ``using`` of ``name`` (None: its
        one unnamed vector, or its default named one): what trains, samples
        and tunes."""
        collection = self._collection(name, key)
        if isinstance(collection, NamedVectorsCollection):
            return collection._part(using)
        if using is not None:
            collection._refuse_using(using)
        return collection

    # ---- the calls that carry the insertion order ----

    def upsert(self, name: str, key: str, ids: List[Any], vectors: Union[np.ndarray, Dict[str, Any]],
               payloads: Optional[List[Dict[str, Any]]], orders: Sequence[int],
               sparse: Optional[Dict[str, List[Any]]] = None,
               documents: Optional[List[Optional[str]]] = None) -> Dict[Optional[str], "TrainingState"]:
        """Upsert, each new point numbered with its order (a point that
        exists keeps its own); with named vectors (``vectors``: ``{name: a
        matrix, or a vector or None per id}``), each vector a point gets is
        numbered alike. What the driver needs to know to train."""
        collection = self._collection(name, key)
        kept = {user_id_key(record.id): record.payload or {} for record in collection.get(ids)}
        stamped = []
        for row, point_id in enumerate(ids):
            old = kept.get(user_id_key(point_id), {})
            stamped.append({**(payloads[row] if payloads is not None else {}),
                            **{field: old.get(field, int(orders[row])) for field in _order_fields(vectors, row)}})
        collection.upsert(ids, vectors, stamped, sparse=sparse, documents=documents)
        return self.training_states(name, key)

    def update_payload(self, name: str, key: str, ids: Optional[List[Any]], payload: Dict[str, Any], *,
                       filter: Optional[Dict[str, Any]], merge: bool) -> int:
        """:meth:`vecdb.Collection.update_payload`, each point keeping its
        order when its payload is replaced (checked by the driver)."""
        collection = self._collection(name, key)
        if merge:
            return collection.update_payload(ids, payload, filter=filter)
        return collection._change_payloads(ids, filter, lambda old: {**payload, **_orders(old)})

    # ---- trained state: learned once for the cluster, installed on every shard ----

    # Each takes the vector it is about: ``using`` (None: the collection's
    # one unnamed vector, or its default named one).

    def training_states(self, name: str, key: str) -> Dict[Optional[str], "TrainingState"]:
        """Each vector's (None: the one unnamed vector's)."""
        collection = self._collection(name, key)
        if isinstance(collection, NamedVectorsCollection):
            return {vector: _training_state(part) for vector, part in collection._parts.items()}
        return {None: _training_state(collection)}

    def sample(self, name: str, key: str, count: int, seed: int, *, using: Optional[str] = None) -> np.ndarray:
        return self._vector_collection(name, key, using)._sample(count, seed)

    def sample_points(self, name: str, key: str, count: int, seed: int, *,
                      using: Optional[str] = None) -> Tuple[List[Any], np.ndarray]:
        return self._vector_collection(name, key, using)._sample_points(count, seed)

    def exact_neighbours(self, name: str, key: str, queries: np.ndarray, k: int, *,
                         using: Optional[str] = None) -> Tuple[List[List[Any]], np.ndarray]:
        return self._vector_collection(name, key, using)._exact_neighbours(queries, k)

    def time_plan(self, name: str, key: str, plan: Plan, queries: np.ndarray, k: int, *,
                  using: Optional[str] = None) -> float:
        return self._vector_collection(name, key, using)._time_plan(plan, queries, k)

    def search_shape(self, name: str, key: str, *, using: Optional[str] = None) -> SearchShape:
        return self._vector_collection(name, key, using)._search_shape()

    def set_default_plan(self, name: str, key: str, plan: Plan, k: int, *, using: Optional[str] = None) -> None:
        self._vector_collection(name, key, using)._set_default_plan(plan, k)

    def install_quantizer(self, name: str, key: str, codebooks: bytes, *, using: Optional[str] = None) -> None:
        self._vector_collection(name, key, using)._adopt_quantizer(codebooks)

    def install_rotation(self, name: str, key: str, rotation: bytes, *, using: Optional[str] = None) -> None:
        self._vector_collection(name, key, using)._adopt_rotation(rotation)

    def search(self, name: str, key: str, queries: np.ndarray, k: int, *, with_payload: bool, with_vector: bool,
               using: Optional[str] = None, **options: Any) -> List[HitColumns]:
        """Per query, this shard's best ``k`` as columns, with their orders
        in the index of vector ``using``."""
        assert isinstance(queries, np.ndarray) and queries.ndim == 2, "the driver sends a batch"
        collection = self._collection(name, key)
        rows = collection.search(queries, k, with_payload=True, with_vector=with_vector, using=using, **options)
        ranking = _ranking_field(collection, using)
        return [_hit_columns(row, with_payload, with_vector, ranking) for row in rows]

    def text_indexes(self, name: str, key: str) -> Dict[str, Dict[str, Any]]:
        return self._collection(name, key).text_indexes

    def text_statistics(self, name: str, key: str, text: str, text_field: Optional[str]) -> Corpus:
        """BM25's statistics of ``text`` on this shard (summed by the driver
        over every shard, see :meth:`search_text`)."""
        return self._collection(name, key)._text_statistics(text, text_field)

    def search_branches(self, name: str, key: str, query: Optional[np.ndarray], text: Optional[str],
                        text_field: Optional[str], sparse: Optional[Dict[str, Any]], fusion: Optional[Fusion], k: int,
                        corpus: Optional[Corpus], *, filter: Optional[Dict[str, Any]], ef: Optional[int],
                        dims: Optional[int], plan: Optional[Plan], with_payload: bool, with_vector: bool,
                        using: Optional[str] = None,
                        with_document: bool = False) -> Union[HitColumns, List[HitColumns]]:
        """A search by text or sparse vector: this shard's best ``k`` as
        columns, with their orders; text scored with the whole cluster's
        statistics ``corpus`` (so every shard scores as one index over all
        of them would). With ``fusion``, a hybrid search's branches
        instead, each as columns (vector, on vector ``using``; text,
        sparse: those given; each ``fusion``'s candidates long), read in
        one state and not fused: the driver merges each over the shards,
        then fuses."""
        collection = self._collection(name, key)
        search_branches: Callable[..., Any] = collection._search_branches
        if isinstance(collection, NamedVectorsCollection):
            search_branches = functools.partial(collection._search_branches, using=using)
        elif using is not None:
            collection._refuse_using(using)
        found = search_branches(query, text, text_field, sparse, fusion, k, filter, ef, dims, plan, True, with_vector,
                                corpus=corpus, separate=fusion is not None, with_document=with_document)
        if fusion is None:
            return _hit_columns(found, with_payload, with_vector)
        rankings = [ORDER_FIELD] * len(found)  # the vector branch, first if any, ranks by its index's orders
        if query is not None:
            rankings[0] = _ranking_field(collection, using)
        return [_hit_columns(branch, with_payload, with_vector, ranking) for branch, ranking in zip(found, rankings)]

    def get(self, name: str, key: str, ids: List[Any], *, with_payload: bool, with_vector: bool,
            with_document: bool = False) -> List[Record]:
        records = self._collection(name, key).get(ids, with_payload=True, with_vector=with_vector,
                                                  with_document=with_document)
        return [_ordered_record(record, with_payload)[1] for record in records]

    def scroll(self, name: str, key: str, filter: Optional[Dict[str, Any]], limit: int, start: int, *,
               with_payload: bool, with_vector: bool, with_document: bool = False) -> List[Tuple[int, Record]]:
        """Up to ``limit`` points matching ``filter`` whose order is at
        least ``start``, in order, each with its order."""
        collection = self._collection(name, key)
        label = self._first_label_from(collection, start)
        records, _ = collection.scroll(filter, limit, label or None, with_payload=True, with_vector=with_vector,
                                       with_document=with_document)
        return [_ordered_record(record, with_payload) for record in records]

    def last_order(self, name: str, key: str) -> int:
        """The highest order a point here has, or got a named vector at (-1
        if none)."""
        collection = self._collection(name, key)
        if isinstance(collection, NamedVectorsCollection):
            return max([_last_order(collection, ORDER_FIELD), *(
                _last_order(part, vector_order_field(vector)) for vector, part in collection._parts.items())])
        return _last_order(collection, ORDER_FIELD)

    @staticmethod
    def _first_label_from(collection: AnyCollection, start: int) -> int:
        """The smallest label from which the points have orders >= ``start``."""
        def before_start(label: int) -> bool:
            order = _order_at(collection, label, ORDER_FIELD)
            return order is not None and order < start
        return _bisect(before_start)

    @staticmethod
    def _collection_key(collection: AnyCollection) -> str:
        # The key a collection got at creation (a collection of named
        # vectors: its points part's) names this incarnation of it.
        points = collection._points if isinstance(collection, NamedVectorsCollection) else collection
        return points._config.key

    # ---- the database ----

    def describe(self) -> List[Dict[str, Any]]:
        return self._database.describe()

    def compact(self) -> int:
        return self._database.compact()

    def backup(self, destination: str) -> str:
        return str(self._database.backup(destination))

    def refresh(self) -> None:
        self._database.refresh()

    def close(self) -> None:
        self._database.close()


@dataclass(frozen=True)
class TrainingState:
    """A shard's points and the versions of its trained state."""

    count: int
    quantizer_version: int
    rotation_version: int


def _training_state(collection: Collection) -> TrainingState:
    stats = collection.stats()
    quantization, mrl = stats["quantization"], stats["mrl"]
    return TrainingState(count=stats["count"],
                         quantizer_version=quantization["quantizer_version"] if quantization else 0,
                         rotation_version=mrl["rotation_version"] if mrl else 0)


def _order_fields(vectors: Union[np.ndarray, Dict[str, Any]], row: int) -> List[str]:
    """The order fields of an upsert's point ``row``: its own and, with
    named vectors, one per vector it is given."""
    if not isinstance(vectors, dict):
        return [ORDER_FIELD]
    return [ORDER_FIELD, *(vector_order_field(vector) for vector, given in vectors.items()
                           if isinstance(given, np.ndarray) or given[row] is not None)]


def _ranking_field(collection: AnyCollection, using: Optional[str]) -> str:
    """The order field a search of vector ``using`` breaks ties by."""
    if not isinstance(collection, NamedVectorsCollection):
        return ORDER_FIELD
    return vector_order_field(next(iter(collection._parts)) if using is None else using)


def _last_order(collection: AnyCollection, field: str) -> int:
    """The highest order under ``field`` (-1 if none): that of the last
    label, as orders rise with labels."""
    end = _bisect(lambda label: _order_at(collection, label, field) is not None)  # one past the last label
    order = _order_at(collection, end - 1, field) if end else None
    return -1 if order is None else order


def _order_at(collection: AnyCollection, label: int, field: str) -> Optional[int]:
    """The order under ``field`` of the first point at or after ``label``
    (None: none)."""
    records, _ = collection.scroll(None, 1, label or None, with_payload=True)
    return (records[0].payload or {}).get(field, -1) if records else None


def _bisect(below: Callable[[int], bool]) -> int:
    """The smallest label at which ``below(label)`` turns false (it is true
    up to some label and false after): doubling, then halving."""
    high = 1
    while below(high - 1):
        high *= 2
    low = high // 2
    while low < high:
        middle = (low + high) // 2
        if below(middle):
            low = middle + 1
        else:
            high = middle
    return low


def _hit_columns(hits: List[Hit], with_payload: bool, with_vector: bool, ranking: str = ORDER_FIELD) -> HitColumns:
    """``hits`` as the driver merges them, their orders (those under
    ``ranking``, and the points' own if they differ) taken out of their
    payloads."""
    payloads = [hit.payload or {} for hit in hits]
    return ([hit.id for hit in hits], [hit.score for hit in hits],
            [payload.get(ranking, -1) for payload in payloads],
            [_without_order(payload) for payload in payloads] if with_payload else None,
            [hit.vector for hit in hits] if with_vector else None,
            None if ranking == ORDER_FIELD else [payload.get(ORDER_FIELD, -1) for payload in payloads],
            [hit.document for hit in hits] if any(hit.document is not None for hit in hits) else None)


def _orders(payload: Dict[str, Any]) -> Dict[str, Any]:
    """The order fields of a stored payload."""
    return {field: value for field, value in payload.items() if field.startswith(ORDER_FIELD)}


def _without_order(payload: Dict[str, Any]) -> Dict[str, Any]:
    return {field: value for field, value in payload.items() if not field.startswith(ORDER_FIELD)}


def _ordered_record(record: Record, with_payload: bool) -> Tuple[int, Record]:
    payload = record.payload or {}
    return payload.get(ORDER_FIELD, -1), replace(record, payload=_without_order(payload) if with_payload else None)
