"""The full-text benchmark: BM25 top-k search in vecdb (its native inverted index and the
collection above it) against bm25s and tantivy, on the same analyzed terms, one thread,
one query per call. Run ``python -m bench.text --help``."""
