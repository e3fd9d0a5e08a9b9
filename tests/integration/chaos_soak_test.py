"""Scenario (slow, ``make soak``): the MOFA loop over Redis under chaos loses and repeats nothing.

``academy-ml up`` runs the MOFA example (planner, analysis, generation, one
host process each) over a redis-server with ``appendonly yes`` /
``appendfsync always``, simulations on a Parsl endpoint with a thread-pool
backup. For ``ACADEMY_ML_SOAK_MINUTES`` (default 5) a driver picks, at
random, one of:

* ``agent <name>``: SIGKILL of an agent's host process (the supervisor starts
  it again; it restores its checkpoint);
* ``workers``: SIGKILL of the Parsl process_worker_pool and its workers
  (in-flight simulations are lost; the analysis agent tries again, or fails
  over to the backup by strategy);
* ``redis``: SIGKILL of redis-server and a restart on the same AOF.

After each, it waits until the agent is back (a new live pid) and results
flow again: that kill is survived. Then it tells the generation agent to
finish; the planner stops once it sees that, and ``up`` ends when the ledger
has drained. At the end every candidate has exactly one result, and every
result reached the planner at most once (the planner notes each delivery in
a file, see :mod:`chaos_probe`). Printed: kills survived per kind, messages
sent through the exchange, lost (goal 0) and duplicated (goal 0).

``ACADEMY_ML_SOAK_SEED`` replays a run's choices (the seed is printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import redis
from academy.handle import Handle
from chaos_probe import DELIVERIES_ENV
from processes import alive
from redis_server import RedisServer

from academy_ml.agents.knowledge import RedisKnowledgeBase
from academy_ml.deploy.launch import load_deployment
from academy_ml.deploy.launch.identities import load_identities
from academy_ml.messaging import RedisExchangeFactory

ROOT = Path(__file__).resolve().parents[2]
SOAK_S = float(os.environ.get("ACADEMY_ML_SOAK_MINUTES", "5")) * 60
#: Longest wait for the loop to be back after one kill (a lost Parsl manager
#: is noticed after its heartbeat threshold; two busy cores slow everything).
RECOVERY_S = 300.0
NAME = "soak"
AGENTS = ("planner", "analysis", "generation")
KINDS = ("agent", "agent", "workers", "redis")  # agents twice as often: there are three
#: Kills per agent: ``up`` restarts a host at most this often (its crash-loop guard).
AGENT_KILLS = 3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(SOAK_S + 4 * RECOVERY_S + 600))]


@dataclass
class Tally:
    """Kills done and survived, per kind."""

    kills: Counter[str] = field(default_factory=Counter)
    survived: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        kinds = sorted(self.kills)
        return ", ".join(f"{k} {self.survived[k]}/{self.kills[k]}" for k in kinds) or "none"


def write_deployment(tmp: Path, url: str) -> Path:
    """The MOFA deployment over ``url`` with the recording planner and a quick Parsl endpoint."""
    planner = (ROOT / "agents" / "planner.toml").read_text()
    mofa = 'class = "mofa.agents.MofaPlanner"'
    assert mofa in planner
    (tmp / "planner.toml").write_text(
        planner.replace(mofa, 'class = "chaos_probe.RecordingPlanner"')
    )
    agents = [tmp / "planner.toml", ROOT / "agents" / "analysis.toml"]
    agents.append(ROOT / "agents" / "generation.toml")
    config = tmp / "deployment.toml"
    config.write_text(
        f'[deployment]\nname = "{NAME}"\nexchange = "{url}"\nknowledge = "exchange"\n'
        f"agents = {[str(a) for a in agents]!r}\n"
        f"python_path = {[str(ROOT / 'examples'), str(Path(__file__).parent)]!r}\n"
        'stop_with = "planner"\n'
        # Workers killed are noticed after the heartbeat threshold (Parsl's default: 120 s).
        '[endpoints.local-parsl]\nkind = "parsl"\nprovider = "local"\nworkers_per_node = 2\n'
        'address = "127.0.0.1"\nheartbeat_period = 2\nheartbeat_threshold = 15\n'
        f'run_dir = "{tmp / "runinfo"}"\n'
        '[endpoints.local-pool]\nkind = "local"\nworkers = 2\n'
    )
    return config


def bounded(read: Callable[[RedisKnowledgeBase], Any], url: str) -> Any:
    """``read(kb)`` on a fresh knowledge-base client, or None while Redis is unavailable."""

    async def main() -> Any:
        kb = RedisKnowledgeBase(url, NAME)
        try:
            return await asyncio.wait_for(read(kb), 10.0)
        finally:
            await kb.close()

    try:
        return asyncio.run(main())
    except Exception:
        return None


def results(url: str) -> int | None:
    counts = bounded(lambda kb: kb.counts(), url)
    return None if counts is None else int(counts["results"])


def live_pid(logs: Path, name: str) -> int | None:
    try:
        pid = int((logs / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if alive({pid}) else None


def worker_pools(run_dir: Path) -> list[psutil.Process]:
    """The Parsl worker pools of this run, with their worker processes."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if "process_worker_pool" in cmdline and str(run_dir) in cmdline:
            found.append(process)
            found.extend(process.children(recursive=True))
    return found


@dataclass
class Kill:
    """What one strike killed: its kind, and the agent and its pid for an agent."""

    what: str
    agent: str | None = None
    pid: int | None = None


def strike(
    kind: str, rng: random.Random, tally: Tally, logs: Path, run_dir: Path, server: RedisServer
) -> Kill | None:
    """Do one kill of ``kind`` (None if there was nothing to kill)."""
    if kind == "agent":
        left = [name for name in AGENTS if tally.kills[f"agent {name}"] < AGENT_KILLS]
        if not left:
            return None
        name = rng.choice(left)
        pid = live_pid(logs, name)
        if pid is None:
            return None
        os.kill(pid, signal.SIGKILL)
        return Kill(f"agent {name}", name, pid)
    if kind == "workers":
        pools = worker_pools(run_dir)
        for process in pools:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        return Kill("workers") if pools else None
    server.restart(kill=True)
    return Kill("redis")


def recovered(
    kill: Kill, before: int, logs: Path, url: str, up: subprocess.Popen[bytes], out: Path
) -> bool:
    """Whether the killed agent is back (another live pid) and results flow, within RECOVERY_S."""
    deadline = time.monotonic() + RECOVERY_S
    while time.monotonic() < deadline:
        assert up.poll() is None, f"up exited during the soak:\n{out.read_text()[-4000:]}"
        back = kill.agent is None or live_pid(logs, kill.agent) not in (None, kill.pid)
        now = results(url)
        if back and now is not None and now > before:
            return True
        time.sleep(0.5)
    return False


def finish_generation(deployment: Any) -> None:
    """Tell the generation agent to finish, through the exchange (it may be restarting)."""

    async def call() -> None:
        kb = RedisKnowledgeBase(deployment.knowledge_url, NAME)
        try:
            ids = await load_identities(kb)
        finally:
            await kb.close()
        assert ids is not None
        factory = RedisExchangeFactory(deployment.settings.exchange)
        async with await factory.create_user_client():
            await asyncio.wait_for(Handle(ids["generation"]).finish(), 30.0)

    deadline = time.monotonic() + RECOVERY_S
    while True:
        try:
            asyncio.run(call())
            return
        except Exception:
            assert time.monotonic() < deadline, "the generation agent never took finish()"
            time.sleep(1.0)


def stop(up: subprocess.Popen[bytes]) -> None:
    """Stop ``up`` if it still runs: SIGTERM (it stops its hosts), SIGKILL if it hangs."""
    if up.poll() is None:
        up.terminate()
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def reap(run: Path) -> list[str]:
    """Kill what still runs in ``run`` 30 s after ``up`` ended (its processes all start there)."""

    def running() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["cwd", "status"]):
            with contextlib.suppress(psutil.Error):
                cwd = process.info["cwd"] or ""
                if cwd.startswith(str(run)) and process.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(process)
        return found

    deadline = time.monotonic() + 30
    while (left := running()) and time.monotonic() < deadline:
        time.sleep(1.0)
    names = []
    for process in left:
        with contextlib.suppress(psutil.Error):
            names.append(" ".join(process.cmdline())[:80])
            process.kill()
    return names


def exchange_messages(url: str) -> int:
    """Messages the exchange's mailboxes received (the counters their owners publish)."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="*:mb:*", count=1000))
        counts = [client.hget(key, "incoming") for key in keys]
        return sum(int(c) for c in counts if c is not None)
    finally:
        client.close()


def test_mofa_loop_under_chaos_loses_and_duplicates_nothing(
    redis_aof_server: RedisServer, tmp_path: Path
) -> None:
    seed = int(os.environ.get("ACADEMY_ML_SOAK_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    url = redis_aof_server.url
    config = write_deployment(tmp_path, url)
    logs, out, deliveries = tmp_path / "logs", tmp_path / "up.out", tmp_path / "deliveries.txt"
    run_dir = tmp_path / "runinfo"
    env = {**os.environ, DELIVERIES_ENV: str(deliveries)}
    tally = Tally()
    with out.open("wb") as sink:
        up = subprocess.Popen(
            [sys.executable, "-m", "academy_ml", "up", str(config), "--logs", str(logs),
             "--timeout", str(int(SOAK_S + 3 * RECOVERY_S)), "--set=planner.budget=1000000",
             "--set=analysis.sweep_interval_s=2.0", "--set=planner.review_interval_s=1.0"],
            env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        assert recovered(Kill("start"), 0, logs, url, up, out), "no result in the recovery time"
        start = time.monotonic()
        while time.monotonic() - start < SOAK_S:
            time.sleep(rng.uniform(2.0, 10.0))
            before = results(url) or 0
            kill = strike(rng.choice(KINDS), rng, tally, logs, run_dir, redis_aof_server)
            if kill is None:
                continue
            tally.kills[kill.what] += 1
            assert recovered(kill, before, logs, url, up, out), (
                f"not back within {RECOVERY_S:.0f} s after killing {kill.what} (seed {seed}); "
                f"so far {tally.line()}\n{out.read_text()[-4000:]}"
            )
            tally.survived[kill.what] += 1
        finish_generation(load_deployment(config))
        up.wait(timeout=2 * RECOVERY_S)
    finally:
        stop(up)
        left_behind = reap(tmp_path)
    assert up.returncode == 0, out.read_text()[-4000:]

    async def final(kb: RedisKnowledgeBase) -> tuple[dict[str, int], list[Any], list[int]]:
        stored = await kb.results()
        return await kb.counts(), stored, [await kb.attempts(r.candidate_id) for r in stored]

    read = bounded(final, url)
    assert read is not None
    counts, stored, attempts = read
    with_result = Counter(r.candidate_id for r in stored)
    delivered = Counter(deliveries.read_text().split())
    lost = counts["candidates"] - len(with_result) + counts["pending"]
    duplicated = sum(n - 1 for n in with_result.values()) + sum(n - 1 for n in delivered.values())
    unknown = len(set(delivered) - set(with_result))
    failed = sum(1 for r in stored if r.flags.get("failed"))
    print(
        f"\nchaos soak: {SOAK_S:.0f} s of chaos, seed {seed}\n"
        f"kills survived: {tally.line()} ({sum(tally.survived.values())} in all)\n"
        f"messages sent through the exchange: {exchange_messages(url)}\n"
        f"candidates: {counts['candidates']}, results: {len(stored)} "
        f"(failed after retries: {failed}, evaluations repeated: "
        f"{sum(a - 1 for a in attempts if a > 1)})\n"
        f"results delivered to the planner: {sum(delivered.values())} "
        f"(missed while it was down, caught up from the knowledge base: "
        f"{len(set(with_result) - set(delivered))})\n"
        f"lost: {lost}  duplicated: {duplicated}  delivered for no candidate: {unknown}\n"
        f"processes left behind by up (killed by the test): {left_behind}"
    )
    assert sum(tally.survived.values()) == sum(tally.kills.values())
    assert counts["candidates"] > 0
    assert lost == 0
    assert duplicated == 0
    assert unknown == 0
