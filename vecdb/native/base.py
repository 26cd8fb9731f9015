"""What every in-memory index wrapper shares: a native object and the
properties read straight from it."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from vecdb.native.arrays import as_matrix, check_threads


class NativeIndex:
    """Base of the Python index classes; ``_native`` is the _core object."""

    _native: Any

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._native.dim

    @property
    def metric(self) -> str:
        """Canonical metric name."""
        return self._native.metric

    @property
    def nbytes(self) -> int:
        """Bytes of memory the index holds (vectors, norms, links)."""
        return self._native.memory_bytes

    def __len__(self) -> int:
        return self._native.size

    def _add(self, vectors: Any, dtype: str, threads: Optional[int]) -> np.ndarray:
        matrix, _ = as_matrix(vectors, dtype, self.dim, "vectors")
        first = self._native.add(matrix, check_threads(threads))
        return np.arange(first, first + matrix.shape[0], dtype=np.int64)
