"""The servers under test as child processes: ``vecdb serve`` and Chroma's ``chroma run``.

Each runs on a free loopback port with its output in a log file (a pipe nobody reads would
block the server once it filled), is ready when its health route answers 200, and is stopped
with SIGTERM (SIGKILL if it does not exit in time) when the benchmark ends, fails or is
interrupted. On Linux a child also gets SIGTERM if the benchmark process dies without
cleaning up (PR_SET_PDEATHSIG), so no server outlives a killed run.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Dict, List, Optional, Type

import httpx

LOOPBACK = "127.0.0.1"
# prctl(2) option: the signal a child receives when the thread that forked it exits.
_PR_SET_PDEATHSIG = 1
_LOG_TAIL_CHARACTERS = 3000


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child between fork and exec."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerProcess:
    """A server started from ``command`` (where ``{port}`` is replaced by a fresh free port
    on every start), ready once GET ``health_path`` answers 200. Use it as a context manager,
    or call :meth:`start` and :meth:`stop`."""

    def __init__(self, name: str, command: List[str], health_path: str, log_path: Path,
                 environment: Optional[Dict[str, str]] = None, start_timeout: float = 120.0) -> None:
        self.name = name
        self.command = command
        self.health_path = health_path
        self.log_path = log_path
        self.environment = environment
        self.start_timeout = start_timeout
        self.port = 0
        self._process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    def start(self) -> "ServerProcess":
        """Start the server and wait until it is ready; raise with its log's tail if it exits
        or is not ready within ``start_timeout`` seconds."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already running")
        self.port = free_port()
        command = [part.replace("{port}", str(self.port)) for part in self.command]
        environment = None if self.environment is None else {**os.environ, **self.environment}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=environment,
                                             preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(base_url=self.url, timeout=5.0) as http:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with status {self._process.returncode} while starting:\n"
                                       f"{self.log_tail()}")
                try:
                    if http.get(self.health_path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready after {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM, and SIGKILL if the server has not exited after ``timeout`` seconds (a
        graceful stop lets ``vecdb serve`` write its index snapshots)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop the server and start it again (on a new port)."""
        self.stop()
        self.start()

    def log_tail(self) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-_LOG_TAIL_CHARACTERS:]

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self.stop()


def vecdb_server(folder: Path, log_path: Path, workers: int = 1) -> ServerProcess:
    """``vecdb serve`` on ``folder`` with its default settings (``--workers``
    processes), run by this Python."""
    return ServerProcess("vecdb serve", [sys.executable, "-m", "vecdb", "serve", "--path", str(folder),
                                         "--host", LOOPBACK, "--port", "{port}", "--workers", str(workers)],
                         health_path="/readyz", log_path=log_path)


def chroma_executable() -> str:
    """The ``chroma`` command installed beside this Python (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.is_file() else shutil.which("chroma")
    if found is None:
        raise FileNotFoundError('the chroma command is missing: pip install -e ".[bench]" (it comes with chromadb)')
    return found


def chroma_server(folder: Path, log_path: Path) -> ServerProcess:
    """Chroma's own server (``chroma run``) persisting to ``folder``, telemetry off."""
    return ServerProcess("chroma run", [chroma_executable(), "run", "--path", str(folder), "--host", LOOPBACK,
                                        "--port", "{port}"],
                         health_path="/api/v2/heartbeat", log_path=log_path,
                         environment={"ANONYMIZED_TELEMETRY": "False"})
