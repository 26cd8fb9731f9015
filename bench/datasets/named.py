"""Datasets the harness knows by name, stored outside the repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.datasets.dataset import Dataset
from bench.datasets.npy_folder import load_npy_folder
from bench.paths import SHARED_DATA_DIR


@dataclass(frozen=True)
class NamedDataset:
    """Where a named dataset lives and the metric its ground truth was made with."""

    folder: Path
    metric: str
    description: str


NAMED_DATASETS = {
    "npm-minilm-384": NamedDataset(
        folder=SHARED_DATA_DIR / "npm-minilm-384",
        metric="cosine",
        description="50k npm package descriptions embedded by all-MiniLM-L6-v2, 384-d, 1k queries",
    ),
}


def load_named(name: str) -> Dataset:
    """Load a named dataset, or explain where its files were expected."""
    entry = NAMED_DATASETS[name]
    if not entry.folder.is_dir():
        raise FileNotFoundError(
            f"dataset {name} expects its files in {entry.folder} "
            "(../shared/data relative to the repository root); that folder does not exist"
        )
    return load_npy_folder(entry.folder, metric=entry.metric, name=name)
