"""Datasets stored as a folder of .npy files: base.npy, queries.npy and optional ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.datasets.dataset import Dataset


def load_npy_folder(folder: str | Path, metric: str, name: str | None = None) -> Dataset:
    """Load ``base.npy`` and ``queries.npy`` (any float or int dtype, cast to float32).

    ``neighbors.npy`` and ``distances.npy``, when present, become the shipped ground truth.
    """
    folder = Path(folder)
    missing = [f for f in ("base.npy", "queries.npy") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {', '.join(missing)}")
    neighbors_path, distances_path = folder / "neighbors.npy", folder / "distances.npy"
    return Dataset(
        name=name or folder.name,
        base=load_npy_matrix(folder / "base.npy"),
        queries=load_npy_matrix(folder / "queries.npy"),
        metric=metric,
        neighbors=np.load(neighbors_path) if neighbors_path.is_file() else None,
        distances=np.load(distances_path) if distances_path.is_file() else None,
    )


def load_npy_matrix(path: str | Path) -> np.ndarray:
    """Load a 2-D .npy file as a C-contiguous float32 matrix (float16 storage is widened)."""
    matrix = np.load(path)
    if matrix.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array, got shape {matrix.shape}")
    return np.ascontiguousarray(matrix, dtype=np.float32)
