"""Durable storage on LMDB: the environment, key encodings, one collection's
records and change log, and payload indexes. LMDB is the source of truth;
the in-memory indexes are rebuilt from what is stored here."""
