"""Hybrid search (vector + BM25 text, fused) against dense-only search: python -m bench.hybrid."""
