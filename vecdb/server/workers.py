"""``vecdb serve --workers N``: N processes answering on one port.

One Python process serves about 1.2 cores (the GIL: parsing, routing and
answering run in Python between the native searches). With N workers:

- this process is the **writer**: it opens the folder for writing, serves
  on the port like a single-process server, and also listens on a private
  Unix socket (in a fresh 0700 temporary folder) for the writes the other
  workers pass on;
- N-1 **reader** processes (``python -m vecdb.server.workers``) open the
  folder read-only (LMDB's one writer, many readers) and listen on the
  same port (see OWN_SOCKETS): the kernel hands each new connection to one
  of the processes. A reader answers reads itself,
  after catching up with the writer's commits (:meth:`Database.refresh`,
  a few microseconds when nothing changed), and passes writes on
  (:mod:`vecdb.server.forward`).

A reader that dies is started again; readers stop with the writer (on its
SIGTERM or Ctrl-C) and exit by themselves if the writer process is killed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import uvicorn

from vecdb.server.app import create_app
from vecdb.server.settings import ServerSettings
from vecdb.server.state import ServedDatabase, progress_log

log = logging.getLogger("vecdb.server")

# What a reader process needs, as JSON in its environment (not its command
# line: the API keys would show in `ps`).
READER_SPEC = "VECDB_SERVE_READER"
# A reader that keeps dying is started again at most this often.
MAX_RESTART_DELAY = 30.0


def uvicorn_config(app: Any, log_level: str, access_log: bool, **where: Any) -> uvicorn.Config:
    """How every vecdb server process runs uvicorn (``where``: host and port,
    when it is not given sockets)."""
    return uvicorn.Config(app, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=30,
                          server_header=False, **where)


# On Linux each process listens on a socket of its own, all bound to the
# port with SO_REUSEPORT: the kernel spreads new connections over them by a
# hash of each connection. (Sharing one socket instead, whichever process
# wakes first accepts every pending connection: a burst of clients may all
# land on one process.) Elsewhere the readers inherit the writer's socket.
OWN_SOCKETS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def listen(host: str, port: int, *, joining: bool = False) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` for a server with
    workers: one of the group a reader joins (``joining``), or one the
    readers inherit. The first of a group checks that the port is free,
    so that a second server cannot join the first one's group."""
    family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    if OWN_SOCKETS and not joining:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)  # OSError (in use) if anything listens there
    listener = socket.socket(family, kind, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if OWN_SOCKETS:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listener.bind(address)
    except OSError:
        listener.close()
        raise
    listener.listen(2048)
    listener.set_inheritable(not OWN_SOCKETS)
    return listener


def serve_with_workers(database: ServedDatabase, settings: ServerSettings, listener: socket.socket, workers: int,
                       log_level: str, access_log: bool) -> None:
    """Serve ``database`` (open for writing) on ``listener`` with
    ``workers`` processes, this one the writer, until SIGTERM or Ctrl-C."""
    with tempfile.TemporaryDirectory(prefix="vecdb-serve-") as private:  # 0700: only this user reaches the writer
        writer_socket = os.path.join(private, "writer.sock")
        writes = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        writes.bind(writer_socket)
        writes.listen(2048)
        host, port = listener.getsockname()[:2]
        spec = {"path": str(database.path), "writer_socket": writer_socket, "parent": os.getpid(),
                "settings": dataclasses.asdict(settings), "log_level": log_level, "access_log": access_log,
                **({"listen": [host, port]} if OWN_SOCKETS else {"listener": listener.fileno()})}
        readers = ReaderProcesses(workers - 1, spec, () if OWN_SOCKETS else (listener.fileno(),))
        server = _WriterServer(uvicorn_config(create_app(database, settings), log_level, access_log), readers)
        readers.start()
        try:
            server.run(sockets=[listener, writes])
        finally:
            readers.stop()


class _WriterServer(uvicorn.Server):
    """The writer's uvicorn, which tells the readers to stop as soon as it is
    told to (they stop taking connections while it finishes its requests)."""

    def __init__(self, config: uvicorn.Config, readers: "ReaderProcesses") -> None:
        super().__init__(config)
        self.readers = readers

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.readers.signal_stop()
        super().handle_exit(sig, frame)


class ReaderProcesses:
    """The reader processes, started again when one dies."""

    def __init__(self, count: int, spec: Dict[str, Any], inherited: Tuple[int, ...]) -> None:
        self.count = count
        self.spec = spec
        self.inherited = inherited  # file descriptors they inherit (the listening socket, without OWN_SOCKETS)
        self.processes: List[Optional[subprocess.Popen]] = [None] * count
        self.started_at = [0.0] * count
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="vecdb-readers", daemon=True)

    def start(self) -> None:
        with self._lock:
            for slot in range(self.count):
                self._spawn(slot)
        self._watcher.start()

    def _spawn(self, slot: int) -> None:
        environment = dict(os.environ, **{READER_SPEC: json.dumps(self.spec)})
        self.processes[slot] = subprocess.Popen([sys.executable, "-m", "vecdb.server.workers"], env=environment,
                                                pass_fds=self.inherited, stdin=subprocess.DEVNULL)
        self.started_at[slot] = time.monotonic()

    def _watch(self) -> None:
        delays = [1.0] * self.count
        while not self.stopping.wait(0.5):
            for slot, process in enumerate(self.processes):
                if process is None or process.poll() is None:
                    continue
                # Dying soon after its start (a folder it cannot open?): wait longer each time.
                lived = time.monotonic() - self.started_at[slot]
                delays[slot] = 1.0 if lived > 10 else min(delays[slot] * 2, MAX_RESTART_DELAY)
                # Ctrl-C reaches every process of the terminal's group: the
                # writer's stop may come a moment after a reader's exit.
                if self.stopping.wait(delays[slot]):
                    return
                with self._lock:
                    if self.stopping.is_set():
                        return
                    log.warning("vecdb: reader process %d exited (%s); starting another", process.pid,
                                _exit_status(process.returncode))
                    self._spawn(slot)

    def signal_stop(self) -> None:
        """Ask every reader to stop (they finish the requests they are answering)."""
        with self._lock:
            self.stopping.set()
            for process in self.processes:
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 40.0) -> None:
        """Stop the readers and wait for them (killed after ``timeout`` seconds)."""
        self.signal_stop()
        deadline = time.monotonic() + timeout
        for process in self.processes:
            if process is None:
                continue
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _exit_status(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM this process once the writer process is gone (killed): a
    reader must not keep answering without anyone to take its writes."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="vecdb-parent", daemon=True).start()


def reader_main() -> None:
    """A reader process (started by :class:`ReaderProcesses`)."""
    from vecdb.database import open as open_database

    spec = json.loads(os.environ.pop(READER_SPEC))
    _stop_when_orphaned(spec["parent"])
    listener = listen(*spec["listen"], joining=True) if "listen" in spec else socket.socket(fileno=spec["listener"])
    database = open_database(spec["path"], read_only=True, progress=progress_log)
    app = create_app(database, ServerSettings(**spec["settings"]), writer_socket=spec["writer_socket"])
    uvicorn.Server(uvicorn_config(app, spec["log_level"], spec["access_log"])).run(sockets=[listener])


if __name__ == "__main__":
    reader_main()
