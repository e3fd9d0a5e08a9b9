"""Exchange: academy_ml's Redis exchange against Academy's, same agent, same run.

One Academy agent (``EchoAgent``: ``echo(payload)`` returns its argument,
``size(payload)`` returns its length in bytes) is launched through
``Manager.from_exchange_factory(factory, executors=ThreadPoolExecutor(1))``
on each exchange in turn and called from the user side with ``handle.echo``:

  local          Academy's ``LocalExchangeFactory``: in-process queues, no
                 serialisation, the floor of Academy's own machinery
  academy        Academy's ``RedisExchangeFactory(host, port,
                 socket_timeout=None, max_connections=10_000)``: the two
                 keyword arguments make it work with redis-py 8, whose
                 defaults (5 s socket timeout, 100 connections) kill its
                 BLPOP listener after 5 s idle and fail bursts
  ours           ``academy_ml.messaging.RedisExchangeFactory(url)``

The agent runs on a thread of this process, under its own event loop (what
Academy's thread executor does), so user and agent share one interpreter and
one GIL, and on 2 cores they compete with redis-server for the CPUs. The
local column includes that thread hop: with the agent on the caller's event
loop Academy's local round trip takes less than half. ``--agent-process``
runs the Redis exchanges' agent in a spawned process instead (local always
stays on a thread; the CPU rows then cover the user side only).

Each Redis exchange gets a fresh redis-server (loopback port, no
persistence, ``redis_server.RedisServer``). Measured per
exchange, in this order (1 KiB = 1,024 bytes, 1 MiB = 1,048,576):

  p50 / p99      1 KiB ``bytes`` echo: warm-up, then N sequential calls.
                 Academy's exchanges pickle and base64 the payload inside
                 a JSON message; ours sends bytes and arrays as raw buffers
  CPU            process CPU time (user + system) of this process, and
                 redis-server's (INFO cpu), per action, over the same block
  throughput     1,000 concurrent echoes (``asyncio.gather``) of distinct
                 1 KiB payloads, actions/s, best of 3 (with its CPU)
  round trips    echo of 1 MiB and 10 MiB float64 arrays (sent and
                 returned), and 10 MiB in with only ``size`` back; median
  commands       ``INFO commandstats`` delta around a block of sequential
                 1 KiB echoes, per action. Redis counts commands that Lua
                 scripts (EVAL/EVALSHA) run in commandstats too, so "all"
                 includes them; MONITOR over a second block separates the
                 commands clients sent from those scripts ran (MONITOR tags
                 the latter "lua"). Background traffic (heartbeats, counter
                 publication) in the blocks is included.

After the table: the per-command breakdown, the Redis floor for 10 MiB
(``redis-benchmark`` SET and GET on a fresh server: a 10 MiB echo through
Redis moves two messages in and out of it) and the goals, with numbers.

Every echo is checked against what was sent (values equal, and each of the
1,000 concurrent echoes against its own payload); a mismatch exits non-zero.
Timings are printed, never enforced. The ratio column is how many times
better ours is than Academy's Redis exchange (times: academy / ours;
throughput: ours / academy; CPU and commands: academy / ours).

On a 2-core VM the latency and throughput rows move by a third between runs
and depend on where the scheduler puts the threads and redis-server (``taskset
-c 0`` runs everything on one CPU and is faster for every column); the load
average is printed before and after.

``--quick`` (small counts, ~10 s) is the CI smoke check: everything runs and
both Redis exchanges return correct echoes.

Usage: python benchmarks/exchange.py [--quick] [--only local,academy,ours]
    [--calls N] [--agent-process]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import numpy as np
import redis
import redis.asyncio
from academy.agent import Agent, action
from academy.exchange import ExchangeFactory, LocalExchangeFactory
from academy.exchange import RedisExchangeFactory as AcademyRedisExchangeFactory
from academy.handle import Handle
from academy.manager import Manager
from rich.console import Console
from rich.table import Table

from academy_ml.messaging import RedisExchangeFactory

# The throwaway redis-server launcher is a test helper (tests/redis_server.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from redis_server import RedisServer

EXCHANGES = ("local", "academy", "ours")
KIB = 1024
MIB = 1024 * KIB
#: Concurrent actions in the throughput block.
CONCURRENT = 1_000
#: Marker sent through ECHO that ends the MONITOR block.
MONITOR_END = "academy-ml-bench-monitor-end"
#: Commands the benchmark itself sends to read the statistics.
OWN_COMMANDS = frozenset({"info", "echo", "monitor", "config", "ping"})

T = TypeVar("T")
Array = np.ndarray[Any, np.dtype[np.float64]]


class EchoAgent(Agent):
    """Returns what it is sent."""

    @action
    async def echo(self, payload: T) -> T:
        return payload

    @action
    async def size(self, payload: bytes | Array) -> int:
        return payload.nbytes if isinstance(payload, np.ndarray) else len(payload)


@dataclass(frozen=True)
class Counts:
    """How much of each block to run."""

    warmup: int
    calls: int
    throughput_rounds: int
    payload_repeats: int
    stats_actions: int
    monitor_actions: int


FULL = Counts(
    warmup=200,
    calls=2_000,
    throughput_rounds=3,
    payload_repeats=10,
    stats_actions=500,
    monitor_actions=200,
)
QUICK = Counts(
    warmup=50,
    calls=200,
    throughput_rounds=1,
    payload_repeats=3,
    stats_actions=50,
    monitor_actions=50,
)


@dataclass(frozen=True)
class Cpu:
    """CPU time of this process (user side and, on a thread, the agent) and of redis-server.

    Seconds used so far, or microseconds per action (``per_action_since``).
    """

    python: float
    redis: float | None

    def per_action_since(self, before: Cpu, actions: int) -> Cpu:
        scale = 1e6 / actions
        redis_us = None
        if self.redis is not None and before.redis is not None:
            redis_us = (self.redis - before.redis) * scale
        return Cpu((self.python - before.python) * scale, redis_us)


@dataclass(frozen=True)
class Latency:
    """The sequential 1 KiB block: percentiles (ms) and CPU per action (us)."""

    p50: float
    p99: float
    cpu: Cpu


@dataclass(frozen=True)
class Throughput:
    """The best concurrent round: actions/s and its CPU per action (us)."""

    actions_per_s: float
    cpu: Cpu


PerAction = dict[str, float]


@dataclass
class Result:
    """One exchange's numbers (milliseconds unless named otherwise).

    ``commands`` (all, from commandstats), ``top_level`` and ``from_lua``
    (from MONITOR) are per action, by command name; None for local.
    """

    latency: Latency
    throughput: Throughput
    echo_1mib: float
    echo_10mib: float
    in_10mib: float
    commands: PerAction | None = None
    top_level: PerAction | None = None
    from_lua: PerAction | None = None
    seconds: float = 0.0


class Mismatch(Exception):
    """An echo did not return what was sent."""


def _payload_1kib(i: int) -> bytes:
    return i.to_bytes(8, "little") + bytes(range(256)) * 3 + bytes(KIB - 8 - 768)


def _array(nbytes: int) -> Array:
    return np.random.default_rng(nbytes).random(nbytes // 8)


def _check(got: object, expected: bytes | Array, what: str) -> None:
    if isinstance(expected, np.ndarray):
        ok = (
            isinstance(got, np.ndarray)
            and got.dtype == expected.dtype
            and np.array_equal(got, expected)
        )
    else:
        ok = isinstance(got, bytes) and got == expected
    if not ok:
        raise Mismatch(f"{what}: echo differs from the payload ({type(got).__name__})")


async def _timed_ms(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    start = time.perf_counter()
    value = await call()
    return value, (time.perf_counter() - start) * 1e3


async def _latency(handle: Handle[EchoAgent], counts: Counts, url: str | None) -> Latency:
    payload = _payload_1kib(0)
    for _ in range(counts.warmup):
        _check(await handle.echo(payload), payload, "warm-up")
    samples = []
    before = _cpu(url)
    for _ in range(counts.calls):
        got, ms = await _timed_ms(lambda: handle.echo(payload))
        _check(got, payload, "1 KiB echo")
        samples.append(ms)
    cpu = _cpu(url).per_action_since(before, counts.calls)
    p50, p99 = np.percentile(samples, [50, 99])
    return Latency(float(p50), float(p99), cpu)


async def _throughput(handle: Handle[EchoAgent], counts: Counts, url: str | None) -> Throughput:
    payloads = [_payload_1kib(i) for i in range(CONCURRENT)]
    best: Throughput | None = None
    for _ in range(counts.throughput_rounds):
        before = _cpu(url)
        results, ms = await _timed_ms(lambda: asyncio.gather(*(handle.echo(p) for p in payloads)))
        cpu = _cpu(url).per_action_since(before, CONCURRENT)
        for got, payload in zip(results, payloads, strict=True):
            _check(got, payload, "concurrent echo")
        rate = CONCURRENT / (ms / 1e3)
        if best is None or rate > best.actions_per_s:
            best = Throughput(rate, cpu)
    assert best is not None
    return best


def _cpu(url: str | None) -> Cpu:
    """CPU seconds used so far by this process and by redis-server (INFO cpu)."""
    python = time.process_time()
    if url is None:
        return Cpu(python, None)
    with redis.Redis.from_url(url) as client:
        info: dict[str, float] = client.info("cpu")
    return Cpu(python, float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))


async def _round_trip(handle: Handle[EchoAgent], payload: Array, repeats: int) -> float:
    _check(await handle.echo(payload), payload, "warm-up")
    samples = []
    for _ in range(repeats):
        got, ms = await _timed_ms(lambda: handle.echo(payload))
        _check(got, payload, f"{payload.nbytes // MIB} MiB echo")
        samples.append(ms)
    return statistics.median(samples)


async def _one_way(handle: Handle[EchoAgent], payload: Array, repeats: int) -> float:
    samples = []
    for _ in range(repeats + 1):
        got, ms = await _timed_ms(lambda: handle.size(payload))
        if got != payload.nbytes:
            raise Mismatch(f"size returned {got!r}, expected {payload.nbytes}")
        samples.append(ms)
    return statistics.median(samples[1:])


async def _sequential(handle: Handle[EchoAgent], n: int) -> None:
    payload = _payload_1kib(1)
    for _ in range(n):
        _check(await handle.echo(payload), payload, "1 KiB echo")


def _commandstats(client: redis.Redis) -> Counter[str]:
    stats: dict[str, dict[str, int]] = client.info("commandstats")
    return Counter(
        {
            name.removeprefix("cmdstat_").lower(): values["calls"]
            for name, values in stats.items()
            if name.removeprefix("cmdstat_").lower() not in OWN_COMMANDS
        }
    )


def _per_action(counts: Counter[str], n: int) -> PerAction:
    return {name: calls / n for name, calls in counts.most_common()}


async def _count_commands(handle: Handle[EchoAgent], url: str, n: int) -> PerAction:
    """Every command Redis executed during ``n`` sequential actions, per action."""
    with redis.Redis.from_url(url) as client:
        before = _commandstats(client)
        await _sequential(handle, n)
        return _per_action(_commandstats(client) - before, n)


async def _monitor(handle: Handle[EchoAgent], url: str, n: int) -> tuple[PerAction, PerAction]:
    """Commands clients sent, and commands Lua scripts ran, per action."""
    top: Counter[str] = Counter()
    lua: Counter[str] = Counter()
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(url)
    marker: redis.asyncio.Redis = redis.asyncio.Redis.from_url(url)
    await marker.ping()  # connects now: its handshake stays out of the block
    try:
        async with client.monitor() as monitor:

            async def collect() -> None:
                async for seen in monitor.listen():
                    words = seen["command"].split(" ", 2)
                    name = words[0].lower()
                    if name == "echo" and words[1:2] == [MONITOR_END]:
                        return
                    if name not in OWN_COMMANDS:
                        (lua if seen["client_type"] == "lua" else top)[name] += 1

            task = asyncio.create_task(collect())
            await asyncio.sleep(0.05)
            await _sequential(handle, n)
            await marker.echo(MONITOR_END)
            await asyncio.wait_for(task, 30)
    finally:
        await client.aclose()
        await marker.aclose()
    return _per_action(top, n), _per_action(lua, n)


def _executor(in_process: bool) -> Executor:
    if in_process:
        return ProcessPoolExecutor(1, mp_context=get_context("spawn"))
    return ThreadPoolExecutor(1)


async def _measure(
    factory: ExchangeFactory[Any],
    url: str | None,
    counts: Counts,
    console: Console,
    *,
    agent_process: bool = False,
) -> Result:
    """Launches the agent on ``factory`` and runs every block against it."""
    started = time.perf_counter()
    manager = await Manager.from_exchange_factory(factory, executors=_executor(agent_process))
    async with manager:
        handle: Handle[EchoAgent] = await manager.launch(EchoAgent)
        console.print(" latency", end="")
        latency = await _latency(handle, counts, url)
        console.print(", concurrent", end="")
        rate = await _throughput(handle, counts, url)
        console.print(", payloads", end="")
        big = _array(10 * MIB)
        echo_1 = await _round_trip(handle, _array(MIB), counts.payload_repeats)
        echo_10 = await _round_trip(handle, big, counts.payload_repeats)
        in_10 = await _one_way(handle, big, counts.payload_repeats)
        result = Result(latency, rate, echo_1, echo_10, in_10)
        if url is not None:
            console.print(", commands", end="")
            result.commands = await _count_commands(handle, url, counts.stats_actions)
            top, lua = await _monitor(handle, url, counts.monitor_actions)
            result.top_level, result.from_lua = top, lua
    result.seconds = time.perf_counter() - started
    console.print(f" ({result.seconds:.1f} s)")
    return result


def _factory(name: str, url: str | None) -> ExchangeFactory[Any]:
    if name == "local":
        return LocalExchangeFactory()
    assert url is not None
    if name == "academy":
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        return AcademyRedisExchangeFactory(
            parts.hostname, parts.port, socket_timeout=None, max_connections=10_000
        )
    return RedisExchangeFactory(url)


async def _run(
    names: list[str], counts: Counts, console: Console, *, agent_process: bool
) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for name in names:
        console.print(f"{name}:", end="")
        if name == "local":
            # In-process queues: the agent can only run on a thread here.
            results[name] = await _measure(_factory(name, None), None, counts, console)
            continue
        with RedisServer() as server:
            factory = _factory(name, server.url)
            results[name] = await _measure(
                factory, server.url, counts, console, agent_process=agent_process
            )
    return results


def _total(per_action: PerAction | None) -> float | None:
    return None if per_action is None else sum(per_action.values())


class Row(NamedTuple):
    """One table row: what to show, how, and which way is better."""

    label: str
    value: Callable[[Result], float | None]
    format: str
    #: True if higher is better, False if lower is; None: no ratio.
    higher: bool | None


ROWS = (
    Row("1 KiB action p50 (ms)", lambda r: r.latency.p50, ".3f", False),
    Row("1 KiB action p99 (ms)", lambda r: r.latency.p99, ".3f", False),
    Row("  Python CPU per action, this process (us)", lambda r: r.latency.cpu.python, ".0f", False),
    Row("  redis-server CPU per action (us)", lambda r: r.latency.cpu.redis, ".0f", False),
    Row(
        f"{CONCURRENT:,} concurrent 1 KiB actions (actions/s)",
        lambda r: r.throughput.actions_per_s,
        ",.0f",
        True,
    ),
    Row(
        "  Python CPU per action, this process (us)",
        lambda r: r.throughput.cpu.python,
        ".0f",
        False,
    ),
    Row("  redis-server CPU per action (us)", lambda r: r.throughput.cpu.redis, ".0f", False),
    Row("1 MiB float64 echo round trip (ms)", lambda r: r.echo_1mib, ".1f", False),
    Row("10 MiB float64 echo round trip (ms)", lambda r: r.echo_10mib, ".1f", False),
    Row("10 MiB in, size back (ms)", lambda r: r.in_10mib, ".1f", False),
    Row(
        "Redis commands per action, all (commandstats)", lambda r: _total(r.commands), ".1f", False
    ),
    Row("  sent by clients (MONITOR)", lambda r: _total(r.top_level), ".1f", False),
    Row("  run inside Lua scripts (MONITOR)", lambda r: _total(r.from_lua), ".1f", None),
    Row("time for this column (s)", lambda r: r.seconds, ".1f", None),
)


def _table(results: dict[str, Result]) -> Table:
    table = Table()
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    compare = "academy" in results and "ours" in results
    if compare:
        table.add_column("ours vs academy", justify="right")
    for row in ROWS:
        values = [row.value(r) for r in results.values()]
        cells = ["-" if v is None else format(v, row.format) for v in values]
        if compare:
            ours, academy = row.value(results["ours"]), row.value(results["academy"])
            ratio = None
            if ours and academy and row.higher is not None:
                ratio = ours / academy if row.higher else academy / ours
            cells.append("-" if ratio is None else f"{ratio:.1f}x")
        table.add_row(row.label, *cells)
    return table


def _breakdown(console: Console, results: dict[str, Result]) -> None:
    for name, r in results.items():
        if r.commands is None or r.top_level is None or r.from_lua is None:
            continue
        console.print(f"[bold]{name}[/] commands per action:")
        console.print("  all (commandstats): " + _fmt(r.commands))
        console.print("  sent by clients:    " + _fmt(r.top_level))
        console.print("  run inside Lua:     " + (_fmt(r.from_lua) or "none"))


def _fmt(per_action: PerAction) -> str:
    return ", ".join(f"{name} {calls:.2f}" for name, calls in per_action.items())


def _goals(console: Console, results: dict[str, Result]) -> None:
    if "ours" not in results:
        return
    ours = results["ours"]
    goals: list[tuple[str, str, bool]] = [
        ("p50 <= 0.35 ms", f"{ours.latency.p50:.3f} ms", ours.latency.p50 <= 0.35),
    ]
    if "academy" in results:
        speedup = results["academy"].latency.p50 / ours.latency.p50
        goals.append(("p50 >= 4x faster than Academy's Redis", f"{speedup:.1f}x", speedup >= 4))
    goals += [
        (
            f">= 3,000 actions/s with {CONCURRENT:,} concurrent",
            f"{ours.throughput.actions_per_s:,.0f}/s",
            ours.throughput.actions_per_s >= 3_000,
        ),
        ("10 MiB round trip <= 30 ms", f"{ours.echo_10mib:.1f} ms", ours.echo_10mib <= 30),
    ]
    for name, achieved, met in goals:
        verdict = "[green]met[/]" if met else "[red]not met[/]"
        console.print(f"{name}: {achieved}, {verdict}")


def _redis_floor(nbytes: int) -> tuple[float, float] | None:
    """p50 ms of SET and GET of ``nbytes`` with redis-benchmark (C, one connection).

    A message through Redis is at least a write and a read of its bytes, so
    an echo (two messages) cannot take less than twice their sum. None when
    redis-benchmark is not installed.
    """
    if shutil.which("redis-benchmark") is None:
        return None
    with RedisServer() as server:
        command = ["redis-benchmark", "-p", str(server.port), "-d", str(nbytes), "-c", "1"]
        out = subprocess.run(
            [*command, "-n", "20", "-t", "set,get", "--csv"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    p50 = {row["test"]: float(row["p50_latency_ms"]) for row in csv.DictReader(out.splitlines())}
    return p50["SET"], p50["GET"]


def _print_floor(console: Console, floor: tuple[float, float] | None) -> None:
    if floor is None:
        console.print("redis-benchmark not found: no Redis floor for 10 MiB")
        return
    set_ms, get_ms = floor
    console.print(
        f"Redis floor, 10 MiB (redis-benchmark, C client, fresh server): SET p50 {set_ms:.1f} ms "
        f"+ GET p50 {get_ms:.1f} ms; an echo moves two messages: >= "
        f"{2 * (set_ms + get_ms):.1f} ms"
    )


def _redis_version() -> str:
    return subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split(" sha=")[0]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    """Measures the chosen exchanges, prints the table and the goals."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke check")
    parser.add_argument(
        "--only",
        default=",".join(EXCHANGES),
        help=f"comma-separated exchanges to run, from {','.join(EXCHANGES)} (default all)",
    )
    parser.add_argument("--calls", type=int, default=None, help="sequential 1 KiB calls")
    parser.add_argument(
        "--agent-process",
        action="store_true",
        help="run the agent of the Redis exchanges in a spawned process, not on a thread",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(EXCHANGES)
    if unknown or not names:
        parser.error(f"--only takes names from {', '.join(EXCHANGES)}")
    names = [n for n in EXCHANGES if n in names]
    counts = QUICK if args.quick else FULL
    if args.calls is not None:
        counts = replace(counts, calls=args.calls)
    console = Console(width=max(Console().width, 120))
    console.print(f"before: {_load()}")
    started = time.perf_counter()
    try:
        results = asyncio.run(_run(names, counts, console, agent_process=args.agent_process))
    except Mismatch as error:
        console.print()
        raise SystemExit(f"wrong echo: {error}") from error
    where = "in a spawned process (local: on a thread)" if args.agent_process else "on a thread"
    console.print(
        f"Loopback, agent {where}; {counts.calls:,} sequential calls after {counts.warmup} "
        f"warm-up; payload medians of {counts.payload_repeats}; Python "
        f"{platform.python_version()}, redis-py {redis.__version__}, {_redis_version()}"
    )
    console.print(_table(results))
    _breakdown(console, results)
    if set(names) & {"academy", "ours"}:
        _print_floor(console, _redis_floor(10 * MIB))
    _goals(console, results)
    console.print(f"after: {_load()}; total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
