"""``academy-ml up``: launch a deployment's agents, watch the run, stop cleanly.

With Academy's in-process exchange (or ``processes = false``) the agents are
threads of this process. With the Redis exchange each agent is a host
process (:mod:`academy_ml.launch.host`) that this supervisor starts again
when it dies, up to ``max_restarts`` times; the agent's mailbox, checkpoint
and the ledger make the restart lose and repeat nothing.

The run ends when the ``stop_with`` agent's strategies have stopped and the
ledger has drained (every candidate has its result), on Ctrl-C, or after
``timeout_s``. Agents are then shut down, which checkpoints them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from academy.exchange import LocalExchangeFactory
from academy.handle import Handle
from academy.identifier import AgentId
from academy.manager import Manager

from academy_ml.exchange import RedisExchangeFactory
from academy_ml.knowledge import InMemoryKnowledgeBase, KnowledgeBase, RedisKnowledgeBase
from academy_ml.launch.build import build_agent, import_object, use_python_path
from academy_ml.launch.config import Deployment
from academy_ml.launch.identities import save_identities

__all__ = ["Progress", "RunOutcome", "up"]

logger = logging.getLogger(__name__)

#: Seconds between looks at the run.
POLL_S = 0.5


@dataclass
class Progress:
    """What the watcher reports on every look."""

    counts: dict[str, int]
    stop_agent: dict[str, Any] | None
    restarts: dict[str, int]
    elapsed_s: float


@dataclass
class RunOutcome:
    """How a run ended."""

    reason: str  # "done", "interrupted", "timeout"
    counts: dict[str, int]
    elapsed_s: float
    restarts: dict[str, int] = field(default_factory=dict)
    log_dir: Path | None = None


async def up(
    deployment: Deployment,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    timeout_s: float | None = None,
    log_dir: Path | None = None,
    max_restarts: int = 3,
    knowledge: KnowledgeBase | None = None,
) -> RunOutcome:
    """Launch every agent of ``deployment`` and watch the run until it ends.

    Args:
        deployment: A loaded deployment.
        knowledge: The in-process knowledge base to use (``knowledge =
            "memory"`` deployments; default: a new one), so the caller can
            read it after the run.
        on_progress: Called on every look at the run.
        timeout_s: End the run after this many seconds.
        log_dir: Where host processes write their logs (Redis deployments;
            default ``runinfo/<name>``).
        max_restarts: Restarts per host process that died.
    """
    use_python_path(deployment)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if deployment.processes:
            return await _up_processes(
                deployment, stop, on_progress, timeout_s, log_dir, max_restarts
            )
        return await _up_embedded(deployment, stop, on_progress, timeout_s, knowledge)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _up_embedded(
    deployment: Deployment,
    stop: asyncio.Event,
    on_progress: Callable[[Progress], None] | None,
    timeout_s: float | None,
    knowledge: KnowledgeBase | None,
) -> RunOutcome:
    url = deployment.knowledge_url
    kb: KnowledgeBase = (
        (knowledge or InMemoryKnowledgeBase())
        if url is None
        else RedisKnowledgeBase(url, deployment.settings.name)
    )
    shared: KnowledgeBase | str = kb if url is None else url
    pool = ThreadPoolExecutor(len(deployment.agents), thread_name_prefix="academy-ml-agent")
    factory: Any = (
        LocalExchangeFactory()
        if deployment.settings.exchange == "local"
        else RedisExchangeFactory(deployment.settings.exchange)
    )
    manager = await Manager.from_exchange_factory(factory, executors=pool)
    try:
        async with manager:
            registrations = {
                name: await manager.register_agent(
                    import_object(spec.agent.class_, f"{spec.file}: agent.class"), name=name
                )
                for name, spec in deployment.agents.items()
            }
            handles: dict[str, Handle[Any]] = {
                name: Handle(reg.agent_id) for name, reg in registrations.items()
            }
            for name, spec in deployment.agents.items():
                agent = build_agent(deployment, spec, handles, shared)
                await manager.launch(agent, registration=registrations[name])
            outcome = await _watch(deployment, kb, handles, stop, on_progress, timeout_s)
    finally:
        if url is not None:
            await kb.close()
    return outcome


async def _up_processes(
    deployment: Deployment,
    stop: asyncio.Event,
    on_progress: Callable[[Progress], None] | None,
    timeout_s: float | None,
    log_dir: Path | None,
    max_restarts: int,
) -> RunOutcome:
    url = deployment.knowledge_url
    assert url is not None
    kb = RedisKnowledgeBase(url, deployment.settings.name)
    factory = RedisExchangeFactory(deployment.settings.exchange)
    logs = log_dir or Path("runinfo") / deployment.settings.name
    logs.mkdir(parents=True, exist_ok=True)
    hosts: dict[str, _Host] = {}
    try:
        # Entering the client makes it the one handles created here use.
        async with await factory.create_user_client() as client:
            ids: dict[str, AgentId[Any]] = {}
            for name, spec in deployment.agents.items():
                cls = import_object(spec.agent.class_, f"{spec.file}: agent.class")
                ids[name] = (await client.register_agent(cls, name=name)).agent_id
            await save_identities(kb, ids)
            hosts = {name: _Host(deployment, name, logs) for name in deployment.agents}
            for process in hosts.values():
                process.start()
            handles: dict[str, Handle[Any]] = {name: Handle(aid) for name, aid in ids.items()}
            supervise = asyncio.create_task(_supervise(hosts, max_restarts, stop))
            try:
                outcome = await _watch(deployment, kb, handles, stop, on_progress, timeout_s, hosts)
            finally:
                supervise.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervise
            running = [handles[name] for name, h in hosts.items() if h.running]
            await asyncio.gather(
                *(asyncio.wait_for(handle.shutdown(), 5.0) for handle in running),
                return_exceptions=True,
            )
            await asyncio.to_thread(_stop_hosts, list(hosts.values()))
            for agent_id in ids.values():
                with contextlib.suppress(Exception):
                    await client.terminate(agent_id)
    finally:
        await asyncio.to_thread(_stop_hosts, list(hosts.values()))
        await kb.close()
    outcome.log_dir = logs
    return outcome


class _Host:
    """One host process and its restarts."""

    def __init__(self, deployment: Deployment, name: str, logs: Path) -> None:
        self.name = name
        self.command = [
            *(sys.executable, "-m", "academy_ml.launch.host", str(deployment.file)),
            *("--agent", name, *(f"--set={item}" for item in deployment.overrides)),
        ]
        self.log = logs / f"{name}.log"
        self.pid_file = logs / f"{name}.pid"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def running(self) -> bool:
        """The process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
            )
        self.pid_file.write_text(str(self.process.pid))


async def _supervise(hosts: dict[str, _Host], max_restarts: int, stop: asyncio.Event) -> None:
    """Start a host again when it dies (unless the run is stopping)."""
    while not stop.is_set():
        await asyncio.sleep(POLL_S)
        for process in hosts.values():
            assert process.process is not None
            code = process.process.poll()
            if code is None or stop.is_set():
                continue
            if process.restarts >= max_restarts:
                logger.error(
                    "%s exited (%s) %d times; not restarted",
                    process.name,
                    code,
                    process.restarts + 1,
                )
                continue
            process.restarts += 1
            logger.warning(
                "%s exited (%s); starting it again (restart %d)",
                process.name,
                code,
                process.restarts,
            )
            process.start()


def _stop_hosts(hosts: list[_Host]) -> None:
    """SIGTERM what still runs, then SIGKILL what does not exit within 30 s."""
    running = [h.process for h in hosts if h.process is not None and h.process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + 30.0
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _watch(
    deployment: Deployment,
    kb: KnowledgeBase,
    handles: dict[str, Handle[Any]],
    stop: asyncio.Event,
    on_progress: Callable[[Progress], None] | None,
    timeout_s: float | None,
    hosts: dict[str, _Host] | None = None,
) -> RunOutcome:
    """Look at the run every POLL_S until it is done, interrupted or timed out."""
    start = time.monotonic()
    stop_with = deployment.settings.stop_with
    drained_before = False
    while True:
        elapsed = time.monotonic() - start
        counts = await kb.counts()
        status: dict[str, Any] | None = None
        if stop_with is not None:
            try:
                status = await asyncio.wait_for(handles[stop_with].status(), 5.0)
            except Exception as error:
                logger.warning("%s did not answer status: %r", stop_with, error)
        restarts = {name: h.restarts for name, h in (hosts or {}).items()}
        if on_progress is not None:
            on_progress(Progress(counts, status, dict(restarts), elapsed))
        drained = counts["pending"] == 0 and status is not None and bool(status["stopped"])
        if drained and drained_before:  # twice in a row: no batch was on its way
            return RunOutcome("done", counts, elapsed, restarts)
        drained_before = drained
        if stop.is_set():
            return RunOutcome("interrupted", counts, elapsed, restarts)
        if timeout_s is not None and elapsed > timeout_s:
            return RunOutcome("timeout", counts, elapsed, restarts)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)
