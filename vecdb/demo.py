"""A tour of the embedded API on real sentence embeddings: ``python -m vecdb.demo``.

Loads the npm-minilm-384 sample (50k package descriptions embedded with
all-MiniLM-L6-v2) when it is available, or a synthetic clustered set
otherwise; builds an exact index and an HNSW graph; prints the nearest
descriptions for a few queries, the graph's recall against the exact
answers, and how fast both searched.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

import vecdb

try:  # progress bars when tqdm is installed (it comes with the test and bench extras)
    from tqdm import tqdm as progress
except ImportError:  # pragma: no cover - plain iteration without it
    def progress(items, **_):
        return items

DEFAULT_DATA = Path("..") / "shared" / "data" / "npm-minilm-384"


def load_sample(path: Path) -> Tuple[np.ndarray, np.ndarray, Optional[List[str]], Optional[List[str]], str]:
    """Base vectors, queries, their texts (if any) and a description of the source."""
    if (path / "base.npy").exists():
        base = np.load(path / "base.npy").astype(np.float32)
        queries = np.load(path / "queries.npy").astype(np.float32)
        base_texts = (path / "base_texts.txt").read_text(encoding="utf-8").splitlines()
        query_texts = (path / "query_texts.txt").read_text(encoding="utf-8").splitlines()
        return base, queries, base_texts, query_texts, f"{path} (real embeddings)"
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((64, 384)).astype(np.float32)
    base = centers[rng.integers(0, 64, 20000)] + 0.3 * rng.standard_normal((20000, 384)).astype(np.float32)
    queries = centers[rng.integers(0, 64, 200)] + 0.3 * rng.standard_normal((200, 384)).astype(np.float32)
    return base, queries, None, None, "synthetic clusters (sample data not found)"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vecdb.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with base.npy, queries.npy and texts (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=3, help="queries to show (default: %(default)s)")
    parser.add_argument("-k", type=int, default=5, help="neighbours per query (default: %(default)s)")
    args = parser.parse_args(argv)

    features = vecdb.cpu_features()
    print(f"vecdb {vecdb.__version__}: {features['simd_level']} kernels, {features['threads']} threads")
    base, queries, base_texts, query_texts, source = load_sample(args.data)
    print(f"data: {source}: {base.shape[0]:,} vectors x {base.shape[1]} dims, {queries.shape[0]:,} queries")

    index = vecdb.FlatIndex(base.shape[1], metric="cosine")
    start = time.perf_counter()
    index.add(base)
    print(f"indexed in {time.perf_counter() - start:.2f} s ({index.nbytes / 2**20:.0f} MiB)\n")

    for row in range(min(args.queries, len(queries))):
        ids, distances = index.search(queries[row], k=args.k)
        print(f"query: {query_texts[row] if query_texts else f'#{row}'}")
        for rank, (vid, dist) in enumerate(zip(ids, distances), 1):
            label = base_texts[vid] if base_texts else f"vector {vid}"
            print(f"  {rank}. [{1 - dist:.3f}] {label[:100]}")
        print()

    print(f"exact search, k=10: {throughput(index, queries, {})}")

    graph = vecdb.HNSWIndex(base.shape[1], metric="cosine", M=16, ef_construction=100)
    start = time.perf_counter()
    for chunk in progress(np.array_split(base, 50), desc="building the HNSW graph", unit="chunk"):
        graph.add(chunk)
    print(f"HNSW graph (M=16, ef_construction=100) built in {time.perf_counter() - start:.1f} s "
          f"({graph.nbytes / 2**20:.0f} MiB)")
    exact_ids, _ = index.search(queries, k=10)
    for ef in (16, 64):
        found, _ = graph.search(queries, k=10, ef=ef)
        hits = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact_ids)])
        print(f"HNSW search, k=10, ef={ef}: recall@10 {hits:.3f}; {throughput(graph, queries, {'ef': ef})}")


def throughput(index: Union[vecdb.FlatIndex, vecdb.HNSWIndex], queries: np.ndarray, options: Dict[str, int]) -> str:
    """Queries per second for one batched call and for single queries."""
    start = time.perf_counter()
    index.search(queries, k=10, **options)
    batch_seconds = time.perf_counter() - start
    singles = queries[:200]
    start = time.perf_counter()
    for query in singles:
        index.search(query, k=10, **options)
    single_seconds = (time.perf_counter() - start) / len(singles)
    return (f"{len(queries) / batch_seconds:,.0f} queries/s batched, "
            f"{1000 * single_seconds:.3f} ms per single query")


if __name__ == "__main__":
    main()
