"""Ray's own round trip on this machine: an actor method that returns the bytes it is given,
called one at a time from this process. A cluster search makes at least one such call per
shard, so this is the floor under the Ray hop, whatever vecdb does around it."""

from __future__ import annotations

import contextlib
from typing import Iterator

from bench.cluster.clients import ClientRun, run_clients

# About the size of a pickled single-query search request (a 384-d float32 vector and options).
PAYLOAD_BYTES = 1600


@contextlib.contextmanager
def echo_actor() -> Iterator[object]:
    """An actor like a shard's (its own process, no CPU reserved, threaded) that answers
    with its argument; killed on exit. Needs Ray started (a cluster opened) first."""
    import ray
    from vecdb.cluster.actors import SHARD_CONCURRENCY

    class Echo:
        def echo(self, payload: bytes) -> bytes:
            return payload

    actor = ray.remote(Echo).options(num_cpus=0, max_concurrency=SHARD_CONCURRENCY).remote()  # type: ignore[attr-defined]
    try:
        ray.get(actor.echo.remote(b""))
        yield actor
    finally:
        ray.kill(actor)


def time_round_trip(actor: object, warmup: float, duration: float) -> ClientRun:
    """Back-to-back echo calls from one client for ``warmup`` + ``duration`` seconds."""
    import ray

    payload = bytes(PAYLOAD_BYTES)
    return run_clients(lambda item: ray.get(actor.echo.remote(payload)), 1, 1, warmup, duration)  # type: ignore[attr-defined]
