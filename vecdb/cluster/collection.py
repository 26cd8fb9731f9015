"""A collection of a cluster database: the embedded API, over shards.

Every call is checked here first, with the embedded checks and errors, so
bad input never reaches a shard. Writes go to the shards holding their ids
(:mod:`vecdb.cluster.routing`), all at once, and return when every shard
has committed; reads go to every shard (or, for ids, to theirs) and their
answers are merged.

Guarantees, and where they stop:
- An upsert or delete is all-or-nothing and durable on each shard, not
  across shards: if a shard fails, the others' parts stay committed and
  :class:`vecdb.errors.ShardUnavailableError` names the shard and the ids
  whose outcome is unknown (upserting them again is safe).
- A search sees each shard's part of a write completely or not at all; it
  may see one shard's part of a batch and not yet another's.
- Writes through one driver's handle run one at a time, so every shard sees
  the batches in the same order.

Trained state (PQ codebooks, the PCA rotation) is learned here once, on a
sample drawn from every shard, and installed on each: the shards never
train on their own. A collection with named vectors trains each vector so,
on its own settings and the points that have it.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union, overload

import numpy as np

from vecdb import arrow
from vecdb.api import CollectionAPI
from vecdb.checks import check_documents, check_k, check_timeout, positive_int
from vecdb.cluster import actors
from vecdb.cluster.merge import (
    ShardHits,
    ShardResults,
    fuse_branches,
    merge_batches,
    merge_hits,
    merge_in_order,
    sum_text_statistics,
)
from vecdb.cluster.routing import group_by_shard
from vecdb.cluster.shard import ORDER_FIELD, TrainingState
from vecdb.cluster.tuning import tune_cluster
from vecdb.cluster.vectors import ShardVectors, split_by_shard
from vecdb.config import PQ, CollectionSettings, IndexSpec, VectorSpec
from vecdb.errors import CollectionNotFoundError, InvalidArgumentError, InvalidPayloadError
from vecdb.fusion import Fusion, default_candidates, fusion_from_dict
from vecdb.index.rotation import MAX_SAMPLES, learn_pca_rotation, rotation_to_bytes, rotation_train_size
from vecdb.native.pq import CENTROIDS, train_codebooks
from vecdb.payload_fields import check_field, check_kind, keys_removal, payload_update
from vecdb.plans import Plan
from vecdb.query.arguments import (
    check_branches,
    check_delete,
    check_flag,
    check_flags,
    check_ids,
    check_named_vectors,
    check_overrides,
    check_recall,
    check_search,
    check_text,
    check_tuning_queries,
    check_upsert,
    resolve_vector,
)
from vecdb.query.filters import parse_filter
from vecdb.query.grouping import grouped_search
from vecdb.query.recommend import recommend
from vecdb.records import Group, Hit, Record
from vecdb.reports import Explanation, TuneReport
from vecdb.storage.payload_index import entry_keys
from vecdb.storage.payloads import encode_payloads
from vecdb.index.term_indexes import TermIndexes
from vecdb.sparse import check_sparse_batch, check_sparse_query
from vecdb.text.settings import TextIndexSettings
from vecdb.text_in import TextIn

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from vecdb.cluster.database import ClusterDatabase

# A collection's (or a named vector's) statistics summed over the shards.
INDEX_COUNTERS = ("count", "index_count", "index_backlog", "index_memory_bytes", "sequence", "index_sequence")

# The calls after which a shard's read replicas must catch up.
WRITES = frozenset({"upsert", "delete", "update_payload", "delete_payload_keys", "create_payload_index",
                    "drop_payload_index", "create_text_index", "drop_text_index", "compact", "install_quantizer",
                    "install_rotation", "set_default_plan"})


class ClusterCollection(TextIn, CollectionAPI):
    """A collection whose points are spread over a cluster's shards. Get one
    from :meth:`vecdb.cluster.ClusterDatabase.create_collection` or
    :meth:`~vecdb.cluster.ClusterDatabase.get_collection`."""

    def __init__(self, database: "ClusterDatabase", name: str, keys: Sequence[str], info: Dict[str, Any]) -> None:
        self._database = database
        self._name = name
        self._keys = list(keys)  # each shard's key of this collection: which incarnation the handle is on
        self._shards = len(self._keys)
        self._settings = CollectionSettings.from_dict(info)  # the default vector's
        # Each vector's settings: {None: ...} for one unnamed vector, else by
        # name, the default first.
        self._vectors: Dict[Optional[str], CollectionSettings] = {
            name: CollectionSettings.from_dict(entry) for name, entry in info["vectors"].items()
        } if info.get("vectors") else {None: self._settings}
        self._payload_indexes: Dict[str, str] = dict(info.get("payload_indexes") or {})
        # The text indexes' settings, for the embedded checks made here
        # (their inverted indexes stay empty: the shards hold the text).
        self._text = _text_indexes(info.get("text_indexes") or {})
        self._sparse: Tuple[str, ...] = tuple(info.get("sparse") or ())  # its sparse vectors' names
        self._embedding_config = info.get("embedding")
        self._write_lock = threading.Lock()
        self._next_order: Optional[int] = None  # the order of the next new point; read from the shards first
        # Each shard's points and trained versions per vector, as last seen.
        self._training: Dict[int, Dict[Optional[str], TrainingState]] = {}
        self._dropped = False

    # ---- description ----

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._settings.dim

    @property
    def metric(self) -> str:
        return self._settings.metric

    @property
    def vectors(self) -> Dict[str, VectorSpec]:
        """Each named vector's settings, the default first (empty: the
        collection has one unnamed vector)."""
        return {name: VectorSpec.of(settings) for name, settings in self._vectors.items() if name is not None}

    @property
    def index(self) -> IndexSpec:
        return self._settings.index

    @property
    def quantization(self) -> Optional[PQ]:
        return self._settings.quantization

    @property
    def payload_indexes(self) -> Dict[str, str]:
        """Indexed payload fields and their kinds (read from the first shard:
        every shard has the same)."""
        self._payload_indexes = dict(self._on_shards("stats", shards=[0], read=True)[0]["payload_indexes"])
        return dict(self._payload_indexes)

    @property
    def text_indexes(self) -> Dict[str, Dict[str, Any]]:
        """Text-indexed payload fields and their settings (read from the
        first shard: every shard has the same)."""
        return self._read_text_indexes()

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        if None in self._vectors:
            return (f"ClusterCollection({self.name!r}, dim={self.dim}, metric={self.metric!r}, index={self.index}, "
                    f"shards={self._shards})")
        described = ", ".join(f"{name}: {spec.dim}-d {spec.metric}" for name, spec in self._vectors.items())
        return f"ClusterCollection({self.name!r}, vectors={{{described}}}, shards={self._shards})"

    # ---- writes ----

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
               sparse: Optional[Dict[str, Any]] = None, documents: Optional[Sequence[Optional[str]]] = None) -> None:
        """See :meth:`vecdb.Collection.upsert` (and, for a collection with
        named vectors, :meth:`vecdb.named_vectors.NamedVectorsCollection.upsert`).
        Durable on every shard when it returns; not atomic across shards
        (see the module's docstring). Sparse vectors go with their points."""
        self._check_live()
        if None in self._vectors:
            id_list, matrix = check_upsert(ids, vectors, self.dim)
        else:
            id_list = check_ids(ids, None)
            named = check_named_vectors(self.name, self._vectors, vectors, id_list)
        payload_dicts, _ = encode_payloads(payloads, len(id_list))
        sparse_given = check_sparse_batch(sparse, self._sparse, len(id_list))
        texts = check_documents(documents, len(id_list))
        self._check_indexed_values(payload_dicts)
        if not id_list:
            return
        groups = group_by_shard(id_list, self._shards)
        shard_ids = {shard: [id_list[row] for row in rows] for shard, rows in groups.items()}
        shard_vectors: Dict[int, Union[np.ndarray, ShardVectors]] = {}
        if None in self._vectors:
            shard_vectors.update((shard, matrix[rows]) for shard, rows in groups.items())
        else:
            shard_vectors.update(split_by_shard(named, groups, len(id_list)))
        with self._write_lock:
            if self._next_order is None:
                self._next_order = 1 + max(self._on_shards("last_order", direct=True).values())
                self._training = self._on_shards("training_states", direct=True)
            first, self._next_order = self._next_order, self._next_order + len(id_list)
            self._training.update(self._on_shards("upsert", shards=list(groups), ids=shard_ids, direct=True,
                                                  arguments=lambda shard: (
                shard_ids[shard], shard_vectors[shard],
                None if payloads is None else [payload_dicts[row] for row in groups[shard]],
                [first + row for row in groups[shard]],
                {name: [rows[row] for row in groups[shard]] for name, rows in sparse_given.items()},
                None if texts is None else [texts[row] for row in groups[shard]])))
            self._train_if_due()

    def _train_if_due(self) -> None:
        """Train what each vector's settings ask for once enough points have
        it, as an embedded collection does in the upsert that brings it
        there; here once for the cluster, on a sample from every shard."""
        for using, settings in self._vectors.items():
            states = [vectors[using] for vectors in self._training.values()]
            total = sum(state.count for state in states)
            pq = settings.quantization
            if pq is not None and all(state.quantizer_version == 0 for state in states) and total >= pq.train_size:
                try:
                    self._train_quantizer(using, pq)
                except Exception as exc:  # the batch is committed: report, search exactly, retry next time
                    warnings.warn(f"{self._described(using)}: training the PQ codebooks failed ({exc}); searching "
                                  "exactly until the next upsert tries again", RuntimeWarning, stacklevel=3)
            if (settings.rotate and all(state.rotation_version == 0 for state in states)
                    and total >= rotation_train_size(settings.dim)):
                try:
                    self._learn_rotation(using)
                except Exception as exc:  # the batch is committed: report, search in full, retry next time
                    warnings.warn(f"{self._described(using)}: learning the PCA rotation failed ({exc}); searching "
                                  "without prefix indexes until the next upsert tries again", RuntimeWarning,
                                  stacklevel=3)

    def _samples(self, wanted: int, seed: int, using: Optional[str]) -> np.ndarray:
        """About ``wanted`` stored vectors ``using`` drawn from every shard
        in proportion to its points that have it (the cluster's sample)."""
        self._training = self._on_shards("training_states", direct=True)
        counts = {shard: states[using].count for shard, states in self._training.items()}
        total = sum(counts.values())
        share = {shard: math.ceil(wanted * count / total) if total else 0 for shard, count in counts.items()}
        drawn = self._on_shards("sample", direct=True, arguments=lambda shard: (share[shard], seed), using=using)
        return np.vstack([drawn[shard] for shard in sorted(drawn)])

    def _train_quantizer(self, using: Optional[str], pq: PQ) -> None:
        settings = self._vectors[using]
        seed = max(states[using].quantizer_version for states in self._training.values())
        sample = self._samples(pq.max_samples, seed, using)
        if len(sample) < CENTROIDS:
            raise InvalidArgumentError(f"PQ training needs at least {CENTROIDS} vectors; "
                                       f"{self._described(using)} has {len(sample)}")
        codebooks = train_codebooks(sample, settings.dim, settings.metric, pq, seed=seed).to_bytes()
        self._on_shards("install_quantizer", codebooks, direct=True, using=using)
        self._training = self._on_shards("training_states", direct=True)

    def _learn_rotation(self, using: Optional[str]) -> None:
        settings = self._vectors[using]
        seed = max(states[using].rotation_version for states in self._training.values())
        sample = self._samples(MAX_SAMPLES, seed, using)
        if len(sample) < settings.dim:
            raise InvalidArgumentError(f"learning a rotation of {settings.dim} dimensions needs at least "
                                       f"{settings.dim} vectors; {self._described(using)} has {len(sample)}")
        self._on_shards("install_rotation", rotation_to_bytes(learn_pca_rotation(sample, settings.metric)),
                        direct=True, using=using)
        self._training = self._on_shards("training_states", direct=True)

    def _check_indexed_values(self, payloads: List[Dict[str, Any]]) -> None:
        """Refuse a value an index cannot hold before any shard sees the
        batch (a shard would refuse only its own part), and the field the
        shards keep the insertion order in."""
        for row, payload in enumerate(payloads):
            for field in payload:
                if field.startswith(ORDER_FIELD):
                    raise InvalidPayloadError(f"payload {row} has the field {field!r}, which a cluster keeps "
                                              "for itself")
        for field, kind in self._payload_indexes.items():
            for payload in payloads:
                if payload:
                    entry_keys(field, kind, payload)
        self._text.analyze(payloads)  # InvalidPayloadError for a value that is not text

    def train_quantizer(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.train_quantizer`: trained once (for
        vector ``using``), on a sample drawn from every shard in proportion
        to its points, and installed on every shard (they share the
        codebooks)."""
        self._check_live()
        using, settings = self._vector(using)
        if settings.quantization is None:
            raise InvalidArgumentError(f"{self._described(using)} has no quantization "
                                       "(create it with quantization=vecdb.PQ(...))")
        with self._write_lock:
            self._training = self._on_shards("training_states", direct=True)
            self._train_quantizer(using, settings.quantization)

    def learn_rotation(self, using: Optional[str] = None) -> None:
        """See :meth:`vecdb.Collection.learn_rotation`: learned once (for
        vector ``using``), from a sample of every shard, and installed on
        every shard (they share their prefixes)."""
        self._check_live()
        using, settings = self._vector(using)
        if settings.rotate is None:
            raise InvalidArgumentError(f"{self._described(using)} has no rotation (create it with mrl_dims=[...], "
                                       "rotate='pca')")
        with self._write_lock:
            self._training = self._on_shards("training_states", direct=True)
            self._learn_rotation(using)

    def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete`: by id on the ids' shards, by
        filter on every shard."""
        self._check_live()
        id_list, _ = check_delete(ids, filter)
        return self._on_selected_shards("delete", id_list, filter, lambda shard_ids: (shard_ids,))

    def update_payload(self, ids: Any = None, payload: Optional[Dict[str, Any]] = None, *,
                       filter: Optional[Dict[str, Any]] = None, merge: bool = True) -> int:
        """See :meth:`vecdb.Collection.update_payload`: by id on the ids'
        shards, by filter on every shard; the total changed. All or nothing
        on each shard, not across shards (as :meth:`delete`)."""
        payload_update(payload, merge)  # checks them as a collection does
        self._check_live()
        id_list, _ = check_delete(ids, filter)
        checked, _ = encode_payloads([payload], 1)
        self._check_indexed_values(checked)
        return self._on_selected_shards("update_payload", id_list, filter,
                                        lambda shard_ids: (shard_ids, checked[0]), direct=True, merge=merge)

    def delete_payload_keys(self, ids: Any = None, keys: Optional[Sequence[str]] = None, *,
                            filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.delete_payload_keys`: by id on the
        ids' shards, by filter on every shard; the total found."""
        keys_removal(keys)  # checks them as a collection does
        assert keys is not None
        self._check_live()
        id_list, _ = check_delete(ids, filter)
        removed = list(keys)
        return self._on_selected_shards("delete_payload_keys", id_list, filter,
                                        lambda shard_ids: (shard_ids, removed))

    def _on_selected_shards(self, method: str, id_list: List[Any], filter: Any,
                            arguments: Callable[[Optional[List[Any]]], Tuple[Any, ...]], direct: bool = False,
                            **options: Any) -> int:
        """``method`` on the shards holding the ids of ``id_list`` (given
        theirs) and, with a filter, on every shard; their counts summed."""
        groups = group_by_shard(id_list, self._shards) if id_list else {}
        shard_ids = {shard: [id_list[row] for row in rows] for shard, rows in groups.items()}
        targets = list(range(self._shards)) if filter is not None else sorted(groups)
        if not targets:
            return 0
        with self._write_lock:
            changed = self._on_shards(method, shards=targets, ids=shard_ids, direct=direct,
                                      arguments=lambda shard: arguments(shard_ids.get(shard)), filter=filter,
                                      **options)
        return sum(changed.values())

    def create_payload_index(self, field: str, kind: str) -> None:
        """See :meth:`vecdb.Collection.create_payload_index`. If a shard
        refuses it (a stored value the kind cannot hold), the index is
        removed again from the shards that made it."""
        self._check_live()
        field, kind = check_field(field), check_kind(kind)
        with self._write_lock:
            before = self.payload_indexes
            try:
                self._on_shards("create_payload_index", field, kind)
            except BaseException:
                if field not in before:
                    self._on_shards("drop_payload_index", field)
                raise
            self._payload_indexes[field] = kind

    def drop_payload_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_payload_index`."""
        self._check_live()
        field = check_field(field)
        with self._write_lock:
            self._on_shards("drop_payload_index", field)
            self._payload_indexes.pop(field, None)

    def create_text_index(self, field: str, *, language: Optional[str] = "english", stopwords: Any = None,
                          k1: float = 1.2, b: float = 0.75) -> None:
        """See :meth:`vecdb.Collection.create_text_index`: made on every
        shard with the same settings. If a shard refuses it (a stored value
        that is not text), the index is removed again from the shards that
        made it."""
        self._check_live()
        field = check_field(field)
        settings = TextIndexSettings.new(language, stopwords, k1, b).to_dict()
        with self._write_lock:
            before = self.text_indexes
            try:
                self._on_shards("create_text_index", field, **settings)
            except BaseException:
                if field not in before:
                    self._on_shards("drop_text_index", field)
                raise
            self._text = _text_indexes({**before, field: settings})

    def drop_text_index(self, field: str) -> None:
        """See :meth:`vecdb.Collection.drop_text_index`."""
        self._check_live()
        field = check_field(field)
        with self._write_lock:
            self._on_shards("drop_text_index", field)
            self._text = self._text.without(field)

    def compact(self) -> int:
        """See :meth:`vecdb.Collection.compact`: every shard compacts."""
        self._check_live()
        with self._write_lock:
            return sum(self._on_shards("compact").values())

    def wait_indexed(self, timeout: Optional[float] = None) -> bool:
        """See :meth:`vecdb.Collection.wait_indexed`: every shard's primary
        (all at once, each given the whole ``timeout``)."""
        self._check_live()
        return all(self._on_shards("wait_indexed", check_timeout(timeout)).values())

    # ---- reads ----

    @overload
    def search(self, query: Sequence[float], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Sequence[Sequence[float]], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: None = None, text_field: Optional[str] = None,
               sparse: None = None, fusion: None = None, using: Optional[str] = None) -> List[List[Hit]]: ...

    @overload
    def search(self, query: Optional[Sequence[float]] = None, k: int = 10, *,
               filter: Optional[Dict[str, Any]] = None, ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: Optional[str] = None, text_field: Optional[str] = None,
               sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
               using: Optional[str] = None) -> List[Hit]: ...

    @overload
    def search(self, query: Any = None, k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               ef: Optional[int] = None, dims: Optional[int] = None,
               plan: Optional[Union[Plan, Dict[str, Any]]] = None, with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False,
               text: Optional[str] = None, text_field: Optional[str] = None,
               sparse: Any = None, fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
               group_by: Optional[str] = None, group_size: int = 1, using: Optional[str] = None) -> Any: ...

    def search(
        self,
        query: Any = None,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
        with_document: bool = False,
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        sparse: Any = None,
        fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
        group_by: Optional[str] = None,
        group_size: int = 1,
        using: Optional[str] = None,
    ) -> Any:
        """See :meth:`vecdb.Collection.search`. Each shard plans and runs the
        search for its own best ``k``; the best ``k`` of theirs come back.

        A search by ``text`` asks every shard for the BM25 statistics of its
        terms (points, their total length, how many hold each term), sums
        them, and has every shard score its points with the sums: the scores
        are those of one collection holding every point. A search by a
        sparse vector merges the shards' best ``k`` (a dot product is a
        point's own). A hybrid search has every shard return each branch's
        candidates unfused; the driver merges each branch over the shards
        and fuses them: the hits of one collection holding every point.
        ``group_by`` searches deeper until the groups are full, as a
        collection does. ``using``: the named vector searched (see
        :meth:`vecdb.named_vectors.NamedVectorsCollection.search`); a
        vector's hits tie in the order the points got that vector, as in
        one collection.

        A shard that does not answer raises ShardUnavailableError, unless
        the database was opened with ``allow_partial=True``: the other
        shards' hits come back, and the result's ``missing_shards`` names
        those left out.
        """
        self._check_live()
        using, settings = self._vector(using)
        query = self._embedded_query(query)
        if group_by is not None:
            return self._grouped(query, k, group_by, group_size, with_payload, dict(
                filter=filter, ef=ef, dims=dims, plan=plan, with_vector=with_vector, with_document=with_document,
                text=text, text_field=text_field, sparse=sparse, fusion=fusion, using=using))
        if text is not None or text_field is not None or sparse is not None or fusion is not None:
            return self._search_branches(query, text, text_field, sparse, fusion, k, filter, ef, dims, plan,
                                         with_payload, with_vector, using, with_document)
        queries, single, k, ef, _ = check_search(query, k, ef, filter, settings.dim)
        dims, plan = check_overrides(dims, plan)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        answers = self._on_shards("search", actors.share(queries), k, direct=True, read=True, filter=filter, ef=ef,
                                  dims=dims, plan=plan, with_payload=with_payload, with_vector=with_vector,
                                  with_document=check_flag(with_document, "with_document"),
                                  using=using, allow_partial=self._database.allow_partial)
        merged = merge_batches(answers, queries.shape[0], k, settings.metric)
        missing = tuple(shard for shard in range(self._shards) if shard not in answers)
        result: Union[ShardHits, ShardResults] = ShardHits(merged[0]) if single else ShardResults(merged)
        result.missing_shards = missing
        return result

    def _search_branches(self, query: Any, text: Any, text_field: Any, sparse: Any, fusion: Any, k: Any,
                         filter: Any, ef: Any, dims: Any, plan: Any, with_payload: Any, with_vector: Any,
                         using: Optional[str], with_document: Any = False) -> ShardHits:
        """:meth:`search` by text or sparse vector, or a hybrid one (its
        vector branch on vector ``using``, resolved): checked here as the
        embedded collection checks it, then (for text) the statistics round,
        then the searches."""
        check_branches(query, text, text_field, sparse, fusion, ef, dims, plan)
        if text is not None:
            try:
                self._text.find(text_field)
            except InvalidArgumentError:
                self._read_text_indexes()  # made through another handle, perhaps: look again
                self._text.find(text_field)
            text = check_text(text)
        sparse_query = None if sparse is None else check_sparse_query(sparse, self._sparse)
        checked_fusion: Optional[Fusion] = None if fusion is None else fusion_from_dict(fusion)
        vector = None
        if query is None:
            k = check_k(k)
            if filter is not None:
                parse_filter(filter)
        else:
            queries, single, k, ef, _ = check_search(query, k, ef, filter, self._vectors[using].dim)
            if not single:
                raise InvalidArgumentError("a hybrid search takes one query vector (1-D), not a batch")
            dims, plan = check_overrides(dims, plan)
            vector = queries[0]
        with_payload, with_vector = check_flags(with_payload, with_vector)
        partial = self._database.allow_partial
        shards, corpus = None, None
        if text is not None:
            statistics = self._on_shards("text_statistics", text, text_field, direct=True, read=True,
                                         allow_partial=partial)
            shards = sorted(statistics)
            corpus = sum_text_statistics([statistics[shard] for shard in shards])
        answers = self._on_shards("search_branches", vector, text, text_field,
                                  None if sparse_query is None else dict([sparse_query]), checked_fusion, k, corpus,
                                  shards=shards, direct=True, read=True, filter=filter, ef=ef, dims=dims, plan=plan,
                                  with_payload=with_payload, with_vector=with_vector, using=using,
                                  with_document=check_flag(with_document, "with_document"), allow_partial=partial)
        per_shard = [answers[shard] for shard in sorted(answers)]
        if checked_fusion is None:
            hits = ShardHits(merge_hits(per_shard, k, higher_first=True))
        else:
            width = checked_fusion.candidates or default_candidates(k)
            hits = ShardHits(fuse_branches(checked_fusion, per_shard, width, k, vector_first=vector is not None))
        hits.missing_shards = tuple(shard for shard in range(self._shards) if shard not in answers)
        return hits

    def _grouped(self, query: Any, k: Any, group_by: Any, group_size: Any, with_payload: Any,
                 options: Dict[str, Any]) -> List[Group]:
        """search(..., group_by=...) as :meth:`vecdb.Collection.search`
        groups: cluster searches with more and more hits until ``k`` groups
        are full or the collection has no more to give."""
        return grouped_search(lambda width: self.search(query, width, with_payload=True, **options), query, k,
                              group_by, group_size, with_payload)

    def recommend(self, positive: Sequence[Any], negative: Optional[Sequence[Any]] = None, k: int = 10, *,
                  filter: Optional[Dict[str, Any]] = None, strategy: str = "average_vector",
                  ef: Optional[int] = None, with_payload: bool = True, with_vector: bool = False,
                  with_document: bool = False, using: Optional[str] = None) -> List[Hit]:
        """See :meth:`vecdb.Collection.recommend`: the same algorithm over
        the cluster's searches (average_vector: one; best_score: one per
        positive example, widened until no point left out could enter the
        top ``k``), so the same hits as one collection holding every point.
        With named vectors, on vector ``using``: an example given by id uses
        its ``using`` vector (a point without it is refused)."""
        self._check_live()
        using, settings = self._vector(using)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        if using is None:
            return recommend(lambda query, width, vectors: self.search(
                query, width, filter=filter, ef=ef, with_payload=with_payload, with_vector=vectors,
                with_document=with_document),
                lambda ids: self.get(ids, with_payload=False, with_vector=True), settings.dim, settings.metric,
                positive, negative, k, strategy, with_vector)
        name = using  # the algorithm compares vector ``name`` alone; the hits get every vector after
        examples = _example_ids(positive, negative)
        stored = self.get(examples, with_payload=False, with_vector=True) if examples else []
        lacking = [record.id for record in stored if _named(record.vector, name) is None]
        if lacking:
            raise InvalidArgumentError(f"example point {sorted(lacking, key=str)[0]!r} has no {name!r} vector")
        by_id = {record.id: replace(record, vector=_named(record.vector, name)) for record in stored}

        def search(query: np.ndarray, width: int, vectors: bool) -> List[Hit]:
            hits = self.search(query, width, filter=filter, ef=ef, with_payload=with_payload, with_vector=vectors,
                               with_document=with_document, using=name)
            return [replace(hit, vector=_named(hit.vector, name)) for hit in hits] if vectors else hits

        hits = recommend(search, lambda ids: [by_id[point] for point in ids if point in by_id], settings.dim,
                         settings.metric, positive, negative, k, strategy, False)
        if not with_vector:
            return hits
        found = {record.id: record.vector for record in self.get([hit.id for hit in hits], with_payload=False,
                                                                 with_vector=True)}
        return [replace(hit, vector=found.get(hit.id, {})) for hit in hits]

    def explain(
        self,
        query: Any = None,
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef: Optional[int] = None,
        dims: Optional[int] = None,
        plan: Optional[Union[Plan, Dict[str, Any]]] = None,
        execute: bool = False,
        text: Optional[str] = None,
        text_field: Optional[str] = None,
        sparse: Any = None,
        fusion: Optional[Union[Fusion, Dict[str, Any]]] = None,
        using: Optional[str] = None,
    ) -> Explanation:
        """See :meth:`vecdb.Collection.explain`. Every shard plans its own
        search; this is the plan of the shard holding the most points (the
        one a search waits for), with the estimates of the whole
        collection (points and allowed summed over the shards)."""
        self._check_live()
        using, settings = self._vector(using)
        branches = {"text": text, "text_field": text_field, "sparse": sparse, "fusion": fusion}
        if any(value is not None for value in branches.values()):  # each shard checks and explains its branches
            answers = self._on_shards("explain", query, k, read=True, filter=filter, ef=ef, dims=dims, plan=plan,
                                      execute=execute, using=using, **branches)
        else:
            if query is None:
                raise InvalidArgumentError("explain needs a query vector, text= or sparse=")
            queries, _, k, ef, _ = check_search(query, k, ef, filter, settings.dim)
            if queries.shape[0] == 0:
                raise InvalidArgumentError("explain needs at least one query")
            dims, plan = check_overrides(dims, plan)
            answers = self._on_shards("explain", queries, k, read=True, filter=filter, ef=ef, dims=dims, plan=plan,
                                      execute=execute, using=using)
        _, largest = max(answers.items(), key=lambda item: (item[1].estimates["points"], -item[0]))
        points = sum(answer.estimates["points"] for answer in answers.values())
        allowed = sum(answer.estimates["allowed"] for answer in answers.values())
        selectivity = 1.0 if filter is None or points == 0 else min(1.0, allowed / points)
        return replace(largest, estimates={**largest.estimates, "points": points, "allowed": allowed,
                                  "selectivity": selectivity})

    def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0,
             using: Optional[str] = None) -> TuneReport:
        """See :meth:`vecdb.Collection.tune`: recall and latency are those
        of searches of the whole cluster (merged results), and the chosen
        plan becomes every shard's default for vector ``using`` (see
        :mod:`vecdb.cluster.tuning`)."""
        self._check_live()
        using, settings = self._vector(using)
        target_recall, k = check_recall(target_recall), check_k(k)
        tuning_queries, seed = check_tuning_queries(queries, settings.dim), positive_int(seed, "seed", 0)
        with self._write_lock:
            return tune_cluster(self, target_recall, k, tuning_queries, seed, using)

    def get(self, ids: Any, *, with_payload: bool = True,
            with_vector: bool = False, with_document: bool = False) -> List[Record]:
        """See :meth:`vecdb.Collection.get` (asks only the shards holding the ids)."""
        self._check_live()
        id_list = check_ids(ids, None)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        groups = group_by_shard(id_list, self._shards) if id_list else {}
        answers = self._on_shards("get", shards=sorted(groups), direct=True, read=True, arguments=lambda shard: (
            [id_list[row] for row in groups[shard]],), with_payload=with_payload, with_vector=with_vector,
            with_document=check_flag(with_document, "with_document"))
        found = {(type(record.id), record.id): record for records in answers.values() for record in records}
        return [found[key] for key in ((type(user_id), user_id) for user_id in id_list) if key in found]

    def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """See :meth:`vecdb.Collection.count` (the shards' counts, summed)."""
        self._check_live()
        if filter is not None:
            parse_filter(filter)
        return sum(self._on_shards("count", filter, read=True).values())

    def scroll(
        self,
        filter: Optional[Dict[str, Any]] = None,
        limit: int = 100,
        cursor: Optional[int] = None,
        *,
        with_payload: bool = True,
        with_vector: bool = False,
        with_document: bool = False,
    ) -> Tuple[List[Record], Optional[int]]:
        """See :meth:`vecdb.Collection.scroll`: in insertion order, as one
        database pages (every shard sends its next ``limit + 1``; the cursor
        is the insertion order of the next page's first point)."""
        self._check_live()
        limit = positive_int(limit, "limit")
        start = 0 if cursor is None else positive_int(cursor, "cursor", 0)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        if filter is not None:
            parse_filter(filter)
        answers = self._on_shards("scroll", filter, limit + 1, start, direct=True, read=True, with_payload=with_payload,
                                  with_vector=with_vector, with_document=check_flag(with_document, "with_document"))
        merged = merge_in_order(list(answers.values()), limit + 1)
        following = merged[limit][0] if len(merged) > limit else None
        return [record for _, record in merged[:limit]], following

    def stats(self) -> Dict[str, Any]:
        """See :meth:`vecdb.Collection.stats`: the first shard's settings,
        counts and index sizes summed over the shards (with named vectors,
        each vector's under ``"vectors"``), and every shard's own under
        ``"shards"``."""
        self._check_live()
        answers = self._on_shards("stats", read=True)
        per_shard = [answers[shard] for shard in sorted(answers)]
        summed = _summed(per_shard, ("count", "sequence") if "vectors" in per_shard[0] else INDEX_COUNTERS)
        if "vectors" in per_shard[0]:
            summed["vectors"] = {name: {**first, **_summed([stats["vectors"][name] for stats in per_shard],
                                                           INDEX_COUNTERS)}
                                 for name, first in per_shard[0]["vectors"].items()}
        # A text index's points and memory summed; its terms are the largest
        # shard vocabulary's (the shards share most words).
        text: Dict[str, Dict[str, Any]] = {}
        for field, first in per_shard[0]["text_indexes"].items():
            indexes = [stats["text_indexes"].get(field) for stats in per_shard]
            if all(indexes):  # else a create or drop failed part-way: the shards say
                text[field] = {**first, "points": sum(index["points"] for index in indexes),
                               "terms": max(index["terms"] for index in indexes),
                               "memory_bytes": sum(index["memory_bytes"] for index in indexes)}
        return {**per_shard[0], **summed, "text_indexes": text, "shards": per_shard}

    # ---- Arrow tables and DataFrames (vecdb.arrow: on upsert and scroll) ----

    def upsert_arrow(self, table: Any, *, id: str = "id", vector: Union[str, Mapping[str, str]] = "vector",
                     payload: Optional[Sequence[str]] = None, document: Optional[str] = None,
                     batch_size: int = 1000) -> int:
        """See :meth:`vecdb.api.CollectionAPI.upsert_arrow`."""
        return arrow.upsert_arrow(self, table, id=id, vector=vector, payload=payload, document=document,
                                  batch_size=batch_size)

    def to_arrow(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                 with_payload: bool = True, with_document: bool = False) -> pyarrow.Table:
        """See :meth:`vecdb.api.CollectionAPI.to_arrow`."""
        return arrow.to_arrow(self, filter, with_vector=with_vector, with_payload=with_payload,
                              with_document=with_document)

    def to_pandas(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                  with_payload: bool = True, with_document: bool = False) -> pandas.DataFrame:
        """See :meth:`vecdb.api.CollectionAPI.to_pandas`."""
        return arrow.to_pandas(self, filter, with_vector=with_vector, with_payload=with_payload,
                               with_document=with_document)

    # ---- internals ----

    def _on_shards(self, method: str, *args: Any, shards: Optional[List[int]] = None,
                   arguments: Optional[Callable[[int], Tuple[Any, ...]]] = None,
                   ids: Optional[Dict[int, List[Any]]] = None, allow_partial: bool = False, direct: bool = False,
                   read: bool = False, **kwargs: Any) -> Dict[int, Any]:
        """Call ``method`` of this collection on ``shards`` (default: all) at
        once, with ``arguments(shard) + args`` and ``kwargs``; each shard's
        answer. ``direct``: a method of the shard itself (one that handles
        the insertion order), else of its collection. ``ids``: per shard,
        the ids a write sent it (named if it fails). ``read``: a shard's
        replica may answer; otherwise its primary does, and after one of
        the WRITES its replicas catch up before this returns."""
        targets = range(self._shards) if shards is None else shards
        requests = {}
        for shard in targets:
            head = (self._name, self._keys[shard]) if direct else (self._name, self._keys[shard], method)
            requests[shard] = (method if direct else "call", (*head, *(arguments(shard) if arguments else ()), *args),
                               kwargs)
        shard_set = self._database._shard_set
        try:
            return shard_set.call(requests, ids=ids, allow_partial=allow_partial, read=read)
        except CollectionNotFoundError:
            self._dropped = True
            raise
        finally:
            if method in WRITES:
                shard_set.refresh_replicas(list(requests))

    def _read_text_indexes(self) -> Dict[str, Dict[str, Any]]:
        """The text indexes' settings, from the first shard (kept for the checks made here)."""
        settings: Dict[str, Dict[str, Any]] = self._on_shards("text_indexes", shards=[0], direct=True, read=True)[0]
        self._text = _text_indexes(settings)
        return settings

    def _check_live(self) -> None:
        if self._dropped:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped")

    def _vector(self, using: Any) -> Tuple[Optional[str], CollectionSettings]:
        """The vector ``using`` names (None: the default; None again for a
        collection of one unnamed vector) and its settings."""
        return resolve_vector(self.name, self._vectors, using)

    def _described(self, using: Optional[str]) -> str:
        """The collection, or its vector ``using``, in a message."""
        return f"collection {self.name!r}" if using is None else f"vector {using!r} of collection {self.name!r}"


def _summed(per_shard: List[Dict[str, Any]], keys: Sequence[str]) -> Dict[str, Any]:
    """The ``keys`` of the shards' statistics, summed."""
    return {key: sum(stats[key] for stats in per_shard) for key in keys}


def _example_ids(positive: Any, negative: Any) -> List[Any]:
    """The point ids among a recommend's examples (what is not a list of
    examples is refused by the recommend itself)."""
    if not isinstance(positive, (list, tuple)) or not isinstance(negative or [], (list, tuple)):
        return []
    return [example for example in [*positive, *(negative or [])]
            if isinstance(example, (str, int)) and not isinstance(example, bool)]


def _named(vectors: Any, name: str) -> Optional[np.ndarray]:
    """Vector ``name`` of a hit's or record's ``{name: vector}`` (None if it lacks it)."""
    return vectors.get(name) if isinstance(vectors, dict) else None


def _text_indexes(settings: Dict[str, Dict[str, Any]]) -> TermIndexes:
    return TermIndexes({field: TextIndexSettings.from_dict(spec) for field, spec in settings.items()})
