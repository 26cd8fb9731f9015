"""The server load benchmark: ``vecdb serve`` against Chroma's own server (``chroma run``)
with 1, 8 and 32 concurrent clients sending k=10 searches at equal recall, in JSON and
MessagePack, next to vecdb's embedded search. Run ``python -m bench.server --help``."""
