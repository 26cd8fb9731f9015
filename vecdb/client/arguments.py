"""A client method's arguments in their wire form (vecdb.wire): vectors
as float32 bytes, settings and plans as dicts. Values are checked by the
server, so what does not fit goes as given (or as its repr), for the
server to refuse with the embedded error."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from vecdb.checks import check_documents
from vecdb.config import VectorSpec, index_to_dict
from vecdb.fusion import DBSF, RRF, fusion_to_dict
from vecdb.plans import Funnel, Graph, Prefix, Scan, plan_to_dict
from vecdb.sparse import SparseVector, _matrix_rows
from vecdb.wire import vector_to_wire


def vectors(values: Any, dim: Optional[int], batch: bool) -> Any:
    """Numeric arrays of the right shape travel as float32 bytes; anything
    else as given, for the server to refuse with the embedded error
    (``dim`` None: a named vector the collection lacks). (numpy scalars and
    arrays anywhere in a request become plain values in
    vecdb.wire.encode_msgpack.)"""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        return values
    if array.dtype.kind in "fiu" and array.ndim == (2 if batch else 1) and array.shape[-1] == dim:
        return vector_to_wire(array, binary=True)
    return array.tolist() if array.dtype.kind in "fiub" else values


def rank(value: Any) -> int:
    """numpy's ndim, or 2 for a ragged batch (the server refuses it as the
    embedded API does)."""
    try:
        return np.ndim(value)
    except ValueError:
        return 2


def examples(given: Any, dim: Optional[int]) -> Any:
    """A recommend's examples: ids as they are, vectors as float32 bytes
    (what is neither goes as given, for the server to refuse)."""
    if isinstance(given, (str, bytes, dict, np.ndarray)) or not hasattr(given, "__iter__"):
        return given
    return [example if isinstance(example, (str, int, np.integer)) else vectors(example, dim, batch=False)
            for example in given]


def sizes(given: Any) -> Any:
    """Prefix sizes (or names): any iterable, as the embedded API takes them."""
    if given is None or isinstance(given, (str, bytes, dict)) or not hasattr(given, "__iter__"):
        return given
    return list(given)


def vector_settings(dim: Any, metric: Any, index: Any, quantization: Any, mrl_dims: Any,
                    rotate: Any) -> Dict[str, Any]:
    """A vector's settings in the body of a collection's creation."""
    return {"dim": dim, "metric": metric, "index": None if index is None else _settings(index, index_to_dict),
            "quantization": None if quantization is None else _settings(quantization, asdict),
            "mrl_dims": sizes(mrl_dims), "rotate": rotate}


def vector_specs(given: Any) -> Any:
    """Named vectors' settings, ``{name: settings}`` (what is not a dict of
    VectorSpec goes as its repr, for the server to refuse)."""
    if not isinstance(given, Mapping):
        return given if given is None else repr(given)
    return {name: vector_settings(spec.dim, spec.metric, spec.index, spec.quantization, spec.mrl_dims, spec.rotate)
            if isinstance(spec, VectorSpec) else repr(spec) for name, spec in given.items()}


def _settings(value: Any, to_dict: Callable[[Any], Any]) -> Any:
    try:
        return to_dict(value)
    except TypeError:  # not the settings object: let the server say so
        return repr(value)


def _sparse_vector(vector: Any) -> Any:
    """A sparse vector in its wire form, ``{"indices": [...], "values":
    [...]}`` (SparseVector, pair or dict; what is none of them goes as
    given, for the server to refuse)."""
    if isinstance(vector, SparseVector):
        return {"indices": vector.indices, "values": vector.values}
    if isinstance(vector, tuple) and len(vector) == 2:
        return {"indices": vector[0], "values": vector[1]}
    return vector


def sparse_batch(given: Any) -> Any:
    """An upsert's ``sparse=``: per name, a list of wire vectors (a
    scipy.sparse matrix's rows, or each vector given)."""
    if not isinstance(given, Mapping):
        return given
    wire = {}
    for name, batch in given.items():
        rows = _matrix_rows(batch) if hasattr(batch, "tocsr") else batch
        wire[name] = [_sparse_vector(row) for row in rows] if isinstance(rows, (list, tuple)) else rows
    return wire


def sparse_query(given: Any) -> Any:
    """A search's ``sparse=``: ``{name: vector}`` or the vector alone."""
    if isinstance(given, Mapping) and set(given) != {"indices", "values"}:
        return {name: _sparse_vector(vector) for name, vector in given.items()}
    return _sparse_vector(given)


def plan(given: Any) -> Any:
    return plan_to_dict(given) if isinstance(given, (Scan, Graph, Funnel, Prefix)) else given


def fusion(given: Any) -> Any:
    return fusion_to_dict(given) if isinstance(given, (RRF, DBSF)) else given


def documents(given: Any) -> Any:
    """An upsert's documents as the wire carries them; checked here as the
    collection checks them (a lone surrogate cannot even be sent), but for
    their count, which the server checks against the ids."""
    if isinstance(given, (list, tuple)):
        return check_documents(given, len(given))
    return given
