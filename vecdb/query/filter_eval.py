"""Turn a parsed filter into the set of labels it allows, as a boolean mask
for the native search.

Conditions on fields with a payload index are answered from the index (one
key for equality, one cursor walk for a range); the rest in one pass over
the stored payloads, tested in place by the native payload filter (or, for
operands it cannot hold, decoded and tested by :meth:`Filter.matches`, the
reference semantics). Combining is numpy mask algebra over every label ever
given out; negations complement within that range, so ``$ne`` and ``$not``
match records that lack the field, as in MongoDB. Conditions on a point's
document (``$document``) are answered like indexed ones, from one pass over
the stored documents, and combined the same way. The mask may therefore
also allow labels that no longer exist: searches never return those, and
callers that count or list intersect with the stored labels.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import lmdb
import numpy as np

from vecdb.query.filters import DOCUMENT, And, Condition, Filter, Not, Or
from vecdb.query.native_filter import native_filter
from vecdb.storage.collection_store import CollectionStore
from vecdb.storage.payload_index import PayloadIndexes


class FilterEvaluator:
    """Evaluates filters over one collection inside one read transaction."""

    def __init__(self, txn: lmdb.Transaction[bytes], store: CollectionStore, indexes: PayloadIndexes,
                 label_bound: int) -> None:
        self._txn = txn
        self._store = store
        self._indexes = indexes
        self._bound = label_bound  # labels given out so far are below this
        self._payloads: Optional[List[Tuple[int, Dict[str, Any]]]] = None

    def allowed(self, node: Filter) -> np.ndarray:
        """Boolean mask over labels: True where the record matches."""
        if not self._uses_index(node):
            return self._scan(node)
        if isinstance(node, (And, Or)):
            # The children no index answers, tested in one pass over the payloads.
            scanned = [child for child in node.children if not self._uses_index(child)]
            masks = [self.allowed(child) for child in node.children if self._uses_index(child)]
            if scanned:
                masks.append(self._scan(scanned[0] if len(scanned) == 1 else type(node)(tuple(scanned))))
            mask = masks[0]
            for other in masks[1:]:
                mask = mask & other if isinstance(node, And) else mask | other
            return mask
        if isinstance(node, Not):
            return ~self.allowed(node.child)
        labels = self._from_index(node)
        if labels is None:  # an operand the index cannot hold (a number for a keyword field, say)
            return self._scan(node)
        mask = np.zeros(self._bound, dtype=bool)
        mask[labels[labels < self._bound]] = True
        return mask

    def _uses_index(self, node: Filter) -> bool:
        if isinstance(node, (And, Or)):
            return any(self._uses_index(child) for child in node.children)
        if isinstance(node, Not):
            return self._uses_index(node.child)
        return node.path in self._indexes.fields or node.path == DOCUMENT

    def _from_index(self, node: Condition) -> Optional[np.ndarray]:
        if node.path == DOCUMENT:
            return self._from_documents(node)
        if node.operator == "$contains":  # no index holds substrings
            return None
        if node.operator == "$exists":
            return self._indexes.lookup_exists(self._txn, node.path)
        if node.operator == "$eq":
            return self._indexes.lookup_equal(self._txn, node.path, [node.operand])
        if node.operator == "$in":
            return self._indexes.lookup_equal(self._txn, node.path, list(node.operand))
        return self._indexes.lookup_range(self._txn, node.path, node.operator, node.operand)

    def _from_documents(self, node: Condition) -> np.ndarray:
        matching = [label for labels, texts in self._store.document_records(self._txn)
                    for label, text in zip(labels, texts) if node.matches({DOCUMENT: text})]
        return np.array(matching, dtype=np.int64)

    def _scan(self, node: Filter) -> np.ndarray:
        # Records without a stored payload have the empty payload {}.
        mask = np.full(self._bound, node.matches({}), dtype=bool)
        native = native_filter(node)
        if native is None:
            if self._payloads is None:
                self._payloads = list(self._store.payload_records(self._txn))
            for label, payload in self._payloads:
                if label < self._bound:
                    mask[label] = node.matches(payload)
            return mask
        for labels, matches in self._store.payload_matches(self._txn, native, node.matches):
            inside = labels < self._bound
            mask[labels[inside]] = matches[inside]
        return mask
