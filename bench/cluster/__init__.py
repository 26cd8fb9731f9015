"""The cluster benchmark: ``vecdb.cluster`` with 1, 2 and 4 shards, with and without a read
replica, against the embedded database in the same run: the Ray hop per single search, the
overhead on batches, what a replica adds under concurrent clients, merged recall, ingest
points/s. Run ``python -m bench.cluster --help``."""
