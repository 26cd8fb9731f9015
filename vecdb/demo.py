"""A tour of the embedded API on real sentence embeddings: ``python -m vecdb.demo``.

Loads the npm-minilm-384 sample (50k package descriptions embedded with
all-MiniLM-L6-v2) when it is available, or a synthetic clustered set
otherwise; builds an exact index; prints the nearest descriptions for a few
queries and how fast the search ran.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

import vecdb

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

    start = time.perf_counter()
    index.search(queries, k=10)
    batch_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for query in queries[:100]:
        index.search(query, k=10)
    single_seconds = (time.perf_counter() - start) / min(100, len(queries))
    print(f"exact search, k=10: {len(queries) / batch_seconds:,.0f} queries/s batched, "
          f"{1000 * single_seconds:.2f} ms per single query")


if __name__ == "__main__":
    main()
