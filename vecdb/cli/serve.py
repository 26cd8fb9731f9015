"""``vecdb serve``: the database over HTTP (uvicorn running the FastAPI app)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import click

from vecdb.errors import VecdbError


@click.command()
@click.option("--path", type=click.Path(file_okay=False, path_type=Path), default=Path("vecdb-data"),
              show_default=True, help="Database folder (created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback needs --api-key (or --insecure).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--api-key", envvar="VECDB_API_KEY", default=None, show_envvar=True,
              help="Require this key (Authorization: Bearer <key> or X-API-Key) on every route but /healthz and "
                   "/readyz. At least 16 characters.")
@click.option("--read-only-key", envvar="VECDB_READ_ONLY_KEY", default=None, show_envvar=True,
              help="A second key that may search and read but not write.")
@click.option("--insecure", is_flag=True, help="Allow binding a non-loopback interface without an API key.")
@click.option("--max-body-bytes", default=64 * 2**20, show_default=True, type=click.IntRange(1),
              help="Larger request bodies get 413.")
@click.option("--max-k", default=10_000, show_default=True, type=click.IntRange(1), help="Largest k of a search.")
@click.option("--max-batch", default=100_000, show_default=True, type=click.IntRange(1),
              help="Most points per upsert, queries per batch search, records per get or scroll page.")
@click.option("--max-hits", default=1_000_000, show_default=True, type=click.IntRange(1),
              help="Most results per search request (queries x k).")
@click.option("--max-payload-bytes", default=2**20, show_default=True, type=click.IntRange(1),
              help="Largest payload of one point (MessagePack-encoded).")
@click.option("--max-upload-bytes", default=64 * 2**30, show_default=True, type=click.IntRange(1),
              help="Largest backup archive accepted by PUT /v1/backups/{name}.")
@click.option("--search-threads", default=None, type=click.IntRange(1),
              help="Threads running searches [default: the number of cores, at least 2].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Processes answering on the port: this one writes, the others open the folder read-only, "
                   "answer reads and pass writes on to it (each holds its own copy of the indexes in RAM).")
@click.option("--cluster", is_flag=True,
              help="Serve a cluster database (vecdb.cluster): shards on Ray, their folders under --path.")
@click.option("--shards", default=None, type=click.IntRange(1),
              help="With --cluster: shards of a new cluster [default: 2; an existing one keeps its own].")
@click.option("--replicas", default=0, show_default=True, type=click.IntRange(0),
              help="With --cluster: read replicas per shard (more actors answering searches).")
@click.option("--ray-address", default=None,
              help='With --cluster: the Ray cluster to run on ("auto": the one this machine belongs to) '
                   "[default: start a local one].")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log a line per request (costs ~5-9% of the server's CPU under load here; /metrics counts "
                   "requests per route either way).")
def serve(path: Path, host: str, port: int, api_key: Optional[str], read_only_key: Optional[str], insecure: bool,
          max_body_bytes: int, max_k: int, max_batch: int, max_hits: int, max_payload_bytes: int,
          max_upload_bytes: int, search_threads: Optional[int], workers: int, cluster: bool, shards: Optional[int], replicas: int,
          ray_address: Optional[str], log_level: str, access_log: bool) -> None:
    """Serve the database at --path over HTTP until SIGTERM or Ctrl-C.

    REST over JSON or MessagePack, the embedded API's resources:
    collections, points, search, explain, tune, payload indexes; /healthz,
    /readyz, /metrics (Prometheus), /openapi.json and interactive docs at
    /docs. Python clients use vecdb.connect("http://HOST:PORT").

    On SIGTERM or SIGINT the server stops accepting connections, finishes
    the requests in flight, snapshots the indexes and closes the database.
    Every write acknowledged with a 2xx is durable, even under kill -9.

    With --cluster it serves a cluster database instead (pip install
    "vecdb-engine[ray]"): the same API over shards, each an embedded
    database served by a Ray actor (see vecdb.cluster.open).

    \b
    Examples:
      vecdb serve --path ./data
      vecdb serve --path ./data --workers 2
      VECDB_API_KEY=$(openssl rand -hex 24) vecdb serve --path ./data --host 0.0.0.0
      vecdb serve --path ./cluster --cluster --shards 4 --replicas 1
      vecdb serve --path /shared/cluster --cluster --ray-address auto
    """
    try:
        import uvicorn

        from vecdb.server import ServerSettings, create_app
        from vecdb.server.workers import listen, serve_with_workers, uvicorn_config
        from vecdb.server.settings import is_loopback
        from vecdb.server.state import ServedDatabase, progress_log
    except ImportError as exc:
        raise click.ClickException(f'vecdb serve needs the server extra: pip install "vecdb-engine[server]" ({exc})')
    if not is_loopback(host) and api_key is None and not insecure:
        raise click.UsageError(f"refusing to serve on {host} without an API key: anyone who can reach it could read "
                               "and change everything. Pass --api-key (or VECDB_API_KEY), bind 127.0.0.1, or say "
                               "--insecure.")
    from vecdb.database import open as open_database

    try:
        settings = ServerSettings(api_key=api_key, read_only_key=read_only_key, max_body_bytes=max_body_bytes,
                                  max_k=max_k, max_batch=max_batch, max_hits=max_hits,
                                  max_payload_bytes=max_payload_bytes, max_upload_bytes=max_upload_bytes)
        if search_threads is not None:
            settings = replace(settings, search_threads=search_threads)
        if cluster and workers > 1:
            raise click.UsageError("--workers goes without --cluster (a cluster scales out with --replicas)")
        if cluster:
            from vecdb.cluster import open as open_cluster

            sharded = open_cluster(path, shards, replicas=replicas, address=ray_address)
            database: ServedDatabase = sharded
            served = f"a cluster of {sharded.shards} shard(s) in {path.resolve()}"
        elif shards is not None or replicas or ray_address is not None:
            raise click.UsageError("--shards, --replicas and --ray-address go with --cluster")
        else:
            database, served = open_database(path, progress=progress_log), str(path.resolve())
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    except VecdbError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"vecdb: serving {served} on http://{host}:{port} (docs: /docs)"
               + ("" if api_key else "; no API key") + (f"; {workers} worker processes" if workers > 1 else ""),
               err=True)
    # The app closes the database when uvicorn shuts it down (its lifespan).
    if workers == 1:
        uvicorn.Server(uvicorn_config(create_app(database, settings), log_level, access_log, host=host,
                                      port=port)).run()
        return
    try:
        listener = listen(host, port)
    except OSError as exc:
        database.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    serve_with_workers(database, settings, listener, workers, log_level, access_log)
