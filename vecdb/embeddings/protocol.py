"""What an embedding function is (:class:`EmbeddingFunction`) and the checks
every use of one goes through: texts in, an ``(n, dim)`` float32 array out.

A collection stores its embedding function's :meth:`~EmbeddingFunction.config`
and calls the function on the documents it is given and on text queries; a
user's own function is checked here as strictly as a ready-made one, since a
wrong shape or a NaN would otherwise surface far away, inside an index.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Protocol, Sequence, runtime_checkable

import numpy as np

from vecdb.errors import DimensionMismatchError, InvalidArgumentError, InvalidDTypeError


@runtime_checkable
class EmbeddingFunction(Protocol):
    """Turns texts into vectors.

    ``name`` is a stable identifier of the vectors it makes (model and
    dimension: ``"hashing/64"``, ``"wordllama/l2_supercat_256"``), stored
    with a collection so a later session can tell whether it is given the
    same function. ``config()`` is what the collection stores: JSON-able,
    with ``"name"``, never a secret such as an API key; for a ready-made
    function :func:`vecdb.embeddings.from_config` rebuilds it from that.
    """

    @property
    def name(self) -> str:
        """Stable identifier of the model (and dimension) that makes the vectors."""

    @property
    def dim(self) -> int:
        """Length of every vector."""

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors, row ``i`` embedding ``texts[i]``."""

    def config(self) -> Dict[str, Any]:
        """JSON-able settings, with ``"name"``, stored with a collection."""


def check_embedding_function(function: Any) -> EmbeddingFunction:
    """``function`` if it is a usable :class:`EmbeddingFunction` (a
    non-empty ``name``, a positive ``dim``, a JSON-able ``config()`` with the
    same name), else :class:`~vecdb.errors.InvalidDTypeError` or
    :class:`~vecdb.errors.InvalidArgumentError` saying what is missing."""
    if not isinstance(function, EmbeddingFunction):
        raise InvalidDTypeError(
            f"an embedding function needs name, dim, __call__(texts) and config(), got {type(function).__name__}")
    name, dim = function.name, function.dim
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"an embedding function's name must be a non-empty string, got {name!r}")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise InvalidArgumentError(f"embedding function {name!r}: dim must be a positive integer, got {dim!r}")
    config = function.config()
    if not isinstance(config, dict) or config.get("name") != name:
        raise InvalidArgumentError(
            f"embedding function {name!r}: config() must be a dict whose 'name' is {name!r}, got {config!r}")
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"embedding function {name!r}: config() must be JSON-able ({exc})") from None
    return function


def check_texts(texts: Any) -> List[str]:
    """``texts`` as a list of str; a lone string or anything else is refused
    (a str is itself a sequence of one-letter strings)."""
    if isinstance(texts, (str, bytes)):
        raise InvalidDTypeError("expected a list of texts, got a single string: wrap it in a list")
    try:
        texts = list(texts)
    except TypeError:
        raise InvalidDTypeError(f"expected a list of texts, got {type(texts).__name__}") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidDTypeError(f"texts[{i}] is {type(text).__name__}, not str: only text can be embedded")
    return texts


def check_embeddings(function: EmbeddingFunction, count: int, output: Any) -> np.ndarray:
    """``function``'s output for ``count`` texts as a C-contiguous float32
    ``(count, function.dim)`` array; a wrong shape, a non-numeric result or
    a NaN/infinity is an error naming the function."""
    try:
        vectors = np.asarray(output)
    except (TypeError, ValueError):  # ragged rows
        raise InvalidArgumentError(f"embedding function {function.name!r} returned rows of different lengths") from None
    if vectors.dtype.kind not in "fiu" or vectors.dtype == np.bool_:
        raise InvalidDTypeError(
            f"embedding function {function.name!r} returned {vectors.dtype} values, expected float32 numbers")
    if vectors.shape != (count, function.dim):
        raise DimensionMismatchError(
            f"embedding function {function.name!r} returned an array of shape {vectors.shape} for {count} texts, "
            f"expected ({count}, {function.dim}) (one row of dim {function.dim} per text)")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused next
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        row = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise InvalidArgumentError(
            f"embedding function {function.name!r} returned NaN or infinity (first in row {row} of {count})")
    return vectors


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (float32, C-contiguous) with each row scaled to length 1,
    in place; an all-zero row (a text without words) stays zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors
