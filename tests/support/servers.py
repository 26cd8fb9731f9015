"""vecdb servers for tests: in this process on a thread (fast: the API
suite starts one per test), or as a real `vecdb serve` process (signals,
kill -9, the command line)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional

import httpx
import uvicorn

import vecdb
from vecdb.server import ServerSettings, create_app


@contextlib.contextmanager
def serve_in_thread(path: Path, settings: ServerSettings = ServerSettings()) -> Iterator[str]:
    """Serve a database opened at ``path`` on a free loopback port; yields
    the URL. The server closes the database when it stops."""
    with _running(create_app(vecdb.open(path), settings), _loopback_socket()) as url:
        yield url


@contextlib.contextmanager
def serve_reader_in_threads(path: Path, settings: ServerSettings = ServerSettings()) -> Iterator[str]:
    """What one reader process of ``vecdb serve --workers N`` serves, in this
    process: the writer's app on a private Unix socket, and a reader's app
    (the folder opened read-only) on a free loopback port, passing writes
    on to it. Yields the reader's URL: every read it answers must catch up
    with writes made through it."""
    with tempfile.TemporaryDirectory(prefix="vecdb-test-") as folder:
        writer_socket = os.path.join(folder, "writer.sock")
        writes = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        writes.bind(writer_socket)
        with _running(create_app(vecdb.open(path), settings), writes):
            reader = create_app(vecdb.open(path, read_only=True), settings, writer_socket=writer_socket)
            with _running(reader, _loopback_socket()) as url:
                yield url


def _loopback_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def _running(app, sock: socket.socket) -> Iterator[str]:
    """``app`` served by uvicorn on a thread on ``sock`` until the block ends;
    yields its URL once it is ready (a loopback socket's; a Unix socket is
    not waited for)."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}" if sock.family == socket.AF_INET else ""
        if url:
            wait_ready(url, lambda: not thread.is_alive())
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_ready(url: str, failed=lambda: False, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if failed():
            raise RuntimeError(f"server at {url} stopped while starting")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} not ready after {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m vecdb serve ...` in a child process."""

    def __init__(self, path: Path, *options: str, port: Optional[int] = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command: List[str] = [sys.executable, "-m", "vecdb", "serve", "--path", str(path),
                                   "--port", str(self.port), "--log-level", "info", *options]
        # A file, not a pipe: a pipe nobody reads would block the server's logging.
        self.log = path.parent / f"server-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_ready(self) -> "ServerProcess":
        wait_ready(self.url, lambda: self.process.poll() is not None)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def __enter__(self) -> "ServerProcess":
        return self.wait_ready()

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
