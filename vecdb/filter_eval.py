"""Turn a parsed filter into the set of labels it allows, as a boolean mask
for the native search.

Conditions on fields with a payload index are answered from the index (one
key for equality, one cursor walk for a range); the rest by decoding the
collection's payloads once and testing each (:meth:`Filter.matches`, the
reference semantics). Combining is numpy mask algebra; negations complement
within the live records, so ``$ne`` and ``$not`` match records that lack
the field, as in MongoDB.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import lmdb
import numpy as np

from vecdb.filters import COMPARISONS, And, Condition, Filter, Not, Or
from vecdb.storage.collection_store import CollectionStore
from vecdb.storage.payload_index import PayloadIndexes


class FilterEvaluator:
    """Evaluates filters over one collection inside one read transaction."""

    def __init__(self, txn: lmdb.Transaction, store: CollectionStore, indexes: PayloadIndexes,
                 live: np.ndarray) -> None:
        self._txn = txn
        self._store = store
        self._indexes = indexes
        self._live = live  # boolean mask of the labels that exist
        self._payloads: Optional[List[Tuple[int, Dict[str, Any]]]] = None

    def allowed(self, node: Filter) -> np.ndarray:
        """Boolean mask over labels: True where the record matches."""
        if isinstance(node, And):
            mask = self._live.copy()
            for child in node.children:
                mask &= self.allowed(child)
            return mask
        if isinstance(node, Or):
            mask = np.zeros_like(self._live)
            for child in node.children:
                mask |= self.allowed(child)
            return mask
        if isinstance(node, Not):
            return self._live & ~self.allowed(node.child)
        labels = self._from_index(node)
        if labels is None:
            return self._scan(node)
        mask = np.zeros_like(self._live)
        mask[labels[labels < len(mask)]] = True
        return mask & self._live

    def _from_index(self, node: Condition) -> Optional[np.ndarray]:
        if node.path not in self._indexes.fields:
            return None
        if node.operator == "$exists":
            present = self._indexes.lookup_exists(self._txn, node.path)
            if node.operand:
                return present
            mask = self._live.copy()
            mask[present[present < len(mask)]] = False
            return np.flatnonzero(mask)
        if node.operator == "$eq":
            return self._indexes.lookup_equal(self._txn, node.path, [node.operand])
        if node.operator == "$in":
            return self._indexes.lookup_equal(self._txn, node.path, list(node.operand))
        if node.operator in COMPARISONS:
            return self._indexes.lookup_range(self._txn, node.path, node.operator, node.operand)
        return None

    def _scan(self, node: Condition) -> np.ndarray:
        if self._payloads is None:
            self._payloads = list(self._store.payload_records(self._txn))
        mask = np.zeros_like(self._live)
        # Records without a stored payload have the empty payload {}.
        if node.matches({}):
            mask |= self._live
            for label, payload in self._payloads:
                if label < len(mask):
                    mask[label] = node.matches(payload)
        else:
            for label, payload in self._payloads:
                if label < len(mask) and node.matches(payload):
                    mask[label] = True
        return mask & self._live
