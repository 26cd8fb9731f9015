"""The local Ray a run starts: only where the network is loopback alone, with its files in a
folder of the run's own, and nothing of it left when the run ends.

Ray advertises the machine's network address even when told 127.0.0.1, so the benchmark
runs in a network namespace with only ``lo`` (``sh .ci/loopback-only ...``, as ``make
bench-cluster`` does). Ray writes its sessions, logs, sockets and the address file a later
``ray.init()`` would join under ``RAY_TMPDIR``; pointing it at a fresh folder keeps this run
from joining, or leaving files for, any other Ray on the machine. The first
``vecdb.cluster.open`` starts Ray (``address=None``); leaving the session shuts it down
and removes the folder, also when the run is stopped with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from typing import Any, Iterator, NoReturn

# Short: Ray's socket paths live under it and a Unix socket's path has at most 107 bytes.
_FOLDER_PREFIX = "vbc-"


def require_loopback_only() -> None:
    """Stop with the command to use unless this process sees only the loopback interface."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        raise SystemExit(
            f"python -m bench.cluster starts Ray, which must run where the network is loopback only, but this "
            f"process sees interfaces {interfaces}. Run it as `sh .ci/loopback-only .venv/bin/python -m "
            "bench.cluster ...` (or `make bench-cluster`): a network namespace of its own with only lo.")


def _exit_on_sigterm(number: int, frame: Any) -> NoReturn:
    """SIGTERM ends the run like Ctrl-C: the clusters and Ray are stopped on the way out."""
    raise SystemExit(128 + number)


@contextlib.contextmanager
def private_ray() -> Iterator[None]:
    """A session in which the first cluster opened starts a local Ray whose files live in a
    temporary folder; on the way out Ray is shut down (the clusters must be closed by then)
    and the folder removed. Call it from the main thread (it handles SIGTERM meanwhile)."""
    require_loopback_only()
    previous_handler = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    root = tempfile.mkdtemp(prefix=_FOLDER_PREFIX)
    os.makedirs(os.path.join(root, "ray"))  # Ray writes its address file there and fails if it is missing
    # Ray's C++ failure handler catches SIGTERM first and arms abseil's 3-second alarm,
    # which aborts the process in the middle of closing the clusters (ray-project/ray#64830);
    # without it, SIGTERM goes straight to the Python handler and the run stops cleanly.
    settings = {"RAY_TMPDIR": root, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER": "1"}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        import ray

        ray.shutdown()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous_handler)
