"""A collection whose points have several named dense vectors
(``create_collection("docs", vectors={"text": vecdb.VectorSpec(384),
"image": vecdb.VectorSpec(512)})``), each searched on its own index.

It is made of collections of one vector, in the same LMDB file:

- the *points* part, under the collection's own name: every point's id,
  payload, text-index terms and sparse vectors (its dense vector is a
  constant of one dimension, never searched: the part exists to hold what
  a point has whatever vectors it has);
- one part per vector name, ``<name>.<vector>`` (a name no user collection
  can take): the points that have that vector, each with a copy of its
  payload, so a filtered search on one vector runs natively in that part,
  with its own index, quantization and MRL prefixes.

Every write commits in one LMDB transaction over the parts it touches
(:mod:`vecdb.write_steps`): all-or-nothing and durable like a collection's.
A search on one vector reads one part (a state it sees whole, as any
collection's search). Reads that combine parts (hybrid searches, records
with their vectors) run between two writes of this handle: they retry
when a write overlapped them, and at last run with writes held off.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from dataclasses import replace
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar,
                    Union, overload)

import numpy as np

from vecdb import arrow
from vecdb.api import CollectionAPI
from vecdb.checks import check_documents, check_k, positive_int
from vecdb.collection import Collection
from vecdb.config import PQ, CollectionConfig, CollectionSettings, Flat, IndexSpec, VectorSpec, vector_part_name
from vecdb.errors import InvalidArgumentError, VecdbError
from vecdb.fusion import Fusion, default_candidates, fusion_from_dict
from vecdb.index.term_indexes import Corpus
from vecdb.metrics import higher_is_better
from vecdb.plans import Plan
from vecdb.payload_fields import keys_removal, payload_update
from vecdb.query.arguments import (check_delete, check_flag, check_flags, check_ids, check_named_vectors,
                                   resolve_vector)
from vecdb.query.filters import parse_filter
from vecdb.query.fusion import branch_weights, fuse
from vecdb.query.grouping import grouped_search
from vecdb.records import Hit, Record, UserId
from vecdb.reports import Explanation, TuneReport
from vecdb.sparse import check_sparse_batch
from vecdb.storage.keys import user_id_key
from vecdb.storage.payloads import encode_payloads
from vecdb.text_in import TextIn
from vecdb.write_steps import commit_steps

if TYPE_CHECKING:  # optional: only to_arrow and to_pandas need them
    import pandas
    import pyarrow

T = TypeVar("T")

# The points part's vector: one constant dimension (what a collection of one
# vector needs to hold a point; never searched).
POINTS_DIM = 1
POINTS_METRIC = "ip"
POINTS_INDEX = Flat()
_COMBINED_ATTEMPTS = 3  # reads of several parts retried while writes overlap them, then run with writes held


def points_config(name: str, key: str, vectors: Sequence[str], sparse: Sequence[str]) -> CollectionConfig:
    """The points part's config of a new named-vectors collection."""
    config = CollectionConfig.new(name, key, POINTS_DIM, POINTS_METRIC, POINTS_INDEX)
    config.vectors = list(vectors)
    config.sparse = list(sparse)
    return config


F = TypeVar("F", bound=Callable[..., Any])


def _naming_vectors(method: F) -> F:
    """Errors a part raises name the collection and the vector, not the
    part's internal name (``collection 'docs' (vector 'image')``, not
    ``collection 'docs.image'``)."""
    @functools.wraps(method)
    def renamed(self: "NamedVectorsCollection", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except VecdbError as error:
            text = str(error)
            for vector in self._parts:
                part = vector_part_name(self.name, vector)
                text = text.replace(f"collection {part!r}", f"collection {self.name!r} (vector {vector!r})")
                text = text.replace(repr(part), f"{self.name!r} (vector {vector!r})")
            if text != str(error):
                error.args = (text,)
            raise
    return renamed  # type: ignore[return-value]


class NamedVectorsCollection(TextIn, CollectionAPI):
    """Points with several named vectors (see the module's docstring): the
    API of :class:`vecdb.Collection`, with ``vectors={name: ...}`` in
    upserts and ``using=name`` in searches (default: the first name).
    A point may lack any of its vectors; searches on a vector find only the
    points that have it."""

    def __init__(self, points: Collection, parts: Dict[str, Collection]) -> None:
        self._points = points
        self._parts = parts  # in declared order: the first is the default
        # Each vector's settings (fixed at creation), keyed as resolve_vector takes them.
        self._settings: Dict[Optional[str], CollectionSettings] = {name: part._config.settings
                                                                   for name, part in parts.items()}
        self._write = threading.Lock()  # one write at a time over the parts, entered in one order
        self._generation = 0  # odd while a write is in progress (see _combined)
        self._dropped = False

    # ---- description ----

    @property
    def name(self) -> str:
        return self._points.name

    @property
    def vectors(self) -> Dict[str, VectorSpec]:
        """Each named vector's settings, the default (``using=None``) first."""
        return {name: VectorSpec.of(part._config.settings) for name, part in self._parts.items()}

    @property
    def dim(self) -> int:
        """The default vector's dimension."""
        return self._default.dim

    @property
    def metric(self) -> str:
        """The default vector's metric."""
        return self._default.metric

    @property
    def index(self) -> IndexSpec:
        """The default vector's index settings."""
        return self._default.index

    @property
    def quantization(self) -> Optional[PQ]:
        """The default vector's PQ settings."""
        return self._default.quantization

    @property
    def payload_indexes(self) -> Dict[str, str]:
        return self._points.payload_indexes

    @property
    def text_indexes(self) -> Dict[str, Dict[str, Any]]:
        return self._points.text_indexes

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        described = ", ".join(f"{name}: {part.dim}-d {part.metric}" for name, part in self._parts.items())
        return f"Collection({self.name!r}, vectors={{{described}}})"

    @property
    def _default(self) -> Collection:
        return next(iter(self._parts.values()))

    def _part(self, using: Any) -> Collection:
        """The part holding vector ``using`` (None: the default)."""
        name, _ = resolve_vector(self.name, self._settings, using)
        assert name is not None
        return self._parts[name]

    # ---- writes ----

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
               sparse: Optional[Dict[str, Any]] = None, documents: Optional[Sequence[Optional[str]]] = None) -> None:
        """Insert points, or replace them whole (vectors, payload, sparse
        vectors) where the id exists.

        ``vectors`` is ``{name: vectors}`` for some of the collection's
        vector names: an ``(n, dim)`` array-like, or a list with one vector
        or None per id. A point gets the vectors given for it; a replaced
        point loses those it is not given now. Durable when it returns;
        if anything is invalid nothing is written."""
        self._check_live()
        id_list = check_ids(ids, None)
        given = check_named_vectors(self.name, self._settings, vectors, id_list)
        payload_dicts, blobs = encode_payloads(payloads, len(id_list))
        if not id_list:
            return
        id_keys = [user_id_key(user_id) for user_id in id_list]
        sparse_given = check_sparse_batch(sparse, self._points._config.sparse, len(id_list))
        texts = check_documents(documents, len(id_list))
        steps: List[Any] = [self._points._upserting(id_keys, np.ones((len(id_keys), POINTS_DIM), dtype=np.float32),
                                                    payload_dicts, blobs, sparse_given, texts)]
        for name, part in self._parts.items():
            rows, matrix = given.get(name, ([], np.empty((0, part.dim), dtype=np.float32)))
            has = set(rows)
            gone = [id_key for row, id_key in enumerate(id_keys) if row not in has]
            if gone:
                steps.append(part._deleting(gone, None))
            if rows:
                steps.append(part._upserting([id_keys[row] for row in rows], matrix,
                                             [payload_dicts[row] for row in rows], [blobs[row] for row in rows], {},
                                             None if texts is None else [texts[row] for row in rows]))
        self._commit(steps)

    def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """Delete points (with all their vectors) by id and/or by payload
        filter; returns how many were deleted."""
        self._check_live()
        id_list, node = check_delete(ids, filter)
        with self._writing():
            id_keys = self._points._id_keys_to_change([user_id_key(user_id) for user_id in id_list], node)
            if not id_keys:
                return 0
            results = commit_steps(self._points._environment, [
                part._deleting(id_keys, None) for part in self._all_parts()])
        return len(results[0][1])

    def update_payload(self, ids: Any = None, payload: Optional[Dict[str, Any]] = None, *,
                       filter: Optional[Dict[str, Any]] = None, merge: bool = True) -> int:
        """As :meth:`vecdb.Collection.update_payload`."""
        return self._change_payloads(ids, filter, payload_update(payload, merge))

    def delete_payload_keys(self, ids: Any = None, keys: Optional[Sequence[str]] = None, *,
                            filter: Optional[Dict[str, Any]] = None) -> int:
        """As :meth:`vecdb.Collection.delete_payload_keys`."""
        return self._change_payloads(ids, filter, keys_removal(keys))

    def _change_payloads(self, ids: Any, filter: Any, change: Callable[[Dict[str, Any]], Dict[str, Any]]) -> int:
        self._check_live()
        id_list, node = check_delete(ids, filter)
        with self._writing():
            id_keys = self._points._id_keys_to_change([user_id_key(user_id) for user_id in id_list], node)
            if not id_keys:
                return 0
            results = commit_steps(self._points._environment, [
                part._changing_payloads(id_keys, None, change) for part in self._all_parts()])
        return len(results[0][1])

    def _commit(self, steps: List[Any]) -> None:
        with self._writing():
            commit_steps(self._points._environment, steps)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold off this handle's other writes; reads of several parts that
        overlap this one run again."""
        with self._write:
            self._check_live()
            self._generation += 1
            try:
                yield
            finally:
                self._generation += 1

    def create_payload_index(self, field: str, kind: str) -> None:
        """Index a payload field in every part (see
        :meth:`vecdb.Collection.create_payload_index`); if a part refuses,
        the parts indexed already drop it again."""
        self._check_live()
        with self._writing():
            done: List[Collection] = []
            try:
                for part in self._all_parts():
                    existed = field in part.payload_indexes
                    part.create_payload_index(field, kind)
                    if not existed:
                        done.append(part)
            except BaseException:
                for part in done:
                    part.drop_payload_index(field)
                raise

    def drop_payload_index(self, field: str) -> None:
        self._check_live()
        with self._writing():
            self._points.drop_payload_index(field)
            for part in self._parts.values():
                if field in part.payload_indexes:
                    part.drop_payload_index(field)

    def create_text_index(self, field: str, *, language: Optional[str] = "english", stopwords: Any = None,
                          k1: float = 1.2, b: float = 0.75) -> None:
        """As :meth:`vecdb.Collection.create_text_index`."""
        self._check_live()
        with self._writing():
            self._points.create_text_index(field, language=language, stopwords=stopwords, k1=k1, b=b)

    def drop_text_index(self, field: str) -> None:
        self._check_live()
        with self._writing():
            self._points.drop_text_index(field)

    def compact(self) -> int:
        """Compact every vector's index; returns the deleted points reclaimed."""
        self._check_live()
        with self._writing():
            return sum(part.compact() for part in self._parts.values())

    def wait_indexed(self, timeout: Optional[float] = None) -> bool:
        """Wait until every vector's index holds every committed point."""
        self._check_live()
        return all([part.wait_indexed(timeout) for part in self._parts.values()])

    @_naming_vectors
    def train_quantizer(self, using: Optional[str] = None) -> None:
        """Train the PQ codebooks of vector ``using`` again."""
        self._check_live()
        self._part(using).train_quantizer()

    @_naming_vectors
    def learn_rotation(self, using: Optional[str] = None) -> None:
        """Learn the PCA rotation of vector ``using`` again."""
        self._check_live()
        self._part(using).learn_rotation()

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

    @_naming_vectors
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
        """:meth:`vecdb.Collection.search` on vector ``using`` (None: the
        default, the first declared): ``query`` is a vector of its
        dimension, searched among the points that have it, with its index.
        ``with_vector=True`` gives each hit's vectors as ``{name: vector}``
        (those the point has). Text, sparse and hybrid searches work as on
        a collection of one vector (the vector branch on ``using``)."""
        self._check_live()
        query = self._embedded_query(query)
        if group_by is not None:
            return grouped_search(lambda width: self.search(
                query, width, using=using, filter=filter, ef=ef, dims=dims, plan=plan, with_payload=True,
                with_vector=with_vector, with_document=with_document, text=text, text_field=text_field,
                sparse=sparse, fusion=fusion), query, k, group_by, group_size, with_payload)
        part = self._part(using)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        if text is None and text_field is None and sparse is None and fusion is None:
            if not with_vector:
                return part.search(query, k, filter=filter, ef=ef, dims=dims, plan=plan, with_payload=with_payload,
                                   with_document=with_document)
            return self._combined(lambda: self._with_vectors(part.search(
                query, k, filter=filter, ef=ef, dims=dims, plan=plan, with_payload=with_payload,
                with_document=with_document)))
        return self._search_branches(query, text, text_field, sparse, fusion, k, filter, ef, dims, plan, with_payload,
                                     with_vector, using=using, with_document=with_document)

    def _search_branches(self, query: Any, text: Any, text_field: Any, sparse: Any, fusion: Any, k: Any,
                         filter: Any, ef: Any, dims: Any, plan: Any, with_payload: Any, with_vector: Any,
                         corpus: Optional[Corpus] = None, separate: bool = False, using: Optional[str] = None,
                         with_document: Any = False) -> Any:
        """As :meth:`vecdb.Collection._search_branches`: a text or sparse
        search runs on the points part; a hybrid one adds the vector branch
        of vector ``using``, and fuses them here (ties broken by the points'
        order in the points part) unless ``separate`` (each branch's hits,
        scores higher-is-better, for a sharded collection's driver)."""
        part = self._part(using)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        if query is None:  # text or sparse: the points part holds them
            def branches() -> Any:
                found = self._points._search_branches(None, text, text_field, sparse, fusion, k, filter, ef, dims,
                                                      plan, with_payload, False, corpus=corpus, separate=separate,
                                                      with_document=with_document)
                return [self._with_vectors(hits, with_vector) for hits in found] if separate and fusion is not None \
                    else self._with_vectors(found, with_vector)
            return self._combined(branches)
        if fusion is None:
            given = " and ".join(name for name, value in (("text", text), ("sparse", sparse)) if value is not None)
            raise InvalidArgumentError(f"a search by query and {given or 'nothing else'} needs a fusion to combine "
                                       "them: fusion=vecdb.RRF() (or vecdb.DBSF())")
        fusion = fusion_from_dict(fusion)
        k = check_k(k)
        width = fusion.candidates or default_candidates(k)
        others = [branch for branch in (text, sparse) if branch is not None]
        if not others:
            raise InvalidArgumentError("fusion combines two or more searches: give text= or sparse= besides the "
                                       "query vector")
        higher = higher_is_better(part.metric)

        def run() -> Any:
            dense = part.search(query, width, filter=filter, ef=ef, dims=dims, plan=plan, with_payload=with_payload,
                                with_document=with_document)
            if not higher:  # every branch's scores higher-is-better, as fusion and a driver's merge take them
                dense = [replace(hit, score=-hit.score) for hit in dense]
            rest = self._points._search_branches(
                None, text, text_field, sparse, fusion if len(others) > 1 else None, width, filter, None, None,
                None, with_payload, False, corpus=corpus, separate=True, with_document=with_document)
            if separate:
                return [self._with_vectors(hits, with_vector) for hits in [dense, *rest]]
            return self._fused(fusion, [[(hit.id, hit.score) for hit in hits] for hits in [dense, *rest]], k,
                               with_payload, with_vector, check_flag(with_document, "with_document"))

        return self._combined(run)

    def _text_statistics(self, text: Any, text_field: Any = None) -> Corpus:
        self._check_live()
        return self._points._text_statistics(text, text_field)

    def _fused(self, fusion: Fusion, branches: List[List[Tuple[UserId, float]]], k: int, with_payload: bool,
               with_vector: bool, with_document: bool) -> List[Hit]:
        """The best ``k`` points of ``branches`` (ids and higher-is-better
        scores) by fused score."""
        ids = list(dict.fromkeys(user_id for branch in branches for user_id, _ in branch))
        with self._points._environment.read() as txn:  # the points and their labels in one state
            records = {record.id: record for record in self._points._get_in(txn, ids, with_payload, False,
                                                                            with_document)}
            ids = [user_id for user_id in ids if user_id in records]
            labels = dict(zip(ids, self._points._labels_in(txn, ids).tolist()))
        by_label = {label: user_id for user_id, label in labels.items()}
        ranked, scores = fuse(fusion, [(np.array([labels[i] for i, _ in branch if i in labels], dtype=np.int64),
                                        np.array([s for i, s in branch if i in labels], dtype=np.float64))
                                       for branch in branches],
                              branch_weights(fusion, len(branches), vector_first=True), k)
        hits = [Hit(id=by_label[int(label)], score=float(np.float32(score)),
                    payload=records[by_label[int(label)]].payload if with_payload else None,
                    document=records[by_label[int(label)]].document)
                for label, score in zip(ranked, scores)]
        return self._with_vectors(hits, with_vector)

    def _with_vectors(self, points: Any, with_vector: bool = True, txn: Any = None) -> Any:
        """``points`` (hits or records: a list, or one list per query) with
        each point's vectors by name, read in ``txn`` (or a new transaction)."""
        if not with_vector:
            return points
        if txn is None:
            with self._points._environment.read() as txn:
                return self._with_vectors(points, True, txn)
        if points and isinstance(points[0], list):
            return [self._with_vectors(row, True, txn) for row in points]
        found: Dict[UserId, Dict[str, np.ndarray]] = {}
        ids = [point.id for point in points]
        for name, part in self._parts.items():
            for record in part._get_in(txn, ids, False, True):
                assert isinstance(record.vector, np.ndarray)
                found.setdefault(record.id, {})[name] = record.vector
        return [replace(point, vector=found.get(point.id, {})) for point in points]

    def _combined(self, read: Callable[[], T]) -> T:
        """``read`` (of several parts) between two writes of this handle."""
        for _ in range(_COMBINED_ATTEMPTS):
            before = self._generation
            if before % 2 == 0:
                result = read()
                if self._generation == before:
                    return result
        with self._write:
            return read()

    @_naming_vectors
    def recommend(self, positive: Sequence[Any], negative: Optional[Sequence[Any]] = None, k: int = 10, *,
                  filter: Optional[Dict[str, Any]] = None, strategy: str = "average_vector",
                  ef: Optional[int] = None, with_payload: bool = True, with_vector: bool = False,
                  with_document: bool = False, using: Optional[str] = None) -> List[Hit]:
        """:meth:`vecdb.Collection.recommend` on vector ``using``: examples
        given by id use their ``using`` vector (a point without it is
        refused)."""
        self._check_live()
        part = self._part(using)
        with_vector = check_flags(False, with_vector)[1]
        given = [*positive, *(negative or [])] if isinstance(positive, (list, tuple)) and isinstance(
            negative or [], (list, tuple)) else []  # anything else is refused by the part's recommend
        examples = [example for example in given if isinstance(example, (str, int)) and not isinstance(example, bool)]
        if examples:  # a point given by id must have this vector (the part knows only those that do)
            with self._points._environment.read() as txn:
                stored = {record.id for record in self._points._get_in(txn, examples, False, False)}
                lacking = stored - {record.id for record in part._get_in(txn, examples, False, False)}
            if lacking:
                raise InvalidArgumentError(f"example point {sorted(lacking, key=str)[0]!r} has no "
                                           f"{using or next(iter(self._parts))!r} vector")
        hits = part.recommend(positive, negative, k, filter=filter, strategy=strategy, ef=ef,
                              with_payload=with_payload, with_document=with_document)
        return self._combined(lambda: self._with_vectors(hits, with_vector))

    @_naming_vectors
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
        """The plan of a search on vector ``using`` (text and sparse: of the
        points part's branches)."""
        self._check_live()
        if query is None or (text is None and sparse is None and fusion is None and text_field is None):
            target = self._part(using) if query is not None else self._points
            return target.explain(query, k, filter=filter, ef=ef, dims=dims, plan=plan, execute=execute, text=text,
                                  text_field=text_field, sparse=sparse, fusion=fusion)
        raise InvalidArgumentError("explain of a hybrid search is not available on a collection with named vectors "
                                   "yet: explain the vector search (using=...) and the text search apart")

    @_naming_vectors
    def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0,
             using: Optional[str] = None) -> TuneReport:
        """:meth:`vecdb.Collection.tune` for vector ``using``."""
        self._check_live()
        return self._part(using).tune(target_recall, k, queries=queries, seed=seed)

    def get(self, ids: Any, *, with_payload: bool = True,
            with_vector: bool = False, with_document: bool = False) -> List[Record]:
        """The stored points with these ids, in the order asked; with
        ``with_vector``, ``Record.vector`` is ``{name: vector}`` of the
        vectors each has."""
        self._check_live()
        id_list = check_ids(ids, None)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        with_document = check_flag(with_document, "with_document")
        with self._points._environment.read() as txn:  # one state of every part
            records = self._points._get_in(txn, id_list, with_payload, with_vector, with_document)
            return self._with_vectors(records, with_vector, txn)

    def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """Number of points (or of those whose payload matches ``filter``),
        whatever vectors they have."""
        self._check_live()
        return self._points.count(filter)

    def scroll(self, filter: Optional[Dict[str, Any]] = None, limit: int = 100, cursor: Optional[int] = None, *,
               with_payload: bool = True,
               with_vector: bool = False, with_document: bool = False) -> Tuple[List[Record], Optional[int]]:
        """As :meth:`vecdb.Collection.scroll` (vectors as ``{name: vector}``)."""
        self._check_live()
        limit = positive_int(limit, "limit")
        start = 0 if cursor is None else positive_int(cursor, "cursor", 0)
        with_payload, with_vector = check_flags(with_payload, with_vector)
        with_document = check_flag(with_document, "with_document")
        node = None if filter is None else parse_filter(filter)
        with self._points._environment.read() as txn:  # one state of every part
            records, next_cursor = self._points._scroll_in(txn, node, limit, start, with_payload, with_vector,
                                                           with_document)
            return self._with_vectors(records, with_vector, txn), next_cursor

    def stats(self) -> Dict[str, Any]:
        """The points part's counts and text indexes, and each vector's
        index statistics under ``"vectors"``."""
        self._check_live()
        points = self._points.stats()
        vectors = {name: part.stats() for name, part in self._parts.items()}
        for entry in vectors.values():
            entry.pop("payload_indexes", None)
            entry.pop("text_indexes", None)
            entry.pop("name", None)
        return {"name": self.name, "count": points["count"], "sequence": points["sequence"],
                "payload_indexes": points["payload_indexes"], "text_indexes": points["text_indexes"],
                "vectors": vectors}

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

    # ---- the database's upkeep ----

    def _all_parts(self) -> List[Collection]:
        return [self._points, *self._parts.values()]

    def _check_live(self) -> None:
        self._points._check_live()

    def _is_current(self) -> bool:
        return not self._dropped and all(part._is_current() for part in self._all_parts())

    def _mark_dropped(self) -> None:
        self._dropped = True
        for part in self._all_parts():
            part._dropped = True

    def _refresh(self) -> None:
        with self._writing():
            for part in self._all_parts():
                part._refresh()

    def _close(self) -> None:
        for part in self._all_parts():
            part._close()

    @contextmanager
    def _held_for_drop(self) -> Iterator[None]:
        """Every part's writes finished and none to come (dropping it)."""
        with self._write:
            locks = [part._write_lock for part in self._all_parts()]
            for lock in locks:
                lock.__enter__()
            try:
                self._mark_dropped()
                for part in self._all_parts():
                    part._stop_indexing()
                yield
            finally:
                for lock in reversed(locks):
                    lock.__exit__(None, None, None)

