"""The load generator: N simulated clients on one asyncio loop, each sending one search after
another (the next as soon as the previous answer is in) for a fixed time, then stopping.

All clients start together. The first ``warmup`` seconds open the connections and warm
caches and are not counted; the measured window is the ``duration`` seconds after that. No
client starts a request after the window ends, so a run stops by itself. A request counts if
it finished inside the window: QPS is their number over the window's length, and the latency
percentiles are theirs. Each client has a connection of its own: from one httpx.AsyncClient
pool sized to the client count (``httpx``), or a hand-written keep-alive connection that
costs the client a tenth of httpx's CPU per request (``raw``, see bench/server/raw_http.py).
The loop runs on uvloop when it is installed (as uvicorn does). The CPU time of this
process, of the server and of everything else over the window is recorded: the generator
runs in Python on the same machine as the server, so it competes with it for the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, Dict, List, Optional, Sequence, Tuple, TypeVar

import httpx
import numpy as np

from bench.cpu_load import CpuSplit, OtherCpuLoad
from bench.server.raw_http import RawConnection, RawHttpError, encode_requests
from bench.server.targets import SearchTarget

HTTP_CLIENTS = ("httpx", "raw")

# Far above any answer this benchmark expects: a request that slow means something broke.
_REQUEST_TIMEOUT_SECONDS = 60.0
PERCENTILES = (50, 95, 99)
T = TypeVar("T")
# Sends query ``row``'s request; the answer's status and body.
Send = Callable[[int], Awaitable[Tuple[int, bytes]]]


@dataclass(frozen=True)
class LoadStats:
    """Throughput and latency of the requests that finished in the measured window."""

    requests: int
    seconds: float
    qps: float
    latency_ms_mean: float
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_max: float
    errors: int


def summarize(starts: Sequence[float], ends: Sequence[float], window_start: float, window_end: float,
              errors: int = 0) -> LoadStats:
    """Stats of the requests (start and end times, seconds) that ended within
    [``window_start``, ``window_end``]; ``errors`` failed requests are counted apart."""
    starts_array, ends_array = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    inside = (ends_array >= window_start) & (ends_array <= window_end)
    latencies_ms = (ends_array[inside] - starts_array[inside]) * 1e3
    seconds = window_end - window_start
    if latencies_ms.size == 0:
        return LoadStats(0, seconds, 0.0, *([float("nan")] * 5), errors=errors)
    p50, p95, p99 = (float(value) for value in np.percentile(latencies_ms, PERCENTILES))
    return LoadStats(requests=int(latencies_ms.size), seconds=seconds, qps=latencies_ms.size / seconds,
                     latency_ms_mean=float(latencies_ms.mean()), latency_ms_p50=p50, latency_ms_p95=p95,
                     latency_ms_p99=p99, latency_ms_max=float(latencies_ms.max()), errors=errors)


@dataclass(frozen=True)
class LoadRun:
    """One run: ``clients`` clients sending ``target``'s searches.

    ``cpu`` splits the cores used during the window into this process (the load generator),
    the server (``cpu.processes[0]``), the idle servers (the rest of ``cpu.processes``) and
    other work. ``answers`` maps a query's row to the ids of its first
    successful answer (any time in the run), for recall under load.
    """

    system: str
    encoding: str
    http_client: str
    clients: int
    stats: LoadStats
    cpu: CpuSplit
    answers: Dict[int, List[int]]


@contextlib.asynccontextmanager
async def _senders(http_client: str, url: str, target: SearchTarget, count: int) -> AsyncIterator[List[Send]]:
    """One ``Send`` per simulated client, each on a connection of its own."""
    if http_client == "httpx":
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx.AsyncClient(base_url=url, timeout=_REQUEST_TIMEOUT_SECONDS, limits=limits) as pool:

            async def send(row: int) -> Tuple[int, bytes]:
                response = await pool.post(target.path, content=target.bodies[row], headers=target.headers)
                return response.status_code, response.content

            yield [send] * count
    elif http_client == "raw":
        requests = encode_requests(url, target.path, target.headers, target.bodies)
        connections = [RawConnection(url) for _ in range(count)]

        def sender(connection: RawConnection) -> Send:
            return lambda row: asyncio.wait_for(connection.exchange(requests[row]), _REQUEST_TIMEOUT_SECONDS)

        try:
            yield [sender(connection) for connection in connections]
        finally:
            for connection in connections:
                await connection.close()
    else:
        raise ValueError(f"unknown HTTP client {http_client!r}; choose from {', '.join(HTTP_CLIENTS)}")


def _run_on_event_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a new uvloop loop if uvloop is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


class _Recorder:
    """What the clients of one run saw: start/end times of the answered requests, failures,
    and each query's first answer."""

    def __init__(self, target: SearchTarget) -> None:
        self.target = target
        self.starts: List[float] = []
        self.ends: List[float] = []
        self.error_ends: List[float] = []
        self.last_error: Optional[str] = None
        self.answers: Dict[int, List[int]] = {}

    async def send(self, send: Send, row: int) -> None:
        start = time.perf_counter()
        try:
            status, content = await send(row)
        except (httpx.HTTPError, OSError, RawHttpError, asyncio.IncompleteReadError, asyncio.TimeoutError) as error:
            self.error_ends.append(time.perf_counter())
            self.last_error = f"{type(error).__name__}: {error}"
            return
        end = time.perf_counter()
        if status != 200:
            self.error_ends.append(end)
            self.last_error = f"HTTP {status}: {content[:300].decode(errors='replace')}"
            return
        self.starts.append(start)
        self.ends.append(end)
        if row not in self.answers:  # reading ids costs client time: once per query is enough
            self.answers[row] = self.target.read_ids(content)

    def errors_between(self, window_start: float, window_end: float) -> int:
        return sum(window_start <= end <= window_end for end in self.error_ends)


async def _run(url: str, target: SearchTarget, http_client: str, clients: int, warmup: float, duration: float,
               server_pids: List[int]) -> LoadRun:
    recorder = _Recorder(target)
    queries = len(target.bodies)
    async with _senders(http_client, url, target, clients) as senders:
        window_start = time.perf_counter() + warmup
        window_end = window_start + duration

        async def client(number: int) -> None:
            row = number * queries // clients  # clients start spread over the queries
            while time.perf_counter() < window_end:
                await recorder.send(senders[number], row)
                row = (row + 1) % queries

        async def meter() -> CpuSplit:
            await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
            load = OtherCpuLoad(pids=server_pids)
            await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
            return load.split()

        *_, cpu = await asyncio.gather(*(client(number) for number in range(clients)), meter())
    stats = summarize(recorder.starts, recorder.ends, window_start, window_end,
                      recorder.errors_between(window_start, window_end))
    if stats.requests == 0:
        raise RuntimeError(f"{target.label}: no request succeeded with {clients} clients over {http_client} "
                           f"(last error: {recorder.last_error})")
    return LoadRun(target.system, target.encoding, http_client, clients, stats, cpu, recorder.answers)


def run_load(url: str, target: SearchTarget, http_client: str, clients: int, warmup: float, duration: float,
             server_pid: int, idle_server_pids: Sequence[int] = ()) -> LoadRun:
    """``clients`` clients sending ``target``'s searches through ``http_client`` (one of
    HTTP_CLIENTS) to the server at ``url`` (process ``server_pid``) for ``warmup`` +
    ``duration`` seconds; stats over the last ``duration``. The CPU time of
    ``idle_server_pids`` (servers up but not under test) is counted apart from other load."""
    if clients < 1 or duration <= 0 or warmup < 0:
        raise ValueError(f"need clients >= 1, duration > 0, warmup >= 0; got {clients}, {duration}, {warmup}")
    return _run_on_event_loop(_run(url, target, http_client, clients, warmup, duration,
                                   [server_pid, *idle_server_pids]))


async def _answer_all(url: str, target: SearchTarget, concurrency: int) -> List[List[int]]:
    recorder = _Recorder(target)
    rows = iter(range(len(target.bodies)))
    async with _senders("httpx", url, target, concurrency) as senders:

        async def client(send: Send) -> None:
            for row in rows:  # one shared iterator: each query is sent once
                await recorder.send(send, row)

        await asyncio.gather(*(client(send) for send in senders))
    if len(recorder.answers) != len(target.bodies):
        raise RuntimeError(f"{target.label}: {len(target.bodies) - len(recorder.answers)} queries failed "
                           f"(last error: {recorder.last_error})")
    return [recorder.answers[row] for row in range(len(target.bodies))]


def answer_all(url: str, target: SearchTarget, concurrency: int = 4) -> List[List[int]]:
    """Every query of ``target`` sent once (``concurrency`` at a time, over httpx); the ids of
    each answer, in query order."""
    return _run_on_event_loop(_answer_all(url, target, concurrency))
