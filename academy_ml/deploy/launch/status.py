"""``academy-ml status``: the agents, endpoints, caches and recent strategy firings of a deployment.

Strategies are evaluated far more often than they act (a constraint not
met), so the firings shown are the latest that acted, read from each agent's
recent evaluations, with the latest evaluations apart.

Agents are asked for their status (a short timeout: one that does not answer
shows its last checkpoint instead); the exchange adds each mailbox's
heartbeat and queue. Endpoints come from the registry, with the analysis
queue its agents report; caches are read from the endpoints' cache
directories when they are on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from academy.handle import Handle
from pydantic import BaseModel

from academy_ml.agents.knowledge import KnowledgeBase, StrategyFiring, unseal_state
from academy_ml.agents.strategic import CHECKPOINT_KIND
from academy_ml.compute.placement import load_registry
from academy_ml.deploy.launch.config import Deployment
from academy_ml.deploy.launch.identities import load_identities
from academy_ml.deploy.launch.lifecycle import open_knowledge
from academy_ml.engine.cache import CacheSummary, summarize
from academy_ml.exceptions import WireError
from academy_ml.messaging import RedisExchangeFactory

__all__ = ["AgentStatus", "DeploymentStatus", "EndpointStatus", "collect_status"]

#: How long an agent may take to answer ``status``.
ANSWER_TIMEOUT_S = 2.0

#: Evaluations read per agent when looking for the latest firings that acted.
FIRINGS_WINDOW = 1000


class AgentStatus(BaseModel):
    """One agent: answering or not, its state, its mailbox."""

    name: str
    answering: bool
    state: dict[str, Any]
    stopped: bool | None
    heartbeat_age_s: float | None
    queued: int | None


class EndpointStatus(BaseModel):
    """One endpoint of the registry."""

    name: str
    kind: str
    used_by: list[str]
    queue_depth: int | None
    cache: CacheSummary | None

    model_config = {"arbitrary_types_allowed": True}


class DeploymentStatus(BaseModel):
    """Everything ``academy-ml status`` shows."""

    name: str
    registered: bool
    counts: dict[str, int]
    agents: list[AgentStatus]
    endpoints: list[EndpointStatus]
    #: The latest firings that acted (their actions ran), newest first.
    firings: list[StrategyFiring]
    #: The latest evaluations, acted or not, newest first.
    evaluations: list[StrategyFiring]


async def collect_status(deployment: Deployment, *, firings: int = 10) -> DeploymentStatus:
    """Collect the status of a deployment whose knowledge base is in Redis or SQLite.

    Args:
        deployment: The deployment.
        firings: How many firings that acted, and how many evaluations, to show.

    Raises:
        ConfigError: the deployment keeps its knowledge in memory (only its
            own ``up`` process can see it), or its SQLite file does not exist
            (it was never launched from this config).
        KnowledgeStoreError: the SQLite file is not a usable knowledge base.
    """
    kb = open_knowledge(deployment)
    try:
        ids = await load_identities(kb) or {}
        counts = await kb.counts()
        acted, recent = await _firings(kb, deployment, firings)
        if deployment.processes and ids:
            factory = RedisExchangeFactory(deployment.settings.exchange)
            # Entered, so the handles below call through this client.
            async with await factory.create_user_client():
                agents = [
                    await _agent(kb, name, ids.get(name), factory) for name in deployment.agents
                ]
        else:  # an embedded deployment's mailboxes live in its up process
            agents = [await _agent(kb, name, None, None) for name in deployment.agents]
    finally:
        await kb.close()
    return DeploymentStatus(
        name=deployment.settings.name,
        registered=bool(ids),
        counts=counts,
        agents=agents,
        endpoints=_endpoints(deployment, agents),
        firings=acted,
        evaluations=recent,
    )


async def _firings(
    kb: KnowledgeBase, deployment: Deployment, n: int
) -> tuple[list[StrategyFiring], list[StrategyFiring]]:
    """The latest ``n`` firings that acted and the latest ``n`` evaluations, newest first.

    Read per agent, so that one agent's frequent evaluations do not push
    another's firings out of the window.
    """
    seen: list[StrategyFiring] = []
    for name in deployment.agents:
        seen.extend(await kb.firings(agent=name, limit=FIRINGS_WINDOW))
    seen.sort(key=lambda firing: firing.created, reverse=True)
    return [firing for firing in seen if firing.fired][:n], seen[:n]


async def _agent(
    kb: KnowledgeBase, name: str, agent_id: Any, factory: RedisExchangeFactory | None
) -> AgentStatus:
    state: dict[str, Any] = {}
    stopped: bool | None = None
    answering = False
    heartbeat: float | None = None
    queued: int | None = None
    if agent_id is not None and factory is not None:
        info = await factory.mailbox_info(agent_id)
        heartbeat, queued = info.heartbeat_age_s, info.queued
        with contextlib.suppress(Exception):
            answer = await asyncio.wait_for(Handle(agent_id).status(), ANSWER_TIMEOUT_S)
            state, stopped, answering = dict(answer["state"]), bool(answer["stopped"]), True
    if not answering:
        saved = await kb.load_checkpoint(name)
        if saved is not None:
            try:
                state = unseal_state(CHECKPOINT_KIND, saved)
            except WireError as exc:
                state = {"checkpoint": f"unreadable: {exc}"}
            stopped = bool(state.get("strategies_stopped", False))
    state.pop("generator", None)  # model internals, not status
    return AgentStatus(
        name=name,
        answering=answering,
        state=state,
        stopped=stopped,
        heartbeat_age_s=heartbeat,
        queued=queued,
    )


def _endpoints(deployment: Deployment, agents: list[AgentStatus]) -> list[EndpointStatus]:
    specs = load_registry(deployment.registry)
    states = {agent.name: agent.state for agent in agents}
    found = []
    for name, spec in specs.items():
        users = [
            agent
            for agent, agent_spec in deployment.agents.items()
            if agent_spec.placement is not None and agent_spec.placement.endpoint == name
        ]
        depths = [states[u]["queue_depth"] for u in users if "queue_depth" in states.get(u, {})]
        cache_dir = getattr(spec, "cache_dir", None)
        cache = None
        if cache_dir is not None and Path(cache_dir).expanduser().is_dir():
            # CacheError (an OSError): not a cache yet, or refused as not private.
            with contextlib.suppress(OSError):
                cache = summarize(cache_dir)
        found.append(
            EndpointStatus(
                name=name,
                kind=spec.kind,
                used_by=users,
                queue_depth=sum(depths) if depths else None,
                cache=cache,
            )
        )
    return found
