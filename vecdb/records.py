"""What collection reads return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import numpy as np

UserId = Union[str, int]


# Plain (not frozen) dataclasses: a search builds one Hit per result, and a
# frozen dataclass takes four times as long to construct.
@dataclass
class Hit:
    """One search result.

    ``score`` is the cosine similarity (``"cosine"``), the dot product
    (``"ip"``), both higher-is-better, or the Euclidean distance (``"l2"``,
    lower is better, not squared). Hits are always ordered best first.
    ``payload`` is None unless requested, ``vector`` likewise (in a
    collection with named vectors, ``{name: vector}`` of those the point
    has), ``document`` too (``with_document=True``: the point's document, or
    None if it has none).
    """

    id: UserId
    score: float
    payload: Optional[Dict[str, Any]] = None
    vector: Optional[Union[np.ndarray, Dict[str, np.ndarray]]] = None
    # A class attribute too: the native search builds hits without __init__
    # and sets only the four fields above (csrc/bindings/ids.cpp).
    document: Optional[str] = None


@dataclass
class Record:
    """A stored point: its id, payload (``{}`` when it has none) and, if
    requested, its vector (float32, as given; ``{name: vector}`` of those it
    has in a collection with named vectors) and, in a collection that
    declares sparse vectors, the ones it has (``{name: SparseVector}``);
    with ``with_document=True``, its document (None if it has none)."""

    id: UserId
    payload: Optional[Dict[str, Any]] = None
    vector: Optional[Union[np.ndarray, Dict[str, np.ndarray]]] = None
    sparse: Optional[Dict[str, Any]] = None
    document: Optional[str] = None


@dataclass
class Group:
    """The best hits of one value of a search's ``group_by`` field (e.g.
    the chunks of one document), best first; groups come best first too,
    by their best hit."""

    key: Any
    hits: List[Hit]
