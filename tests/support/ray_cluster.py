"""A local multi-node Ray cluster for tests (ray.cluster_utils.Cluster:
simulated nodes, each a raylet with a resource of its own), started only
where the network is loopback alone.

Ray advertises the machine's network address even when told 127.0.0.1, and
tests must talk only over loopback: whatever starts Ray runs in a network
namespace of its own with only ``lo`` (``make test`` runs pytest in one:
``unshare -n`` and ``ip link set lo up``). Started elsewhere, a test fails
with that explanation instead of starting Ray. Every Ray process the
cluster started is stopped at the end and its files removed: Ray writes
everything (sessions, logs, sockets, and the address file a later
``ray.init()`` would read to join it) under ``RAY_TMPDIR``, which points at
a folder of the cluster's own while it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from typing import Iterator

import pytest

NODES = 3
START_TIMEOUT_S = 120


def interfaces() -> list:
    return sorted(name for _, name in socket.if_nameindex())


def require_loopback_only() -> None:
    """Fail the test (clearly) unless this process's network namespace has
    only the loopback interface."""
    found = interfaces()
    if found != ["lo"]:
        pytest.fail(
            f"this test starts Ray, which must run where the network is loopback only, but this process sees "
            f"interfaces {found}. Run the tests with `make test` (it runs pytest in a network namespace of its "
            "own), or as root: unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest ...'",
            pytrace=False)


@contextlib.contextmanager
def local_ray_cluster(nodes: int = NODES) -> Iterator[object]:
    """``nodes`` simulated Ray nodes (resources ``node0``, ``node1``, ...;
    one CPU each), this process connected as the driver."""
    require_loopback_only()
    import ray
    from ray.cluster_utils import Cluster

    root = tempfile.mkdtemp(prefix="vr-")  # short: Ray's socket paths live under it
    os.makedirs(os.path.join(root, "ray"))
    previous = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = root  # inherited by every Ray process, and by drivers tests start
    started = time.monotonic()
    node_args = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={**node_args, "resources": {"node0": 1},
                                                                 "include_dashboard": False})
        for index in range(1, nodes):
            cluster.add_node(**node_args, resources={f"node{index}": 1})
        ray.init(address=cluster.address, namespace="vecdb", logging_level="ERROR", log_to_driver=False,
                 configure_logging=False)
        cluster.wait_for_nodes(timeout=START_TIMEOUT_S - (time.monotonic() - started))
        yield cluster
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        if previous is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = previous
        shutil.rmtree(root, ignore_errors=True)
