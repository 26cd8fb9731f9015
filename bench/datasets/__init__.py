"""Datasets for the benchmark: the Dataset record, file loaders, synthetic data, specs."""

from bench.datasets.dataset import Dataset
from bench.datasets.spec import DatasetSpec, load_dataset, resolve_spec_text

__all__ = ["Dataset", "DatasetSpec", "load_dataset", "resolve_spec_text"]
