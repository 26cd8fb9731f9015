"""The shards as Ray actors: starting or joining Ray, placing each shard's
actor on its node, calling many shards at once, and turning Ray's failures
into vecdb's errors. The only module of the cluster that imports Ray.

A shard's actor is named after the cluster and the shard, detached from the
driver that started it and restarted by Ray when its process dies (it then
reopens its folder, so nothing acknowledged is lost): a driver that dies
leaves the shards serving, and the next driver to open the cluster finds
them by name. Calls are never retried by Ray: a write whose shard died in
flight has an unknown outcome, which the caller is told
(:class:`vecdb.errors.ShardUnavailableError`), not hidden by a replay.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import signal
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from vecdb.errors import InvalidArgumentError, ShardUnavailableError, VecdbError

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError as exc:  # the optional extra is missing
    raise ImportError('vecdb.cluster needs Ray: pip install "vecdb-engine[ray]"') from exc

from vecdb.cluster.shard import Shard
from vecdb.collection import DEFAULT_INDEX_BACKLOG

NAMESPACE = "vecdb"
# Calls a shard's actor serves at once: searches run in parallel threads
# (the native core releases the GIL) while a write holds its collection's
# write lock.
SHARD_CONCURRENCY = 8
# Ray starts worker processes at niceness 15 (so its own daemons stay
# responsive); a shard is the database itself, and niced it loses the CPU to
# whatever else runs on its node, the driver's threads included.
SHARD_RUNTIME_ENV = {"env_vars": {"RAY_worker_niceness": "0"}}
# How long closing waits for a shard to write its snapshots.
CLOSE_TIMEOUT_S = 60.0

# Arguments larger than this go to the object store once, not once per shard.
SHARE_BYTES = 64 * 1024

class _ShardActor(Shard):
    """A shard as Ray serves it: one entry point taking the whole request
    as one argument, pickled by the driver, and answering pickled bytes.
    Each argument of a Ray call costs its own serialization, and Ray's
    (cloudpickle) costs more than pickle's on small values: a search's
    dozen arguments, packed and pickled, cost a fraction of a millisecond
    less each way. A request holding an ObjectRef (a large array put in the
    object store once for every shard, see share()) travels as a tuple,
    for Ray to track the reference."""

    def run(self, request: Any) -> bytes:
        method, args, kwargs = pickle.loads(request) if isinstance(request, bytes) else request
        if method not in SHARD_METHODS:
            raise InvalidArgumentError(f"{method!r} is not a method a shard serves")
        args = tuple(ray.get(arg) if isinstance(arg, ray.ObjectRef) else arg for arg in args)
        return pickle.dumps(getattr(self, method)(*args, **kwargs), protocol=pickle.HIGHEST_PROTOCOL)


# What a driver may ask of a shard.
SHARD_METHODS = frozenset({"pid", "keys", "create", "drop", "call", "upsert", "update_payload", "search",
                           "text_indexes", "text_statistics", "search_branches", "get", "scroll", "last_order",
                           "training_states", "sample", "install_quantizer", "install_rotation", "sample_points",
                           "exact_neighbours", "time_plan", "search_shape", "set_default_plan", "describe", "compact",
                           "backup", "refresh", "close"})

RemoteShard = ray.remote(_ShardActor)


def connect(address: Optional[str]) -> None:
    """Join the Ray cluster at ``address`` (``"auto"``: the one running on
    this machine), or start a local one (None). Nothing if this process is
    already connected."""
    if ray.is_initialized():
        return
    terminate = signal.getsignal(signal.SIGTERM)
    ray.init(address=address, namespace=NAMESPACE, logging_level=logging.ERROR, log_to_driver=False,
             include_dashboard=False, configure_logging=False)
    # ray.init makes SIGTERM exit the process at once (sys.exit): put back
    # what the program had (a server shuts down gracefully on it).
    if threading.current_thread() is threading.main_thread() and terminate is not None:
        signal.signal(signal.SIGTERM, terminate)


def alive_nodes() -> List[str]:
    """The ids of the cluster's live nodes, in a stable order."""
    return sorted(node["NodeID"] for node in ray.nodes() if node.get("Alive"))


@dataclass(frozen=True)
class ShardPlace:
    """Where shard ``shard`` lives: its folder and the node that holds it."""

    shard: int
    folder: str
    node: str


def start_shard(cluster: str, place: ShardPlace, *, replica: int = 0,
                index_backlog: int = DEFAULT_INDEX_BACKLOG) -> Any:
    """The actor serving ``place`` (an existing one of that name, or a new
    one on its node); replica ``r > 0`` opens the folder read-only.
    ``index_backlog``: as for :func:`vecdb.open`."""
    name = f"{cluster}-shard-{place.shard:03d}" + (f"-replica-{replica}" if replica else "")
    return RemoteShard.options(
        name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=0,
        max_restarts=-1, max_task_retries=0, max_concurrency=SHARD_CONCURRENCY,
        scheduling_strategy=NodeAffinitySchedulingStrategy(place.node, soft=False),
        runtime_env=SHARD_RUNTIME_ENV,
    ).remote(place.folder, read_only=replica > 0, index_backlog=index_backlog)


def share(array: Any) -> Any:
    """An array every shard of a call reads: put in Ray's object store once
    when it is large (not serialized again per shard), as it is otherwise."""
    return ray.put(array) if getattr(array, "nbytes", 0) > SHARE_BYTES else array


Request = Tuple[str, Tuple[Any, ...], Dict[str, Any]]


class ShardSet:
    """The actors serving a cluster's shards, called together: each shard's
    primary (its folder's writer) and its read replicas (the same folder
    opened read-only, on the same node), which take turns with the primary
    at answering reads."""

    def __init__(self, primaries: List[Any], replicas: Optional[List[List[Any]]] = None) -> None:
        self._handles = primaries
        self._replicas = replicas if replicas is not None else [[] for _ in primaries]
        self._turns = [itertools.count() for _ in primaries]

    @property
    def primaries(self) -> List[Any]:
        return list(self._handles)

    def wait_until_serving(self) -> None:
        """Return once every actor has opened its folder (or raise
        ShardUnavailableError naming a shard whose actor cannot)."""
        for shard, replicas in enumerate(self._replicas):
            for handle in (self._handles[shard], *replicas):
                try:
                    ray.get(handle.run.remote(_packed(("pid", (), {}))))
                except RayActorError as exc:
                    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    raise ShardUnavailableError(f"shard {shard}'s actor could not start: {reason}",
                                                shard=shard) from None

    def call(self, requests: Mapping[int, Request], *, ids: Optional[Mapping[int, Sequence[Any]]] = None,
             allow_partial: bool = False, read: bool = False) -> Dict[int, Any]:
        """Send each shard its request (``method, args, kwargs``) at once and
        return each one's answer, waiting for every one before anything is
        raised, so a failure is reported only when every other shard is
        done.

        A shard that failed with a vecdb error re-raises it (the first such
        shard's). A shard that did not answer raises ShardUnavailableError
        naming it and ``ids[shard]`` (the ids whose outcome is unknown),
        unless ``allow_partial``: its answer is then left out. ``read``: a
        replica may answer instead of the primary.
        """
        calls = {shard: (self._reader(shard) if read else self._handles[shard]).run.remote(_packed(request))
                 for shard, request in requests.items()}
        try:
            return {shard: pickle.loads(answer) for shard, answer in zip(calls, ray.get(list(calls.values())))}
        except (RayTaskError, RayActorError, GetTimeoutError):
            pass  # which shards failed, and how, after every one is done:
        ray.wait(list(calls.values()), num_returns=len(calls))
        answers: Dict[int, Any] = {}
        failed: Optional[BaseException] = None
        unavailable: List[int] = []
        for shard, call in calls.items():
            try:
                answers[shard] = pickle.loads(ray.get(call))
            except RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                failed = failed or (cause if isinstance(cause, VecdbError) else exc)
            except (RayActorError, GetTimeoutError):
                unavailable.append(shard)
        if failed is not None:
            raise failed
        if unavailable and not allow_partial:
            shard = unavailable[0]
            unknown = list(ids.get(shard, ())) if ids is not None else []
            others = f" (and shards {unavailable[1:]})" if len(unavailable) > 1 else ""
            what = f"; the outcome of ids {_preview(unknown)} is unknown: upsert them again" if unknown else ""
            raise ShardUnavailableError(f"shard {shard}{others} is unavailable (its actor died or is restarting)"
                                        f"{what}", shard=shard, ids=unknown)
        return answers

    def _reader(self, shard: int) -> Any:
        choices = self._replicas[shard]
        turn = next(self._turns[shard]) % (len(choices) + 1)
        return self._handles[shard] if turn == 0 else choices[turn - 1]

    def refresh_replicas(self, shards: Sequence[int]) -> None:
        """Have the replicas of ``shards`` catch up with what their primaries
        committed (a write returns after this: a read that follows it sees
        it, whichever actor answers). A replica that is down is skipped: it
        reopens its folder, current, when Ray restarts it."""
        calls = [replica.run.remote(_packed(("refresh", (), {})))
                 for shard in shards for replica in self._replicas[shard]]
        for call in calls:
            try:
                ray.get(call)
            except RayActorError:
                pass

    def stop(self) -> None:
        """Close each shard's databases (snapshots written), then end its actors."""
        everyone = [*self._handles, *(replica for replicas in self._replicas for replica in replicas)]
        closing = [handle.run.remote(_packed(("close", (), {}))) for handle in everyone]
        for handle, done in zip(everyone, closing):
            try:
                ray.get(done, timeout=CLOSE_TIMEOUT_S)
            except (RayActorError, GetTimeoutError):
                pass  # dead already: its folder is as its last commit left it
            ray.kill(handle, no_restart=True)


def _packed(request: Request) -> Any:
    """A request as it travels: pickled, unless it holds an ObjectRef."""
    if any(isinstance(arg, ray.ObjectRef) for arg in request[1]):
        return request
    return pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)


def _preview(ids: Sequence[Any], shown: int = 10) -> str:
    head = ", ".join(repr(each) for each in list(ids)[:shown])
    return f"[{head}{', ...' if len(ids) > shown else ''}] ({len(ids)})"


