"""Checks of one call's arguments (ids, query vectors, flags, overrides),
shared by every backend that validates before it does anything: the
embedded :class:`vecdb.Collection` and the cluster's collection, which must
refuse bad input before any shard sees it, with the same errors."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Set, Tuple, Union

import numpy as np

from vecdb import _core
from vecdb.checks import MAX_INT_PARAMETER, MAX_K, check_k, positive_int
from vecdb.config import CollectionSettings
from vecdb.errors import DuplicateIdError, InvalidArgumentError, InvalidDTypeError
from vecdb.native.arrays import as_matrix
from vecdb.plans import Plan, check_plan
from vecdb.query.filters import Filter, parse_filter
from vecdb.records import UserId
from vecdb.storage.keys import check_user_id


def check_ids(ids: Any, expected: Optional[int]) -> List[UserId]:
    """``ids`` as a list of checked ids (one id becomes a list of one);
    with ``expected`` (a write), exactly that many and no repeats."""
    if isinstance(ids, (str, int, np.integer)):
        ids = [ids]
    if isinstance(ids, np.ndarray):
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)):
        raise InvalidDTypeError(f"ids must be a list of strings or integers, got {type(ids).__name__}")
    checked = [check_user_id(user_id) for user_id in ids]
    if expected is not None and len(checked) != expected:
        raise InvalidArgumentError(f"got {len(checked)} ids for {expected} vectors")
    if expected is not None and len(set(checked)) != len(checked):
        seen: Set[UserId] = set()
        for user_id in checked:
            if user_id in seen:
                raise DuplicateIdError(f"id {user_id!r} appears more than once in the batch")
            seen.add(user_id)
    return checked


def check_upsert(ids: Any, vectors: Any, dim: int) -> Tuple[List[UserId], np.ndarray]:
    """An upsert's ids and its ``(n, dim)`` float32 vectors (one id with a
    1-D vector is a batch of one)."""
    if isinstance(vectors, Mapping):
        raise InvalidArgumentError("this collection has one unnamed vector, so its vectors are an (n, dim) array; "
                                   "vectors by name ({name: vectors}) need a collection created with vectors=")
    matrix, single = as_matrix(vectors, "float32", dim, "vectors")
    id_list = check_ids([ids] if single and not isinstance(ids, (list, tuple, np.ndarray)) else ids,
                        matrix.shape[0])
    check_finite(matrix)
    return id_list, matrix


def check_search(query: Any, k: int, ef: Optional[int], filter: Any,
                 dim: int) -> Tuple[np.ndarray, bool, int, Optional[int], Optional[Filter]]:
    """A search's queries (as a matrix, and whether one 1-D query was
    given), ``k``, ``ef`` and parsed filter."""
    # Plain ints in range pass without a call: this runs on every search.
    if type(k) is not int or not 0 < k <= MAX_K:
        k = check_k(k)
    if ef is not None and (type(ef) is not int or not 0 < ef <= MAX_INT_PARAMETER):
        ef = positive_int(ef, "ef")
    queries, single = as_matrix(query, "float32", dim, "query")
    check_finite(queries, "query")
    return queries, single, k, ef, None if filter is None else parse_filter(filter)


def check_tuning_queries(queries: Any, dim: int) -> Union[int, np.ndarray]:
    """``tune``'s queries: how many stored vectors to sample, or an array."""
    if isinstance(queries, (int, np.integer)) and not isinstance(queries, bool):
        return positive_int(queries, "queries")
    matrix, _ = as_matrix(queries, "float32", dim, "queries")
    check_finite(matrix, "queries")
    return matrix


def check_recall(target: Any) -> float:
    if isinstance(target, bool) or not isinstance(target, (int, float, np.floating, np.integer)) \
            or not 0.0 < float(target) <= 1.0:
        raise InvalidArgumentError(f"target_recall must be a number in (0, 1], got {target!r}")
    return float(target)


def check_overrides(dims: Any, plan: Any) -> Tuple[Optional[int], Optional[Plan]]:
    return (None if dims is None else positive_int(dims, "dims")), (None if plan is None else check_plan(plan))


# A text query past this is not a query (BM25 over thousands of terms walks
# most of the index); the HTTP body limit bounds the rest.
MAX_TEXT_CHARS = 100_000


def check_text(text: Any) -> str:
    """A text query: a non-empty string (not only whitespace)."""
    if not isinstance(text, str):
        raise InvalidDTypeError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidArgumentError("text is empty: give words to search for")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidArgumentError(f"text has {len(text):,} characters; at most {MAX_TEXT_CHARS:,}")
    return text


def check_branches(query: Any, text: Any, text_field: Any, sparse: Any, fusion: Any, ef: Any, dims: Any,
                   plan: Any) -> None:
    """A search by text, sparse vector, or several fused: the combination
    of what it was given makes sense (each part is checked on its own)."""
    given = [name for name, value in (("query", query), ("text", text), ("sparse", sparse)) if value is not None]
    if fusion is None and len(given) > 1:
        raise InvalidArgumentError(f"a search by {' and '.join(given)} needs a fusion to combine them: "
                                   "fusion=vecdb.RRF() (or vecdb.DBSF())")
    if fusion is not None and len(given) < 2:
        raise InvalidArgumentError("fusion combines two or more searches: give two or more of query=, text= "
                                   "and sparse=")
    if query is None and (ef is not None or dims is not None or plan is not None):
        raise InvalidArgumentError("ef, dims and plan apply to vector searches; this one has no query vector")
    if text is None and text_field is not None:
        raise InvalidArgumentError("text_field names the text index text= searches; give text= too")


def check_flags(with_payload: Any, with_vector: Any) -> Tuple[bool, bool]:
    return check_flag(with_payload, "with_payload"), check_flag(with_vector, "with_vector")


def check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidDTypeError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_finite(matrix: np.ndarray, what: str = "vectors") -> None:
    """``matrix`` (C-contiguous, as :func:`as_matrix` returns it) holds no NaN or infinity."""
    row = _core.first_nonfinite_row(matrix)
    if row >= 0:
        raise InvalidArgumentError(f"{what} row {row} contains NaN or infinity")


def check_delete(ids: Any, filter: Any) -> Tuple[List[UserId], Optional[Filter]]:
    """A delete's ids (possibly none) and parsed filter; it needs one."""
    if ids is None and filter is None:
        raise InvalidArgumentError("delete needs ids=[...] or filter={...} (use drop_collection to delete everything)")
    if isinstance(filter, dict) and not filter:
        raise InvalidArgumentError("delete(filter={}) would delete every point; use drop_collection to delete "
                                   "everything")
    return ([] if ids is None else check_ids(ids, None)), (None if filter is None else parse_filter(filter))


# A named upsert's vectors, checked: per vector name given, the rows (the
# points' positions in the batch) that have it, and their vectors.
NamedRows = Dict[str, Tuple[List[int], np.ndarray]]


def resolve_vector(collection: str, vectors: Mapping[Optional[str], CollectionSettings],
                   using: Any) -> Tuple[Optional[str], CollectionSettings]:
    """The vector ``using`` names (None: the default, the first) and its
    settings; ``vectors`` is ``{None: settings}`` for a collection of one
    unnamed vector, which ``using`` cannot name."""
    default = next(iter(vectors))
    if using is None:
        return default, vectors[default]
    if default is None:
        raise InvalidArgumentError(f"collection {collection!r} has one unnamed vector, so using={using!r} names "
                                   "nothing (using= picks a vector of a collection created with vectors=)")
    if not isinstance(using, str) or using not in vectors:
        raise InvalidArgumentError(f"collection {collection!r} has no vector {using!r}; its vectors are "
                                   f"{', '.join(map(repr, vectors))}")
    return using, vectors[using]


def check_named_vectors(collection: str, vectors: Mapping[Optional[str], CollectionSettings], given: Any,
                        ids: List[Any]) -> NamedRows:
    """An upsert's ``{name: vectors}`` for points ``ids``: each value an
    ``(n, dim)`` array-like, or a list with a vector or None per id."""
    if not isinstance(given, dict):
        raise InvalidArgumentError(
            f"collection {collection!r} has named vectors ({', '.join(map(str, vectors))}): give vectors as "
            f"{{name: vectors}}, e.g. {{{next(iter(vectors))!r}: [[...], ...]}}")
    checked: NamedRows = {}
    for using, value in given.items():
        name, settings = resolve_vector(collection, vectors, using)
        assert name is not None, "a collection of named vectors"
        rows = list(range(len(ids)))
        if isinstance(value, (list, tuple)) and any(vector is None for vector in value):
            if len(value) != len(ids):
                raise InvalidArgumentError(f"vectors[{using!r}] has {len(value)} entries for {len(ids)} ids")
            rows = [row for row, vector in enumerate(value) if vector is not None]
            value = [value[row] for row in rows]
        if rows:
            checked[name] = (rows, check_upsert([ids[row] for row in rows], value, settings.dim)[1])
    return checked
