"""Dataset specifications as typed on the command line, and loading them.

A spec is one of:

- a known name, e.g. ``npm-minilm-384``;
- ``synthetic:N:DIM[:METRIC]``, e.g. ``synthetic:100000:128:l2`` (metric defaults to l2);
- ``synthetic-mrl:N:DIM[:METRIC]``, e.g. ``synthetic-mrl:200000:768:cosine``: the same
  mixture with a decaying per-dimension scale, so prefixes are coarse embeddings (Matryoshka
  data; see ``bench.datasets.synthetic_mrl``; metric defaults to cosine);
- a path: a folder with base.npy and queries.npy, an ann-benchmarks ``.hdf5`` file, or a
  TEXMEX ``<prefix>_base.fvecs`` / ``.bvecs`` file.

Specs are parsed once in the parent process and sent to each worker, which loads the data
again itself: paths are made absolute so the worker's working directory does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.datasets.ann_hdf5 import load_ann_hdf5
from bench.datasets.dataset import Dataset
from bench.datasets.named import NAMED_DATASETS, load_named
from bench.datasets.npy_folder import load_npy_folder
from bench.datasets.synthetic import make_synthetic
from bench.datasets.synthetic_mrl import make_synthetic_mrl
from bench.datasets.texmex import load_texmex_dataset
from bench.vectors import check_metric

SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_MRL_PREFIX = "synthetic-mrl:"
# Generator and default metric per synthetic spec prefix.
_SYNTHETIC_KINDS = {
    SYNTHETIC_PREFIX: (make_synthetic, "l2"),
    SYNTHETIC_MRL_PREFIX: (make_synthetic_mrl, "cosine"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to load the same dataset again in another process.

    ``metric`` overrides a path dataset's default metric (l2, or the HDF5 file's own).
    ``query_limit`` keeps only the first queries. ``synthetic_queries`` and ``seed`` shape
    synthetic datasets.
    """

    text: str
    metric: str | None = None
    query_limit: int | None = None
    synthetic_queries: int = 1000
    seed: int = 0


def resolve_spec_text(text: str) -> str:
    """Validate a spec's text and make a path absolute; raise ValueError with the accepted forms."""
    if text in NAMED_DATASETS or _synthetic_prefix(text) is not None:
        return text
    path = Path(text).expanduser()
    if path.exists():
        return str(path.resolve())
    raise ValueError(
        f"dataset {text!r} is not a known name ({', '.join(NAMED_DATASETS)}), "
        "not synthetic:N:DIM[:METRIC] or synthetic-mrl:N:DIM[:METRIC], and not an existing path"
    )


def _synthetic_prefix(text: str) -> str | None:
    """The synthetic spec prefix ``text`` starts with, or None."""
    return next((prefix for prefix in _SYNTHETIC_KINDS if text.startswith(prefix)), None)


def _load_synthetic(spec: DatasetSpec, prefix: str) -> Dataset:
    generator, default_metric = _SYNTHETIC_KINDS[prefix]
    fields = spec.text[len(prefix):].split(":")
    if len(fields) not in (2, 3) or not all(f.isdigit() for f in fields[:2]):
        raise ValueError(f"bad synthetic spec {spec.text!r}; expected {prefix}N:DIM[:METRIC]")
    metric = check_metric(fields[2] if len(fields) == 3 else spec.metric or default_metric)
    return generator(int(fields[0]), int(fields[1]), metric, n_queries=spec.synthetic_queries, seed=spec.seed)


def _load_path(spec: DatasetSpec) -> Dataset:
    path = Path(spec.text)
    if path.is_dir() or path.name == "base.npy":
        folder = path if path.is_dir() else path.parent
        return load_npy_folder(folder, metric=spec.metric or "l2")
    if path.suffix in (".hdf5", ".h5"):
        return load_ann_hdf5(path, metric=spec.metric)
    if path.suffix in (".fvecs", ".bvecs"):
        return load_texmex_dataset(path, metric=spec.metric or "l2")
    raise ValueError(
        f"{path}: expected a folder with base.npy and queries.npy, an ann-benchmarks .hdf5 file, "
        "or a TEXMEX <prefix>_base.fvecs/.bvecs file"
    )


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Load the dataset ``spec`` names, limited to ``spec.query_limit`` queries when set."""
    synthetic_prefix = _synthetic_prefix(spec.text)
    if spec.text in NAMED_DATASETS:
        dataset = load_named(spec.text)
    elif synthetic_prefix is not None:
        dataset = _load_synthetic(spec, synthetic_prefix)
    else:
        dataset = _load_path(spec)
    if spec.metric is not None and spec.metric != dataset.metric:
        raise ValueError(
            f"dataset {dataset.name} is defined with metric {dataset.metric}; "
            f"--metric {spec.metric} cannot change it"
        )
    return dataset if spec.query_limit is None else dataset.first_queries(spec.query_limit)
