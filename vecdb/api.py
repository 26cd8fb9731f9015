"""The interface every backend keeps: :class:`DatabaseAPI` and
:class:`CollectionAPI`.

Implemented by the embedded :class:`vecdb.Database` and
:class:`vecdb.Collection` and by the HTTP client's
:class:`vecdb.RemoteDatabase` and :class:`vecdb.RemoteCollection`; a new
backend (a cluster, say) implements them too. Code written against these
Protocols runs on any backend::

    def index_documents(db: vecdb.DatabaseAPI, vectors: np.ndarray) -> None:
        docs = db.get_or_create_collection("docs", dim=vectors.shape[1])
        docs.upsert(ids=list(range(len(vectors))), vectors=vectors)

The contract is more than the signatures: the same arguments, the same
results and the same :mod:`vecdb.errors` classes on every backend (a remote
one re-raises the class the server raised). tests/api/test_protocols.py
checks each implementation against these Protocols parameter by parameter;
the API suite (the ``db`` fixture in tests/conftest.py) runs the same tests
on each backend.

This module names only the shared vocabulary (no native core, no LMDB), so
a client-only install can import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Union, overload,
                    runtime_checkable)

from vecdb.config import PQ, IndexSpec, VectorSpec
from vecdb.fusion import Fusion
from vecdb.plans import Plan
from vecdb.records import Hit, Record
from vecdb.reports import Explanation, TuneReport

if TYPE_CHECKING:  # optional: only text in, to_arrow and to_pandas need them
    import pandas
    import pyarrow

    from vecdb.embeddings import EmbeddingFunction


@runtime_checkable
class CollectionAPI(Protocol):
    """Points (id, vector, payload, sparse vectors), searchable by vector
    similarity, by the text of their payloads (with a text index), by
    sparse vectors, or by several of these fused, and filterable by
    payload. Get one from a :class:`DatabaseAPI`.

    Ids are strings or integers; payloads JSON-like dicts; vectors
    ``dim``-long rows of numbers. Every method validates its input first and
    raises :class:`vecdb.errors.InvalidArgumentError` (or a subclass) before
    changing anything. A handle whose collection was dropped raises
    :class:`vecdb.errors.CollectionNotFoundError`.
    """

    @property
    def name(self) -> str:
        """The collection's name."""

    @property
    def dim(self) -> int:
        """The vector dimension."""

    @property
    def metric(self) -> str:
        """``"cosine"``, ``"ip"`` or ``"l2"``."""

    @property
    def vectors(self) -> Dict[str, VectorSpec]:
        """A collection made with named vectors (``create_collection(name,
        vectors={...})``): each vector's settings, the default first (the
        properties above and below describe the default). Empty for a
        collection of one unnamed vector."""

    @property
    def index(self) -> IndexSpec:
        """The index settings the collection was created with."""

    @property
    def quantization(self) -> Optional[PQ]:
        """The PQ settings the collection was created with (None: none)."""

    @property
    def payload_indexes(self) -> Dict[str, str]:
        """Indexed payload fields and their kinds."""

    @property
    def text_indexes(self) -> Dict[str, Dict[str, Any]]:
        """Text-indexed payload fields and their settings (``language``,
        ``stopwords``, ``k1``, ``b``: the arguments of
        :meth:`create_text_index`)."""

    @property
    def embedding(self) -> Optional["EmbeddingFunction"]:
        """The embedding function of :meth:`add` and text queries (None:
        the collection was created without one; see
        :mod:`vecdb.embeddings`)."""

    def __len__(self) -> int:
        """The number of points (:meth:`count`)."""

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
               sparse: Optional[Dict[str, Any]] = None, documents: Optional[Sequence[Optional[str]]] = None) -> None:
        """Insert points, or replace them (vector, payload, sparse vectors
        and document) where the id exists. ``ids``: distinct string or
        integer ids (or one id with a 1-D vector); ``vectors``: ``(n, dim)``
        or one ``(dim,)``; ``payloads``: None or one dict (or None) per id;
        ``sparse``: ``{name: one sparse vector (or None) per id}`` or
        ``{name: a scipy.sparse matrix}``, for names the collection declares
        (a name left out leaves these points without it); ``documents``:
        None or one string (or None) per id, the points' text, read back
        with ``with_document=True``. All or nothing, and durable when it
        returns."""

    def add(self, ids: Any, documents: Sequence[str], payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
            *, sparse: Optional[Dict[str, Any]] = None, batch_size: int = 512) -> None:
        """Text in: embed ``documents`` (one string per id) with the
        collection's :attr:`embedding` function and upsert them as the
        points' vectors, the documents stored with them. As :meth:`upsert`
        otherwise."""

    def train_quantizer(self, using: Optional[str] = None) -> None:
        """Train the PQ codebooks again on the current vectors and re-index
        with them (collections with ``quantization``). Durable when it
        returns."""

    def learn_rotation(self, using: Optional[str] = None) -> None:
        """Learn the PCA rotation of a ``rotate="pca"`` collection again and
        rebuild its prefix indexes. Durable when it returns."""

    def delete(self, ids: Any = None, *, filter: Optional[Dict[str, Any]] = None) -> int:
        """Delete points by id and/or payload filter; returns how many were
        deleted (missing ids are skipped). Needs ``ids`` or a non-empty
        ``filter``."""

    def update_payload(self, ids: Any = None, payload: Optional[Dict[str, Any]] = None, *,
                       filter: Optional[Dict[str, Any]] = None, merge: bool = True) -> int:
        """Change the payloads of points (by id and/or filter; needs one)
        without sending their vectors: ``merge=True`` sets the keys of
        ``payload`` and keeps the others, ``merge=False`` replaces the whole
        payload. Returns how many points changed (missing ids are
        skipped). All or nothing, and durable when it returns."""

    def delete_payload_keys(self, ids: Any = None, keys: Optional[Sequence[str]] = None, *,
                            filter: Optional[Dict[str, Any]] = None) -> int:
        """Remove ``keys`` (a non-empty list; dotted paths reach into
        objects) from the payloads of points (by id and/or filter); returns
        how many points were found (keys they lack are skipped)."""

    def create_payload_index(self, field: str, kind: str) -> None:
        """Index a payload field (``kind``: ``"keyword"``, ``"integer"``,
        ``"float"`` or ``"bool"``); a value that does not fit the kind is
        refused with :class:`vecdb.errors.InvalidPayloadError`, now or in a
        later upsert."""

    def drop_payload_index(self, field: str) -> None:
        """Remove a payload index (a field without one is left as it is)."""

    def create_text_index(self, field: str, *, language: Optional[str] = "english", stopwords: Any = None,
                          k1: float = 1.2, b: float = 0.75) -> None:
        """Index a payload field's text (a string, or a list of strings) for
        full-text search (``search(text=...)``, ranked by BM25): words split
        at Unicode word boundaries, lowercased, stop words dropped, then
        stemmed; queries are analyzed the same way. ``language``: a Snowball
        stemmer's name (``"english"``, ``"french"``, ...) or None for no
        stemming; ``stopwords``: None for the language's built-in list,
        False for none, or a list of words; ``k1``, ``b``: BM25's
        parameters. A value that is not text is refused with
        :class:`vecdb.errors.InvalidPayloadError`, now or in a later upsert.
        Creating it again with other settings re-indexes the field."""

    def drop_text_index(self, field: str) -> None:
        """Remove a text index (a field without one is left as it is)."""

    def compact(self) -> int:
        """Repair the index around deleted points and free their memory;
        returns how many deleted points' room was reclaimed."""

    def wait_indexed(self, timeout: Optional[float] = None) -> bool:
        """Wait until every point upserted so far is in the graph (searches
        find them before: points waiting are searched exactly); False if
        ``timeout`` seconds passed first."""

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
        """The ``k`` points nearest to ``query`` (best first), optionally
        only among those whose payload matches ``filter``; fewer when fewer
        exist or match. A 1-D query gives a list of :class:`vecdb.Hit`, a
        2-D batch one list per query (a numpy array's type does not say
        which: check ``ndim`` or narrow the result). ``ef``, ``dims`` and
        ``plan`` override the query planner's choice (see :meth:`explain`).
        A search sees each write completely or not at all.

        With ``text`` (a string) and no ``query``, a full-text search
        instead: the ``k`` points whose text ranks best by BM25 for it
        (``Hit.score`` is the BM25 score), among those holding at least one
        of its terms, in the text index ``text_field`` names (needed when
        the collection has more than one; see :meth:`create_text_index`).
        ``ef``, ``dims`` and ``plan`` do not apply to it.

        With ``sparse`` (``{name: vector}``, or the vector alone when the
        collection declares one name; see :mod:`vecdb.sparse`) and no
        ``query``, the ``k`` points with the largest dot product with it,
        among those sharing a dimension with it.

        With ``fusion`` (``vecdb.RRF()``, ``vecdb.DBSF()`` or their dict
        form, see :mod:`vecdb.fusion`), a hybrid search: two or more of
        ``query`` (one vector), ``text`` and ``sparse``, each fetching its
        own candidates under ``filter``, fused; ``Hit.score`` is the fused
        score.

        With ``group_by`` (a payload field), any of these searches (one
        query) returns up to ``k`` :class:`vecdb.Group` objects instead of
        hits, groups best first: the best ``group_size`` hits of each value
        of the field (a list value puts a point in each of its groups;
        points without the field are left out).

        ``using`` names the vector searched in a collection with named
        vectors (None: the default, the first declared); a hit's ``vector``
        is then ``{name: vector}`` of those the point has.

        In a collection with an :attr:`embedding` function, ``query`` may be
        text (a string, or a list of them), embedded first.
        ``with_document=True`` fills each hit's ``document``."""

    def recommend(self, positive: Sequence[Any], negative: Optional[Sequence[Any]] = None, k: int = 10, *,
                  filter: Optional[Dict[str, Any]] = None, strategy: str = "average_vector",
                  ef: Optional[int] = None, with_payload: bool = True, with_vector: bool = False,
                  with_document: bool = False, using: Optional[str] = None) -> List[Hit]:
        """Points like the ``positive`` examples and unlike the ``negative``
        ones, each example a point id (that must exist; such points are
        never returned) or a vector. ``strategy="average_vector"``: one
        search with ``avg(positive) + (avg(positive) - avg(negative))``;
        ``"best_score"``: each point scores its best similarity to a
        positive example, or, if it is nearer a negative one, minus the
        square of that similarity (see :mod:`vecdb.query.recommend`).
        Scores are higher-is-better (l2: negated distances). ``using``: the
        named vector compared (see :meth:`search`)."""

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
        """The plan :meth:`search` would run with these arguments: stages,
        estimated cost, the reason and the alternatives. With
        ``execute=True`` it runs too and each stage reports its measured
        time and output size. A text, sparse or hybrid search is explained
        branch by branch, then its fusion. ``using``: as in :meth:`search`."""

    def tune(self, target_recall: float = 0.95, k: int = 10, *, queries: Any = 200, seed: int = 0,
             using: Optional[str] = None) -> TuneReport:
        """Find the fastest plan whose recall@k reaches ``target_recall`` on
        ``queries`` (a number of stored vectors to sample, or an
        ``(n, dim)`` array) and store it as the default for unfiltered
        searches. The same data and seed give the same report's plans and
        recalls. ``using``: the named vector tuned (see :meth:`search`)."""

    def get(self, ids: Any, *, with_payload: bool = True,
            with_vector: bool = False, with_document: bool = False) -> List[Record]:
        """The stored points with these ids, in the order asked; missing ids
        are left out."""

    def count(self, filter: Optional[Dict[str, Any]] = None) -> int:
        """The number of points, or of points whose payload matches
        ``filter``."""

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
        """Page through points in insertion order: up to ``limit`` records
        and the cursor of the next page (None at the end)."""

    def stats(self) -> Dict[str, Any]:
        """Counts, sequence numbers and index sizes (the keys of
        :meth:`vecdb.Collection.stats`)."""

    def upsert_arrow(self, table: Any, *, id: str = "id", vector: Union[str, Mapping[str, str]] = "vector",
                     payload: Optional[Sequence[str]] = None, document: Optional[str] = None,
                     batch_size: int = 1000) -> int:
        """Upsert the rows of an Arrow table (needs pyarrow): a
        ``pyarrow.Table``, ``RecordBatch`` or ``RecordBatchReader``, a
        ``pandas.DataFrame`` (its index too when named) or any object with
        ``__arrow_c_stream__`` (polars, DuckDB). Returns the number of rows.

        Columns: ``id`` (integers or strings); ``vector``, a
        ``fixed_size_list`` (or lists of equal length) of numbers, float32
        ones used without a copy; in a collection with named vectors, a
        struct column with a field per vector name (as :meth:`to_arrow`
        writes it) or ``{vector name: column}``, null where a point lacks
        it; ``document``: a string column, the points' documents;
        ``payload``: the columns making each point's payload (None: every
        other column), null cells left out. See :mod:`vecdb.arrow`.

        Columns and types are checked before anything is written. Then one
        all-or-nothing ``upsert`` per ``batch_size`` rows: a bad row (a null
        id or vector, a ragged vector, an id seen before in the table)
        stops it at its batch, the batches before it staying written (the
        error says which rows were); upserting the table again replaces
        them."""

    def to_arrow(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                 with_payload: bool = True, with_document: bool = False) -> pyarrow.Table:
        """The points (those matching ``filter``), in insertion order, as a
        ``pyarrow.Table`` (needs pyarrow): ``id``; ``vector``, a
        ``fixed_size_list<float32>[dim]`` over one numpy array (named
        vectors: a struct column, a field per name); ``document`` with
        ``with_document``; then each payload key as a column (JSON text
        where its values do not share one Arrow type). :meth:`upsert_arrow`
        reads it back unchanged. See :mod:`vecdb.arrow`."""

    def to_pandas(self, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                  with_payload: bool = True, with_document: bool = False) -> pandas.DataFrame:
        """:meth:`to_arrow` as a ``pandas.DataFrame`` (needs pandas)."""


@runtime_checkable
class DatabaseAPI(Protocol):
    """Named collections. A context manager: leaving the ``with`` block
    closes it."""

    def __enter__(self) -> DatabaseAPI:
        """The database itself."""

    def __exit__(self, *exc_info: Any) -> None:
        """:meth:`close`."""

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
        embedding: Optional["EmbeddingFunction"] = None,
        exist_ok: bool = False,
    ) -> CollectionAPI:
        """Create a collection of ``dim``-dimensional vectors (``name``: 1-128
        letters, digits, ``-`` or ``_``; ``metric``: ``"cosine"``, ``"ip"``
        or ``"l2"``; ``index``: ``vecdb.HNSW()`` (the default) or
        ``vecdb.Flat()``; ``quantization``: ``vecdb.PQ(...)``; ``mrl_dims``:
        prefix sizes below ``dim``; ``rotate``: ``"pca"``; ``sparse``: names
        of the sparse vectors its points may have, e.g. ``["splade"]``); or,
        instead of ``dim`` and the index settings, ``vectors``: several named
        vectors per point, ``{name: vecdb.VectorSpec(dim, metric, index=...,
        ...)}``, each with its own index (see :meth:`CollectionAPI.search`'s
        ``using``). ``embedding``: an embedding function
        (:mod:`vecdb.embeddings`) for text in (``dim`` may then be left
        out). An existing name
        raises :class:`vecdb.errors.CollectionExistsError`, unless
        ``exist_ok`` and its settings match."""

    def get_or_create_collection(self, name: str, dim: Optional[int] = None, metric: str = "cosine", *,
                                 index: Optional[IndexSpec] = None, quantization: Optional[PQ] = None,
                                 mrl_dims: Optional[Sequence[int]] = None,
                                 rotate: Optional[str] = None,
                                 sparse: Optional[Sequence[str]] = None,
                                 vectors: Optional[Dict[str, VectorSpec]] = None,
                                 embedding: Optional["EmbeddingFunction"] = None) -> CollectionAPI:
        """:meth:`create_collection` with ``exist_ok=True``."""

    def get_collection(self, name: str, embedding: Optional["EmbeddingFunction"] = None) -> CollectionAPI:
        """An existing collection (:class:`vecdb.errors.CollectionNotFoundError`
        if none has that name). ``embedding``: its embedding function, when
        it was created with one that is not ready-made (those are found by
        themselves)."""

    def list_collections(self) -> List[str]:
        """The collections' names, sorted."""

    def describe(self) -> List[Dict[str, Any]]:
        """Every collection's settings and point count, without loading any
        index."""

    def drop_collection(self, name: str) -> None:
        """Delete a collection and everything in it; its handles then raise
        :class:`vecdb.errors.CollectionNotFoundError`."""

    def compact(self) -> int:
        """Give the space deleted points and dropped collections left back
        to the disk; returns the bytes freed."""

    def backup(self, destination: Union[str, os.PathLike]) -> Path:
        """Write one consistent archive of the whole database to
        ``destination`` (a new file, or a folder: an existing one or a path
        ending in a separator) and return its path. Never overwrites a file
        (:class:`vecdb.errors.BackupExistsError`)."""

    def refresh(self) -> None:
        """See everything committed so far (a backend that always reads the
        current state does nothing)."""

    def close(self) -> None:
        """Release what the handle holds; closing twice is harmless."""
