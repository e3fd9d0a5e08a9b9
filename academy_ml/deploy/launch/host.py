"""One agent of a deployment in a process of its own: ``python -m academy_ml.deploy.launch.host``.

``academy-ml up`` starts one host per agent when the deployment uses the
Redis exchange, and starts it again if it dies. An operator can do the same
by hand: the agent's identity (its mailbox) is kept in the knowledge base,
so a host started again serves the same mailbox and restores the agent's
checkpoint. SIGTERM or SIGINT shut the agent down cleanly (checkpoint first)
and interrupt the agent's pipeline batches on every thread, so that a long
batch does not hold the exit up (:mod:`academy_ml.deploy.launch.interrupt`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from academy.handle import Handle
from academy.runtime import Runtime, RuntimeConfig

from academy_ml.deploy.launch.build import build_agent, knowledge_factory, use_python_path
from academy_ml.deploy.launch.config import Deployment, load_deployment
from academy_ml.deploy.launch.identities import load_identities
from academy_ml.deploy.launch.interrupt import Interrupter, interrupt_native_runs
from academy_ml.deploy.launch.logs import host_logging
from academy_ml.exceptions import AcademyMLError, ConfigError
from academy_ml.messaging import RedisExchangeFactory
from academy_ml.messaging.transport import RedisAgentRegistration

__all__ = ["host", "main"]

logger = logging.getLogger(__name__)


async def host(deployment: Deployment, name: str, interrupter: Interrupter | None = None) -> None:
    """Run agent ``name`` of ``deployment`` until it shuts down.

    Args:
        deployment: A loaded deployment with the Redis exchange.
        name: The agent to run.
        interrupter: Started on SIGTERM or SIGINT; the caller closes it once
            the event loop has closed (which waits for the loop's worker
            threads). Without one, a signal interrupts the native runs in
            flight once.

    Raises:
        ConfigError: No such agent, or ``up`` has not registered the deployment yet.
    """
    if name not in deployment.agents:
        raise ConfigError(f"{deployment.file}: no agent {name!r}")
    kb = knowledge_factory(deployment).open()  # Redis or SQLite (checked by the config)
    try:
        ids = await load_identities(kb)
    finally:
        await kb.close()
    if ids is None or name not in ids:
        raise ConfigError(
            f"{deployment.file}: agent {name!r} is not registered (run `academy-ml up`)"
        )
    handles = {other: Handle(agent_id) for other, agent_id in ids.items()}
    agent = build_agent(deployment, deployment.agents[name], handles, knowledge_factory(deployment))
    registration: RedisAgentRegistration[Any] = RedisAgentRegistration(agent_id=ids[name])
    # Academy's registration protocol is generic over the agent type, which a
    # class named in a spec file cannot give mypy.
    runtime = Runtime(  # type: ignore[type-var]
        agent,
        exchange_factory=RedisExchangeFactory(deployment.settings.exchange),
        registration=registration,
        # The mailbox outlives this process so that a restarted host serves it.
        config=RuntimeConfig(terminate_on_success=False, terminate_on_error=False),
    )

    def shut_down() -> None:
        if interrupter is not None:
            interrupter.start()
        else:
            interrupt_native_runs()
        runtime.signal_shutdown()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shut_down)
    await runtime.run_until_complete()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m academy_ml.deploy.launch.host CONFIG --agent NAME [--set ...]``."""
    parser = argparse.ArgumentParser(prog="python -m academy_ml.deploy.launch.host")
    parser.add_argument("config")
    parser.add_argument("--agent", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        deployment = load_deployment(args.config, args.set)
        host_logging(deployment.settings.log_level, args.agent)
        use_python_path(deployment)
        with Interrupter() as interrupter:
            asyncio.run(host(deployment, args.agent, interrupter))
    except AcademyMLError as error:
        print(f"academy-ml host: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
