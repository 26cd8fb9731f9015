"""A tour of vecdb on real sentence embeddings: ``python -m vecdb.cli.demo``.

Loads the npm-minilm-384 sample (50k package descriptions embedded with
all-MiniLM-L6-v2) when it is available, or a synthetic clustered set
otherwise; stores it in a collection (descriptions as payloads) in a database
folder, reopens it, and prints the nearest descriptions for a few queries,
with and without a payload filter, then the HNSW graph's recall against
exact search and how fast both ran. A second run finds the collection
already there and skips the ingest.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import List, Optional, Tuple, cast

import numpy as np
from tqdm import tqdm

import vecdb

DEFAULT_DATA = Path("..") / "shared" / "data" / "npm-minilm-384"
DEFAULT_DB = Path(".vecdb-demo")
BATCH = 1000


def load_sample(path: Path) -> Tuple[np.ndarray, np.ndarray, List[str], Optional[List[str]], str]:
    """Base vectors, queries, base texts, query texts (if any) and a description of the source."""
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
    texts = [f"synthetic vector {i}" for i in range(len(base))]
    return base, queries, texts, None, "synthetic clusters (sample data not found)"


def ingest(db: vecdb.Database, base: np.ndarray, texts: List[str]) -> vecdb.Collection:
    """The demo collection, filled once (later runs reuse it)."""
    col = db.get_or_create_collection("demo", dim=base.shape[1], metric="cosine",
                                      index=vecdb.HNSW(M=16, ef_construction=100))
    if col.count() == len(base):
        print(f"collection 'demo' already holds {len(base):,} points (delete {db.path} to ingest again)")
        return col
    col.create_payload_index("words", "integer")
    start = time.perf_counter()
    for first in tqdm(range(0, len(base), BATCH), desc="upserting", unit_scale=BATCH, unit=" points"):
        rows = range(first, min(first + BATCH, len(base)))
        col.upsert(ids=list(rows), vectors=base[first:first + BATCH],
                   payloads=[{"text": texts[i], "words": len(texts[i].split())} for i in rows])
    seconds = time.perf_counter() - start
    print(f"ingested {len(base):,} points durably in {seconds:.1f} s ({len(base) / seconds:,.0f} points/s)")
    return col


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vecdb.cli.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with base.npy, queries.npy and texts (default: %(default)s)")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="database folder (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=3, help="queries to show (default: %(default)s)")
    parser.add_argument("-k", type=int, default=5, help="neighbours per query (default: %(default)s)")
    args = parser.parse_args(argv)

    features = vecdb.cpu_features()
    print(f"vecdb {vecdb.__version__}: {features['simd_level']} kernels, {features['threads']} threads")
    base, queries, base_texts, query_texts, source = load_sample(args.data)
    print(f"data: {source}: {base.shape[0]:,} vectors x {base.shape[1]} dims, {queries.shape[0]:,} queries")

    with vecdb.open(args.db) as db:
        ingest(db, base, base_texts)
    start = time.perf_counter()
    db = vecdb.open(args.db)
    col = db.get_collection("demo")
    col.search(queries[0], k=1)
    stats = col.stats()
    print(f"reopened {args.db} and answered a first query in {time.perf_counter() - start:.2f} s "
          f"(index from: {stats['index_source']}; {stats['index_memory_bytes'] / 2**20:.0f} MiB in memory)\n")

    for row in range(min(args.queries, len(queries))):
        print(f"query: {query_texts[row] if query_texts else f'#{row}'}")
        for rank, hit in enumerate(col.search(queries[row], k=args.k), 1):
            print(f"  {rank}. [{hit.score:.3f}] {hit.payload['text'][:100]}")
        short = col.search(queries[row], k=args.k, filter={"words": {"$lte": 4}})
        print("  with filter={'words': {'$lte': 4}}:")
        for rank, hit in enumerate(short, 1):
            print(f"  {rank}. [{hit.score:.3f}] {hit.payload['text'][:100]}")
        print()

    exact = vecdb.FlatIndex(base.shape[1], metric="cosine")
    exact.add(base)
    exact_ids, _ = exact.search(queries, k=10)
    print(f"exact search (FlatIndex), k=10: {throughput(lambda q: exact.search(q, k=10), queries)}")
    for ef in (16, 64):
        # A 2-D batch: one list of hits per query (an array's type does not say how many dimensions it has).
        hits = cast(List[List[vecdb.Hit]], col.search(queries, k=10, ef=ef, with_payload=False))
        found = [{hit.id for hit in row} for row in hits]
        recall = np.mean([len(f & set(e.tolist())) / 10 for f, e in zip(found, exact_ids)])
        timing = throughput(lambda q: col.search(q, k=10, ef=ef, with_payload=False), queries)
        print(f"collection search (HNSW), k=10, ef={ef}: recall@10 {recall:.3f}; {timing}")
    db.close()


def throughput(search, queries: np.ndarray) -> str:
    """Queries per second for one batched call and for single queries."""
    start = time.perf_counter()
    search(queries)
    batch_seconds = time.perf_counter() - start
    singles = queries[:200]
    start = time.perf_counter()
    for query in singles:
        search(query)
    single_seconds = (time.perf_counter() - start) / len(singles)
    return (f"{len(queries) / batch_seconds:,.0f} queries/s batched, "
            f"{1000 * single_seconds:.3f} ms per single query")


if __name__ == "__main__":
    main()
