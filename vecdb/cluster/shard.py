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
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from vecdb.cluster.merge import HitColumns
from vecdb.collection import DEFAULT_INDEX_BACKLOG, Collection
from vecdb.config import CollectionSettings
from vecdb.database import Database
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError
from vecdb.fusion import Fusion
from vecdb.plans import Plan
from vecdb.progress import silent
from vecdb.query.planner import SearchShape
from vecdb.records import Hit, Record
from vecdb.storage.keys import user_id_key
from vecdb.index.term_indexes import Corpus

# The payload field holding a point's cluster-wide insertion order (the
# NUL makes it a name no filter or payload index can reach).
ORDER_FIELD = "\x00order"

# What the driver may call on a shard's collection: the CollectionAPI's
# methods, nothing private.
COLLECTION_METHODS = frozenset({
    "delete", "delete_payload_keys", "explain", "count", "stats", "create_payload_index", "drop_payload_index",
    "create_text_index", "drop_text_index", "compact", "train_quantizer", "learn_rotation", "tune", "wait_indexed",
})


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
        these); its key. ``settings``: CollectionSettings' dict and the
        sparse vectors' names (``"sparse"``)."""
        checked = CollectionSettings.from_dict(settings)
        collection = self._database.create_collection(
            name, checked.dim, checked.metric, index=checked.index, quantization=checked.quantization,
            mrl_dims=list(checked.mrl_dims) or None, rotate=checked.rotate, sparse=settings.get("sparse"),
            exist_ok=True)
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

    def _collection(self, name: str, key: str) -> Collection:
        collection = self._database.get_collection(name)
        if self._collection_key(collection) != key:
            raise CollectionNotFoundError(f"collection {name!r} was dropped")
        return collection

    # ---- the calls that carry the insertion order ----

    def upsert(self, name: str, key: str, ids: List[Any], vectors: np.ndarray,
               payloads: Optional[List[Dict[str, Any]]], orders: Sequence[int],
               sparse: Optional[Dict[str, List[Any]]] = None) -> "TrainingState":
        """Upsert, each new point numbered with its order (a point that
        exists keeps its own); what the driver needs to know to train."""
        collection = self._collection(name, key)
        kept = {user_id_key(record.id): record.payload[ORDER_FIELD]
                for record in collection.get(ids) if record.payload and ORDER_FIELD in record.payload}
        stamped = [{**(payloads[row] if payloads is not None else {}),
                    ORDER_FIELD: kept.get(user_id_key(point_id), int(orders[row]))}
                   for row, point_id in enumerate(ids)]
        collection.upsert(ids, vectors, stamped, sparse=sparse)
        return self.training_state(name, key)

    def update_payload(self, name: str, key: str, ids: Optional[List[Any]], payload: Dict[str, Any], *,
                       filter: Optional[Dict[str, Any]], merge: bool) -> int:
        """:meth:`vecdb.Collection.update_payload`, each point keeping its
        order when its payload is replaced (checked by the driver)."""
        collection = self._collection(name, key)
        if merge:
            return collection.update_payload(ids, payload, filter=filter)
        return collection._change_payloads(ids, filter, lambda old: {**payload, ORDER_FIELD: old[ORDER_FIELD]})

    # ---- trained state: learned once for the cluster, installed on every shard ----

    def training_state(self, name: str, key: str) -> "TrainingState":
        stats = self._collection(name, key).stats()
        quantization, mrl = stats["quantization"], stats["mrl"]
        return TrainingState(count=stats["count"],
                             quantizer_version=quantization["quantizer_version"] if quantization else 0,
                             rotation_version=mrl["rotation_version"] if mrl else 0)

    def sample(self, name: str, key: str, count: int, seed: int) -> np.ndarray:
        return self._collection(name, key)._sample(count, seed)

    def sample_points(self, name: str, key: str, count: int, seed: int) -> Tuple[List[Any], np.ndarray]:
        return self._collection(name, key)._sample_points(count, seed)

    def exact_neighbours(self, name: str, key: str, queries: np.ndarray,
                         k: int) -> Tuple[List[List[Any]], np.ndarray]:
        return self._collection(name, key)._exact_neighbours(queries, k)

    def time_plan(self, name: str, key: str, plan: Plan, queries: np.ndarray, k: int) -> float:
        return self._collection(name, key)._time_plan(plan, queries, k)

    def search_shape(self, name: str, key: str) -> SearchShape:
        return self._collection(name, key)._search_shape()

    def set_default_plan(self, name: str, key: str, plan: Plan, k: int) -> None:
        self._collection(name, key)._set_default_plan(plan, k)

    def install_quantizer(self, name: str, key: str, codebooks: bytes) -> None:
        self._collection(name, key)._adopt_quantizer(codebooks)

    def install_rotation(self, name: str, key: str, rotation: bytes) -> None:
        self._collection(name, key)._adopt_rotation(rotation)

    def search(self, name: str, key: str, queries: np.ndarray, k: int, *, with_payload: bool, with_vector: bool,
               **options: Any) -> List[HitColumns]:
        """Per query, this shard's best ``k`` as columns, with their orders."""
        assert isinstance(queries, np.ndarray) and queries.ndim == 2, "the driver sends a batch"
        rows = self._collection(name, key).search(queries, k, with_payload=True, with_vector=with_vector, **options)
        return [_hit_columns(row, with_payload, with_vector) for row in rows]

    def text_indexes(self, name: str, key: str) -> Dict[str, Dict[str, Any]]:
        return self._collection(name, key).text_indexes

    def text_statistics(self, name: str, key: str, text: str, text_field: Optional[str]) -> Corpus:
        """BM25's statistics of ``text`` on this shard (summed by the driver
        over every shard, see :meth:`search_text`)."""
        return self._collection(name, key)._text_statistics(text, text_field)

    def search_branches(self, name: str, key: str, query: Optional[np.ndarray], text: Optional[str],
                        text_field: Optional[str], sparse: Optional[Dict[str, Any]], fusion: Optional[Fusion], k: int,
                        corpus: Optional[Corpus], *, filter: Optional[Dict[str, Any]], ef: Optional[int],
                        dims: Optional[int], plan: Optional[Plan], with_payload: bool,
                        with_vector: bool) -> Union[HitColumns, List[HitColumns]]:
        """A search by text or sparse vector: this shard's best ``k`` as
        columns, with their orders; text scored with the whole cluster's
        statistics ``corpus`` (so every shard scores as one index over all
        of them would). With ``fusion``, a hybrid search's branches
        instead, each as columns (vector, text, sparse: those given; each
        ``fusion``'s candidates long), read in one state and not fused: the
        driver merges each over the shards, then fuses."""
        found = self._collection(name, key)._search_branches(
            query, text, text_field, sparse, fusion, k, filter, ef, dims, plan, True, with_vector, corpus=corpus,
            separate=fusion is not None)
        if fusion is None:
            return _hit_columns(found, with_payload, with_vector)
        return [_hit_columns(branch, with_payload, with_vector) for branch in found]

    def get(self, name: str, key: str, ids: List[Any], *, with_payload: bool, with_vector: bool) -> List[Record]:
        records = self._collection(name, key).get(ids, with_payload=True, with_vector=with_vector)
        return [_ordered_record(record, with_payload)[1] for record in records]

    def scroll(self, name: str, key: str, filter: Optional[Dict[str, Any]], limit: int, start: int, *,
               with_payload: bool, with_vector: bool) -> List[Tuple[int, Record]]:
        """Up to ``limit`` points matching ``filter`` whose order is at
        least ``start``, in order, each with its order."""
        collection = self._collection(name, key)
        label = self._first_label_from(collection, start)
        records, _ = collection.scroll(filter, limit, label or None, with_payload=True, with_vector=with_vector)
        return [_ordered_record(record, with_payload) for record in records]

    def last_order(self, name: str, key: str) -> int:
        """The highest order a point here has (-1 if none)."""
        collection = self._collection(name, key)
        end = _bisect(lambda label: _order_at(collection, label) is not None)  # one past the last label
        order = _order_at(collection, end - 1) if end else None
        return -1 if order is None else order

    @staticmethod
    def _first_label_from(collection: Collection, start: int) -> int:
        """The smallest label from which the points have orders >= ``start``."""
        def before_start(label: int) -> bool:
            order = _order_at(collection, label)
            return order is not None and order < start
        return _bisect(before_start)

    @staticmethod
    def _collection_key(collection: Collection) -> str:
        # The key a collection got at creation names this incarnation of it.
        return collection._config.key

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


def _order_at(collection: Collection, label: int) -> Optional[int]:
    """The order of the first point at or after ``label`` (None: none)."""
    records, _ = collection.scroll(None, 1, label or None, with_payload=True)
    return (records[0].payload or {}).get(ORDER_FIELD, -1) if records else None


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


def _hit_columns(hits: List[Hit], with_payload: bool, with_vector: bool) -> HitColumns:
    """``hits`` as the driver merges them, their orders taken out of their
    payloads."""
    payloads = [hit.payload or {} for hit in hits]
    return ([hit.id for hit in hits], [hit.score for hit in hits],
            [payload.get(ORDER_FIELD, -1) for payload in payloads],
            [_without_order(payload) for payload in payloads] if with_payload else None,
            [hit.vector for hit in hits] if with_vector else None)


def _without_order(payload: Dict[str, Any]) -> Dict[str, Any]:
    return {field: value for field, value in payload.items() if field != ORDER_FIELD}


def _ordered_record(record: Record, with_payload: bool) -> Tuple[int, Record]:
    payload = record.payload or {}
    return payload.get(ORDER_FIELD, -1), replace(record, payload=_without_order(payload) if with_payload else None)
