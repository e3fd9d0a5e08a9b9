"""``academy-ml up``: launch a deployment's agents, watch the run, stop cleanly.

With Academy's in-process exchange (or ``processes = false``) the agents are
threads of this process. With the Redis exchange each agent is a host
process (:mod:`academy_ml.deploy.launch.host`) that this supervisor starts again
when it dies, up to ``max_restarts`` times; the agent's mailbox, checkpoint
and the ledger make the restart lose and repeat nothing.

The run ends when the ``stop_with`` agent's strategies have stopped and the
ledger has drained (every candidate has its result), on the first SIGINT or
SIGTERM, after ``timeout_s``, or when ``academy-ml down`` asks (host
processes). Agents are then shut down, which checkpoints them and closes
their endpoints; pipeline batches still running on their worker threads
(which no signal reaches) are interrupted, not waited for
(:mod:`academy_ml.deploy.launch.interrupt`); host processes get SIGTERM and
STOP_GRACE_S to exit before SIGKILL. A second signal forces: every process
of the run is killed and this process exits at once (``128 + signal``).

Only this process sees the terminal's Ctrl-C: hosts start in sessions of
their own and endpoints start their processes in groups of their own, so
the run stops in order (agents before the endpoints they use). Whatever
they started is tagged (:mod:`academy_ml.deploy.launch.reaper`): when a host dies,
the supervisor ends what it left behind before starting it again, and when
the run ends nothing tagged survives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from academy.exchange import LocalExchangeFactory
from academy.handle import Handle
from academy.identifier import AgentId
from academy.manager import Manager

from academy_ml.agents.knowledge import KnowledgeBase, KnowledgeFactory
from academy_ml.deploy.launch.build import (
    build_agent,
    check_agents,
    import_object,
    knowledge_factory,
    use_python_path,
)
from academy_ml.deploy.launch.config import Deployment
from academy_ml.deploy.launch.identities import save_identities
from academy_ml.deploy.launch.interrupt import Interrupter, interrupt_native_runs
from academy_ml.deploy.launch.lifecycle import down_requested, request_down
from academy_ml.deploy.launch.reaper import RUN_VARIABLE, reap, run_tag
from academy_ml.messaging import RedisExchangeFactory

__all__ = ["Progress", "RunOutcome", "up"]

logger = logging.getLogger(__name__)

#: Seconds between looks at the run.
POLL_S = 0.5

#: Seconds the ``stop_with`` agent has to answer a look's status request.
ANSWER_TIMEOUT_S = 5.0

#: Seconds a host process has to shut its agent down after SIGTERM.
STOP_GRACE_S = 6.0

#: Seconds stragglers of a stopped run (or of a dead host) get between SIGTERM and SIGKILL.
REAP_GRACE_S = 1.0


@dataclass
class Progress:
    """What the watcher reports on every look."""

    counts: dict[str, int]
    stop_agent: dict[str, Any] | None
    restarts: dict[str, int]
    elapsed_s: float
    #: The ``stop_with`` agent has not answered yet (its host is still starting).
    starting: bool = False


@dataclass
class RunOutcome:
    """How a run ended."""

    reason: str  # "done", "interrupted", "timeout", "down" (`academy-ml down`)
    counts: dict[str, int]
    elapsed_s: float
    restarts: dict[str, int] = field(default_factory=dict)
    log_dir: Path | None = None
    #: The signal that interrupted the run.
    signal: int | None = None
    #: Processes of the run still alive after its agents stopped (then killed).
    reaped: int = 0


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
        knowledge: An in-process knowledge base the agents share instead of
            the deployment's SQLite or in-memory one, so the caller can read
            it after the run (a Redis deployment ignores it).
        on_progress: Called on every look at the run.
        timeout_s: End the run after this many seconds.
        log_dir: Where host processes write their logs (default: the
            deployment's ``log_dir``, ``runinfo/<name>`` beside the config,
            where Parsl endpoints keep their run directories).
        max_restarts: Restarts per host process that died.
    """
    use_python_path(deployment)
    check_agents(deployment)
    stop = asyncio.Event()
    sessions: set[int] = set()  # of the host processes started
    with run_tag() as tag, _signals(stop, tag, sessions) as received:
        try:
            if deployment.processes:
                outcome = await _up_processes(
                    deployment, stop, on_progress, timeout_s, log_dir, max_restarts, tag, sessions
                )
            else:
                outcome = await _up_embedded(deployment, stop, on_progress, timeout_s, knowledge)
                outcome.log_dir = log_dir or deployment.log_dir
        finally:  # still under the handlers: a second signal meanwhile forces
            reaped = await asyncio.to_thread(reap, tag, REAP_GRACE_S, sessions)
    if reaped:
        logger.info("%d process(es) of the run outlived its agents; killed", reaped)
    outcome.reaped = reaped
    outcome.signal = received[0] if outcome.reason == "interrupted" and received else None
    return outcome


@contextlib.contextmanager
def _signals(stop: asyncio.Event, tag: str, sessions: set[int]) -> Iterator[list[int]]:
    """SIGINT and SIGTERM: the first stops the run, the second forces an exit.

    Yields the signals received. Python-level handlers rather than the event
    loop's, so that a second signal acts even while a shutdown step blocks
    the loop. Outside the main thread (no signals there) nothing changes.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    loop = asyncio.get_running_loop()

    def handle(signum: int, _frame: object) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            os.write(2, f"academy-ml up: {name}: stopping the run (again to force)\n".encode())
            interrupt_native_runs()  # batches on agents' worker threads, which see no signal
            loop.call_soon_threadsafe(stop.set)
            return
        os.write(2, f"academy-ml up: second {name}: killing the run's processes\n".encode())
        reap(tag, sessions=sessions)
        if os.isatty(2):
            os.write(2, b"\x1b[?25h")  # the progress bar hid the cursor
        os._exit(128 + received[0])

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


async def _up_embedded(
    deployment: Deployment,
    stop: asyncio.Event,
    on_progress: Callable[[Progress], None] | None,
    timeout_s: float | None,
    knowledge: KnowledgeBase | None,
) -> RunOutcome:
    shared = knowledge_factory(deployment, knowledge)
    kb = shared.open()  # the watcher's (an in-memory one is the agents' own)
    pool = ThreadPoolExecutor(len(deployment.agents), thread_name_prefix="academy-ml-agent")
    factory: Any = (
        LocalExchangeFactory()
        if deployment.settings.exchange == "local"
        else RedisExchangeFactory(deployment.settings.exchange)
    )
    manager = await Manager.from_exchange_factory(factory, executors=pool)
    try:
        # Agents' event loops wait for their worker threads before they close:
        # once the run is over, native batches there are cut short.
        with Interrupter() as interrupter:
            async with manager:
                handles = await _launch(manager, deployment, shared)
                # So that `status` knows the deployment was launched.
                await save_identities(kb, {name: h.agent_id for name, h in handles.items()})
                try:
                    outcome = await _watch(deployment, kb, handles, stop, on_progress, timeout_s)
                finally:
                    interrupter.start()
        if interrupter.interrupted:
            logger.info("interrupted %d native run(s) of stopping agents", interrupter.interrupted)
    finally:
        await kb.close()
    return outcome


async def _launch(
    manager: Manager[Any], deployment: Deployment, shared: KnowledgeFactory
) -> dict[str, Handle[Any]]:
    """Register and launch every agent of ``deployment`` on ``manager``; returns their handles."""
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
    return handles


async def _up_processes(
    deployment: Deployment,
    stop: asyncio.Event,
    on_progress: Callable[[Progress], None] | None,
    timeout_s: float | None,
    log_dir: Path | None,
    max_restarts: int,
    tag: str,
    sessions: set[int],
) -> RunOutcome:
    kb = knowledge_factory(deployment).open()
    factory = RedisExchangeFactory(deployment.settings.exchange)
    logs = log_dir or deployment.log_dir
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
            await request_down(kb, requested=False)  # one no `up` served is not for this run
            hosts = {
                name: _Host(deployment, name, logs, tag, sessions) for name in deployment.agents
            }
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
            await asyncio.to_thread(_stop_hosts, list(hosts.values()))
            if outcome.reason == "down":
                await request_down(kb, requested=False)  # served: `down` returns
            for agent_id in ids.values():
                with contextlib.suppress(Exception):
                    await client.terminate(agent_id)
    finally:
        await asyncio.to_thread(_stop_hosts, list(hosts.values()))
        await kb.close()
    outcome.log_dir = logs
    return outcome


class _Host:
    """One host process and its restarts.

    Each start runs in a session of its own (the terminal's Ctrl-C reaches
    only ``up``, which stops hosts in order) and under a tag of its own, which
    its interchange and workers inherit: :meth:`reap` ends what a dead start
    left behind without touching the next one.
    """

    def __init__(
        self, deployment: Deployment, name: str, logs: Path, run_tag: str, sessions: set[int]
    ) -> None:
        self.name = name
        self.run_tag = run_tag
        self.sessions = sessions
        self.command = [
            *(sys.executable, "-m", "academy_ml.deploy.launch.host", str(deployment.file)),
            *("--agent", name, *(f"--set={item}" for item in deployment.overrides)),
        ]
        self.log = logs / f"{name}.log"
        self.pid_file = logs / f"{name}.pid"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.given_up = False

    @property
    def running(self) -> bool:
        """The process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    @property
    def tag(self) -> str:
        """The tag of the current start (``<run>/<agent>/<restarts>``)."""
        return f"{self.run_tag}/{self.name}/{self.restarts}"

    def start(self) -> None:
        env = {**os.environ, RUN_VARIABLE: self.tag}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.sessions.add(self.process.pid)
        self.pid_file.write_text(str(self.process.pid))

    def reap(self) -> int:
        """End what the current start left running (its host has exited)."""
        assert self.process is not None
        return reap(self.tag, REAP_GRACE_S, {self.process.pid})


async def _supervise(hosts: dict[str, _Host], max_restarts: int, stop: asyncio.Event) -> None:
    """Start a host again when it dies (unless the run is stopping)."""
    while not stop.is_set():
        await asyncio.sleep(POLL_S)
        for process in hosts.values():
            assert process.process is not None
            code = process.process.poll()
            if code is None or stop.is_set() or process.given_up:
                continue
            left = await asyncio.to_thread(process.reap)
            if left:
                logger.warning(
                    "%s exited (%s); killed %d process(es) it left", process.name, code, left
                )
            if process.restarts >= max_restarts:
                logger.error(
                    "%s exited (%s) %d times; not restarted",
                    process.name,
                    code,
                    process.restarts + 1,
                )
                process.given_up = True
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
    """SIGTERM what still runs, SIGKILL what has not exited after STOP_GRACE_S, then reap."""
    running = [h.process for h in hosts if h.process is not None and h.process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("host %d did not stop within %.0f s; killed", process.pid, STOP_GRACE_S)
            process.kill()
            process.wait()
    for host in hosts:
        host.reap()


async def _watch(
    deployment: Deployment,
    kb: KnowledgeBase,
    handles: dict[str, Handle[Any]],
    stop: asyncio.Event,
    on_progress: Callable[[Progress], None] | None,
    timeout_s: float | None,
    hosts: dict[str, _Host] | None = None,
) -> RunOutcome:
    """Look at the run every POLL_S until it is done, interrupted or timed out.

    A signal ends a look at once: an agent busy or gone must not hold the
    stop up for the 5 s its status may take.
    """
    start = time.monotonic()
    drained_before = False
    answered = False  # by the stop_with agent: until then it is starting, not unresponsive
    counts = dict.fromkeys(("candidates", "results", "pending"), 0)
    while True:
        elapsed = time.monotonic() - start
        restarts = {name: h.restarts for name, h in (hosts or {}).items()}
        look = asyncio.ensure_future(
            _look(kb, handles, deployment.settings.stop_with, starting=not answered)
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({look, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not look.done():
            look.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await look
            return RunOutcome("interrupted", counts, elapsed, restarts)
        counts, status = look.result()
        answered = answered or status is not None
        if hosts is not None and await down_requested(kb):
            return RunOutcome("down", counts, elapsed, restarts)
        if on_progress is not None:
            starting = deployment.settings.stop_with is not None and not answered
            on_progress(Progress(counts, status, dict(restarts), elapsed, starting))
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


async def _look(
    kb: KnowledgeBase, handles: dict[str, Handle[Any]], stop_with: str | None, *, starting: bool
) -> tuple[dict[str, int], dict[str, Any] | None]:
    """The ledger's counts and the ``stop_with`` agent's status (None: it did not answer).

    An agent in a host process answers only once the host has imported its
    modules and started it (seconds, on a loaded machine): until it first
    answers (``starting``), not answering is expected, not worth a warning.
    """
    counts = await kb.counts()
    if stop_with is None:
        return counts, None
    try:
        return counts, await asyncio.wait_for(handles[stop_with].status(), ANSWER_TIMEOUT_S)
    except Exception as error:
        if starting:
            logger.debug("%s has not answered status yet (starting): %r", stop_with, error)
        else:
            logger.warning("%s did not answer status: %r", stop_with, error)
        return counts, None
