"""Sparse vectors (SPLADE, BM42 or any learned sparse model's output): a
point's few nonzero dimensions and their values.

A collection declares them by name at creation
(``create_collection(..., sparse=["splade"])``); an upsert gives them per
point (``sparse={"splade": [...]}``); a search by one ranks points by dot
product (``search(sparse={"splade": vector})``), exactly, on the same
native inverted index as full text.

A sparse vector is given as :class:`SparseVector`, a dict
``{"indices": [...], "values": [...]}``, an ``(indices, values)`` pair, or,
for a whole batch, a ``scipy.sparse`` matrix (one row per point). Indices
are dimension numbers in [0, 2**32), strictly increasing (sorted, no
repeats); values are finite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from vecdb.errors import InvalidArgumentError, InvalidDTypeError

MAX_INDEX = 2**32 - 1
MAX_NONZEROS = 65_536  # per vector: a sparse vector past this is a dense one
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

# A checked sparse vector: uint32 indices (strictly increasing), float32 values.
Checked = Tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class SparseVector:
    """Nonzero dimensions (``indices``) and their ``values``."""

    indices: Sequence[int]
    values: Sequence[float]

    def to_dict(self) -> Dict[str, List[Any]]:
        return {"indices": [int(i) for i in self.indices], "values": [float(v) for v in self.values]}


def check_sparse_names(names: Any) -> Tuple[str, ...]:
    """A collection's sparse vector names (``sparse=`` of create_collection)."""
    if names is None:
        return ()
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise InvalidArgumentError(f"sparse must be a list of names, e.g. ['splade'], got {names!r}")
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidArgumentError(f"sparse vector names are 1-64 letters, digits, '-' or '_'; got {name!r}")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"sparse vector names repeat: {list(names)}")
    return tuple(names)


def check_sparse(vector: Any, what: str = "sparse vector") -> Checked:
    """One sparse vector, checked: InvalidArgumentError naming what is
    wrong (unsorted or repeated indices, negative ones, mismatched lengths,
    NaN values...)."""
    if isinstance(vector, SparseVector):
        indices, values = vector.indices, vector.values
    elif isinstance(vector, Mapping):
        if set(vector) != {"indices", "values"}:
            raise InvalidArgumentError(f"{what} must have exactly 'indices' and 'values', got keys {sorted(vector)}")
        indices, values = vector["indices"], vector["values"]
    elif isinstance(vector, tuple) and len(vector) == 2:
        indices, values = vector
    else:
        raise InvalidDTypeError(f"{what} must be vecdb.SparseVector, {{'indices': [...], 'values': [...]}} or an "
                                f"(indices, values) pair; got {type(vector).__name__}")
    index_array = np.asarray(indices)
    value_array = np.asarray(values)
    if index_array.ndim != 1 or value_array.ndim != 1:
        raise InvalidArgumentError(f"{what}: indices and values must be flat lists")
    if len(index_array) != len(value_array):
        raise InvalidArgumentError(f"{what} has {len(index_array)} indices and {len(value_array)} values")
    if len(index_array) > MAX_NONZEROS:
        raise InvalidArgumentError(f"{what} has {len(index_array):,} nonzeros; at most {MAX_NONZEROS:,}")
    if len(index_array) and (index_array.dtype.kind not in "iu" and not (
            index_array.dtype.kind == "f" and np.array_equal(index_array, np.floor(index_array)))):
        raise InvalidDTypeError(f"{what}: indices must be integers, got {index_array.dtype}")
    if len(value_array) and value_array.dtype.kind not in "iuf":
        raise InvalidDTypeError(f"{what}: values must be numbers, got {value_array.dtype}")
    if len(index_array):
        if index_array.min() < 0 or index_array.max() > MAX_INDEX:
            raise InvalidArgumentError(f"{what}: indices must be in [0, 2**32), got {index_array.min()}..{index_array.max()}")
        steps = np.diff(index_array.astype(np.int64))
        if (steps <= 0).any():
            position = int(np.flatnonzero(steps <= 0)[0])
            problem = "repeated" if steps[position] == 0 else "not sorted"
            raise InvalidArgumentError(f"{what}: indices must be strictly increasing; index {int(index_array[position + 1])} "
                                       f"at position {position + 1} is {problem}")
    checked_values = value_array.astype(np.float32)
    if not np.isfinite(checked_values).all():
        raise InvalidArgumentError(f"{what}: values must be finite (no NaN or infinity)")
    return index_array.astype(np.uint32), checked_values


def check_sparse_batch(given: Any, names: Sequence[str], count: int) -> Dict[str, List[Optional[Checked]]]:
    """An upsert's ``sparse=``: ``{name: one vector (or None) per point, or a
    scipy.sparse matrix}``, each name declared by the collection."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InvalidArgumentError("sparse must be a dict: {name: [one sparse vector (or None) per point]}")
    found: Dict[str, List[Optional[Checked]]] = {}
    for name, vectors in given.items():
        if name not in names:
            raise InvalidArgumentError(f"sparse vector {name!r} is not declared by the collection (declared: "
                                       f"{', '.join(names) or 'none'}; create_collection(..., sparse=[...]))")
        rows = _matrix_rows(vectors) if hasattr(vectors, "tocsr") else vectors
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
            raise InvalidArgumentError(f"sparse[{name!r}] must be a list with one sparse vector (or None) per point")
        if len(rows) != count:
            raise InvalidArgumentError(f"sparse[{name!r}] has {len(rows)} vectors for {count} ids")
        found[name] = [None if row is None else check_sparse(row, f"sparse[{name!r}][{position}]")
                       for position, row in enumerate(rows)]
    return found


def check_sparse_query(given: Any, names: Sequence[str]) -> Tuple[str, Checked]:
    """A search's ``sparse=``: ``{name: vector}`` (one name), or a vector
    alone when the collection declares one name."""
    if isinstance(given, Mapping) and set(given) != {"indices", "values"}:
        if len(given) != 1:
            raise InvalidArgumentError(f"sparse must name one sparse vector: {{name: vector}}, got {len(given)}")
        name, vector = next(iter(given.items()))
        if name not in names:
            raise InvalidArgumentError(f"sparse vector {name!r} is not declared by the collection (declared: "
                                       f"{', '.join(names) or 'none'})")
    elif len(names) == 1:
        name, vector = names[0], given
    else:
        raise InvalidArgumentError("the collection declares " + (f"sparse vectors {', '.join(names)}: say which, "
                                   "sparse={name: vector}" if names else "no sparse vectors: "
                                   "create_collection(..., sparse=['name'])"))
    indices, values = check_sparse(vector, "sparse query")
    if not len(indices):
        raise InvalidArgumentError("sparse query is empty: give at least one nonzero dimension")
    return name, (indices, values)


def _matrix_rows(matrix: Any) -> List[Optional[Tuple[np.ndarray, np.ndarray]]]:
    """A scipy.sparse matrix's rows as (indices, values) pairs (sorted)."""
    csr = matrix.tocsr(copy=True)
    csr.sum_duplicates()  # sorts each row's indices too
    return [(csr.indices[csr.indptr[row]:csr.indptr[row + 1]], csr.data[csr.indptr[row]:csr.indptr[row + 1]])
            for row in range(csr.shape[0])]
