"""The durable-collection benchmark: ingest rate (vecdb collections against
the native index alone and against Chroma's PersistentClient), reopen time and
first-query latency, and filtered search at several selectivities.
Run ``python -m bench.durable --help``."""
