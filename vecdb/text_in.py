"""Text in: a collection that embeds its points' documents and its queries
itself, with the embedding function it was created with
(:mod:`vecdb.embeddings`).

One implementation for every backend (embedded, named vectors, remote,
cluster): :class:`TextIn` turns ``add(ids, documents)`` into an upsert of
the documents' embeddings with the documents, and a string query into its
embedding. Embedding runs where the caller is (a remote client embeds on
its side, as Chroma's does); the server stores only the function's config,
so every handle to the collection finds the same function again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, cast

import numpy as np

from vecdb.checks import check_documents
from vecdb.errors import InvalidArgumentError
from vecdb.progress import Progress, terminal_bars

if TYPE_CHECKING:
    from vecdb.embeddings import EmbeddingFunction


class TextIn:
    """The text-in half of a collection: mixed into each backend's
    collection class, which calls :meth:`_attach_embedding` when it opens
    and :meth:`_embedded_query` at the start of a search."""

    if TYPE_CHECKING:  # what the collection class it is mixed into provides
        @property
        def name(self) -> str: ...

        @property
        def dim(self) -> int: ...

        def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
                   sparse: Optional[Dict[str, Any]] = None,
                   documents: Optional[Sequence[Optional[str]]] = None) -> Any: ...  # a coroutine in async

    _embedding: Optional["EmbeddingFunction"] = None
    _embedding_config: Optional[Dict[str, Any]] = None
    _embedding_progress: Progress = terminal_bars

    @property
    def embedding(self) -> Optional["EmbeddingFunction"]:
        """The function that embeds this collection's documents and text
        queries (None: it was created without one). A ready-made function
        (:mod:`vecdb.embeddings`) is rebuilt from its stored config the
        first time it is needed."""
        if self._embedding is None and self._embedding_config is not None:
            from vecdb.embeddings import from_config

            self._embedding = from_config(self._embedding_config)
        return self._embedding

    def _attach_embedding(self, stored: Optional[Dict[str, Any]], given: Optional["EmbeddingFunction"]) -> None:
        """Use ``given`` (passed to ``get_collection``) or, failing that, the
        function ``stored`` (the collection's config) describes; a given
        function must be the one the collection was created with."""
        if given is not None:
            check_embedding(given, self.dim)
            if stored is not None and given.name != stored.get("name"):
                raise InvalidArgumentError(
                    f"collection {self.name!r} was created with the embedding function {stored.get('name')!r}, "
                    f"not {given.name!r}: its vectors would not be comparable")
        self._embedding = given
        self._embedding_config = stored

    def add(self, ids: Any, documents: Sequence[str], payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
            *, sparse: Optional[Dict[str, Any]] = None, batch_size: int = 512) -> None:
        """Text in: embed ``documents`` (one string per id) with the
        collection's embedding function, ``batch_size`` texts per call (a
        progress bar on a terminal for big adds), and upsert them as the
        points' vectors, with the documents stored beside their payloads
        (``with_document=True`` reads them back). Otherwise as
        :meth:`upsert`: all or nothing, durable when it returns."""
        ids, texts, vectors = self._embedded_documents(ids, documents, batch_size)
        self.upsert(ids, vectors, payloads, sparse=sparse, documents=texts)

    def _embedded_documents(self, ids: Any, documents: Any, batch_size: int) -> Tuple[Any, List[str], np.ndarray]:
        """``add``'s ids and documents, checked, and the documents' embeddings."""
        function = self._require_embedding("add documents")
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):  # one id (and its document)
            ids, documents = [ids], [documents] if isinstance(documents, str) else documents
        texts = check_documents(documents, len(ids))
        if texts is None or any(text is None for text in texts):
            raise InvalidArgumentError("add needs a document (a string) per id; upsert takes vectors without one")
        from vecdb.embeddings import embed_batches

        return ids, cast(List[str], texts), embed_batches(function, texts, batch_size=batch_size,
                                                          progress=self._embedding_progress)

    def _embedded_query(self, query: Any) -> Any:
        """A search's ``query``: text (a string, or a list of them: a batch)
        as its embedding; anything else as it is."""
        if isinstance(query, str):
            return self._embed([query])[0]
        if is_text_batch(query):
            return self._embed(list(query))
        return query

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        function = self._require_embedding("search by text")
        from vecdb.embeddings import embed_batches

        return embed_batches(function, texts)

    def _require_embedding(self, action: str) -> "EmbeddingFunction":
        function = self.embedding
        if function is None:
            raise InvalidArgumentError(
                f"collection {self.name!r} has no embedding function to {action}: create it with "
                "embedding=vecdb.embeddings.WordLlama() (or another), or reopen it with "
                "get_collection(name, embedding=...); search(text=...) is full-text (BM25) search")
        return function


def is_text_batch(query: Any) -> bool:
    """Whether a search's ``query`` is a batch of texts (to embed)."""
    return isinstance(query, (list, tuple)) and bool(query) and all(isinstance(item, str) for item in query)


class DescribedEmbedding:
    """An embedding function known by its config alone (what a server is
    given and stores: clients embed), which cannot embed here."""

    def __init__(self, config: Dict[str, Any], dim: int) -> None:
        if not isinstance(config, dict) or not isinstance(config.get("name"), str) or not config["name"]:
            raise InvalidArgumentError(f"an embedding function's config is a dict with a 'name', got {config!r}")
        self.name: str = config["name"]
        self.dim = dim
        self._config = dict(config)

    def config(self) -> Dict[str, Any]:
        return dict(self._config)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        raise InvalidArgumentError(f"the embedding function {self.name!r} cannot run here: embed where it is "
                                   "installed (a client embeds the documents it sends)")


def embedding_config(function: "EmbeddingFunction") -> Dict[str, Any]:
    """What a collection stores of its embedding function: its config (with
    its name; checked by :func:`check_embedding`)."""
    return check_embedding(function, None).config()


def check_embedding(function: Any, dim: Optional[int]) -> "EmbeddingFunction":
    """``function`` if it is an embedding function (of dimension ``dim``,
    when given)."""
    from vecdb.embeddings import check_embedding_function

    if not isinstance(function, DescribedEmbedding):
        check_embedding_function(function)
    if dim is not None and function.dim != dim:
        raise InvalidArgumentError(f"the embedding function {function.name!r} makes {function.dim}-dimensional "
                                   f"vectors, the collection holds {dim}-dimensional ones")
    return function


def embedding_dim(dim: Optional[int], embedding: Any) -> Optional[int]:
    """A new collection's dimension: ``dim``, or the embedding function's
    when ``dim`` is left out."""
    if embedding is None:
        return dim
    return check_embedding(embedding, dim).dim
