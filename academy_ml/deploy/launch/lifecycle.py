"""A deployment's state between runs: finished or not, forgetting it, stopping its agents.

A deployment is *finished* when its ``stop_with`` agent's last checkpoint
says its strategies stopped (the planner's budget strategy fired, or its
generator ran out) and the ledger holds nothing pending: that is what ``up``
waits for before it reports "done". Starting it again would only report the
old results at once, so ``up`` refuses unless told ``--resume``. A run
stopped early (a signal, ``--timeout``, a crash) left its checkpoint with
strategies running or candidates pending, and resumes as before. A
deployment without ``stop_with`` never finishes.

``reset`` forgets a deployment's state: its SQLite file (with its WAL and
shared-memory files), or in Redis every key of its knowledge base (results,
ledger, models, firings, checkpoints and the agents' identities), found with
SCAN, never KEYS, so Redis is not blocked on a large keyspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from academy.handle import Handle

from academy_ml.agents.knowledge import KnowledgeBase, unseal_state
from academy_ml.agents.strategic import CHECKPOINT_KIND
from academy_ml.core.resp import Connection
from academy_ml.deploy.launch.build import knowledge_factory
from academy_ml.deploy.launch.config import Deployment
from academy_ml.deploy.launch.identities import load_identities
from academy_ml.exceptions import ConfigError, WireError
from academy_ml.messaging import RedisExchangeFactory

__all__ = [
    "FinishedDeployment",
    "check_stoppable",
    "finished_counts",
    "open_knowledge",
    "reset_deployment",
    "sqlite_files",
    "stop_agents",
]

#: Files SQLite keeps beside a database in WAL mode (and a rollback journal).
_SIDECARS = ("-wal", "-shm", "-journal")

#: Keys deleted per UNLINK (and asked for per SCAN step).
_BATCH = 500

#: Seconds Redis has to answer a reset.
_CONNECT_TIMEOUT_S = 5.0


class FinishedDeployment(ConfigError):
    """``up`` was asked to start a finished deployment again without ``--resume``."""


def open_knowledge(deployment: Deployment) -> KnowledgeBase:
    """The deployment's knowledge base, as it is outside of any run (the caller closes it).

    Raises:
        ConfigError: It lives in memory (only its ``up`` process sees it), or
            its SQLite file does not exist (never launched from this config).
    """
    path = deployment.knowledge_path
    if deployment.knowledge_url is None and path is None:
        raise ConfigError(
            f"{deployment.file}: knowledge = 'memory' lives inside its `academy-ml up` process; "
            "use knowledge = 'sqlite' or a Redis deployment to inspect it from outside"
        )
    if path is not None and not path.exists():  # opening it would create it
        raise ConfigError(
            f"{deployment.file}: no knowledge base at {path} yet "
            f"(`academy-ml up {deployment.file}` creates it)"
        )
    return knowledge_factory(deployment).open()


async def finished_counts(deployment: Deployment) -> dict[str, int] | None:
    """The ledger's counts if the deployment is finished (see the module), else None.

    Raises:
        KnowledgeStoreError: The SQLite file is not a usable knowledge base.
    """
    stop_with = deployment.settings.stop_with
    path = deployment.knowledge_path
    if stop_with is None or (deployment.knowledge_url is None and path is None):
        return None
    if path is not None and not path.exists():
        return None
    kb = knowledge_factory(deployment).open()
    try:
        saved = await kb.load_checkpoint(stop_with)
        if saved is None:
            return None
        try:
            state = unseal_state(CHECKPOINT_KIND, saved)
        except WireError:  # the agent starts afresh from it, so the run is not over
            return None
        counts = await kb.counts()
    finally:
        await kb.close()
    if state.get("strategies_stopped") is True and counts["pending"] == 0:
        return counts
    return None


def sqlite_files(path: Path) -> list[Path]:
    """A SQLite database and the sidecar files of it that exist."""
    candidates = [path, *(path.with_name(path.name + suffix) for suffix in _SIDECARS)]
    return [file for file in candidates if file.exists()]


async def reset_deployment(deployment: Deployment) -> str:
    """Forget the deployment's state; returns what was removed, for the user.

    Raises:
        ConfigError: Its knowledge lives in memory (nothing outlives a run).
        OSError: A SQLite file could not be removed.
        ConnectionLost, AuthError: Redis unreachable or refusing.
    """
    path = deployment.knowledge_path
    url = deployment.knowledge_url
    if path is not None:
        files = sqlite_files(path)
        for file in files:
            file.unlink()
        if not files:
            return f"nothing to forget at {path}"
        return f"removed {', '.join(str(file) for file in files)}"
    if url is None:
        raise ConfigError(
            f"{deployment.file}: knowledge = 'memory' keeps nothing between runs; "
            "there is nothing to reset"
        )
    pattern = f"{deployment.settings.name}:kb:*"  # names are [\w-]+: no glob characters
    removed = await _unlink_matching(Connection(url, connect_timeout_s=_CONNECT_TIMEOUT_S), pattern)
    return f"removed {removed} Redis key(s) matching {pattern}"


async def _unlink_matching(connection: Connection, pattern: str) -> int:
    """UNLINK every key matching ``pattern`` (SCAN steps; keys seen twice count once)."""
    removed = 0
    try:
        cursor = b"0"
        while True:
            cursor, keys = await connection.call(
                b"SCAN", cursor, b"MATCH", pattern.encode(), b"COUNT", _BATCH
            )
            for start in range(0, len(keys), _BATCH):
                removed += int(await connection.call(b"UNLINK", *keys[start : start + _BATCH]))
            if cursor in (b"0", 0, "0"):
                return removed
    finally:
        await connection.close()


def check_stoppable(deployment: Deployment) -> None:
    """Refuse a deployment whose agents have no process of their own to stop.

    Raises:
        ConfigError: The agents are threads of one ``up`` process.
    """
    if not deployment.processes:
        raise ConfigError(
            f"{deployment.file}: an embedded deployment's agents are threads of its "
            "`academy-ml up` process; stop that process (Ctrl-C) instead"
        )


async def stop_agents(deployment: Deployment) -> list[str]:
    """Ask every agent of a host-process deployment to checkpoint and shut down.

    Returns the names of the agents asked. Each host's agent checkpoints in
    its shutdown and its process exits; ``up``, if it still supervises the
    run, sees its stop agent gone and its hosts exit.

    Raises:
        ConfigError: The agents are threads of one ``up`` process (nothing
            separate to stop), or the deployment was never launched.
    """
    check_stoppable(deployment)
    kb = open_knowledge(deployment)
    try:
        ids = await load_identities(kb)
    finally:
        await kb.close()
    if not ids:
        raise ConfigError(f"{deployment.file}: never launched (no agents registered)")
    factory = RedisExchangeFactory(deployment.settings.exchange)
    asked: list[str] = []
    async with await factory.create_user_client():
        for name, agent_id in ids.items():
            handle: Handle[Any] = Handle(agent_id)
            await handle.shutdown()
            asked.append(name)
    return asked
