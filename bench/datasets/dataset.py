"""The Dataset record every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bench.vectors import check_metric


@dataclass(frozen=True)
class Dataset:
    """Base vectors, query vectors and the metric they are searched with.

    ``neighbors`` / ``distances`` hold ground truth shipped with the dataset, when there is
    any; distances follow vecdb's convention (l2: squared L2, ip: 1 - dot, cosine: 1 - cos).
    The harness computes its own ground truth with ``vecdb.knn`` and only checks it against
    the shipped one.
    """

    name: str
    base: np.ndarray
    queries: np.ndarray
    metric: str
    neighbors: np.ndarray | None = None
    distances: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_metric(self.metric)
        for label, array in (("base", self.base), ("queries", self.queries)):
            if array.ndim != 2 or array.dtype != np.float32 or not array.flags.c_contiguous:
                raise ValueError(
                    f"dataset {self.name}: {label} must be a C-contiguous 2-D float32 array, "
                    f"got shape {array.shape} dtype {array.dtype}"
                )
        if self.base.shape[1] != self.queries.shape[1]:
            raise ValueError(
                f"dataset {self.name}: base dim {self.base.shape[1]} != query dim {self.queries.shape[1]}"
            )
        for label, truth in (("neighbors", self.neighbors), ("distances", self.distances)):
            if truth is not None and (truth.ndim != 2 or truth.shape[0] != self.queries.shape[0]):
                raise ValueError(
                    f"dataset {self.name}: {label} must have one row per query, got shape {truth.shape}"
                )

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.base.shape[1])

    @property
    def n_base(self) -> int:
        """Number of base vectors."""
        return int(self.base.shape[0])

    @property
    def n_queries(self) -> int:
        """Number of query vectors."""
        return int(self.queries.shape[0])

    def first_queries(self, count: int) -> "Dataset":
        """The same dataset keeping only the first ``count`` queries (and their ground truth rows)."""
        if count >= self.n_queries:
            return self
        return replace(
            self,
            queries=np.ascontiguousarray(self.queries[:count]),
            neighbors=None if self.neighbors is None else self.neighbors[:count],
            distances=None if self.distances is None else self.distances[:count],
        )
