"""A deployment's state between runs: finished or not, forgetting it, stopping its agents.

A deployment is *finished* when its ``stop_with`` agent's last checkpoint
says its strategies stopped (the planner's budget strategy fired, or its
generator ran out) and the ledger holds nothing pending: that is what ``up``
waits for before it reports "done". Starting it again would only report the
old results at once, so ``up`` refuses unless told ``--resume`` (with which a
larger budget continues it: the planner clears its stop at startup). A run
stopped early (a signal, ``--timeout``, a crash) left its checkpoint with
strategies running or candidates pending, and resumes as before. A
deployment without ``stop_with`` never finishes.

``reset`` forgets a deployment's state: its SQLite file (with its WAL and
shared-memory files), or in Redis every key of its knowledge base (results,
ledger, models, firings, checkpoints and the agents' identities), found with
SCAN, never KEYS, so Redis is not blocked on a large keyspace.

``down`` stops a deployment whose agents run in host processes: it records
a request in the knowledge base, the ``up`` supervising the run sees it on
its next look and stops the hosts as on Ctrl-C (each agent checkpoints), and
marks it served. The hosts are not asked directly: ``up`` would start a
host that exited again.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from academy_ml.agents.knowledge import KnowledgeBase, seal_state, unseal_state
from academy_ml.agents.strategic import CHECKPOINT_KIND
from academy_ml.core.resp import Connection
from academy_ml.deploy.launch.build import knowledge_factory
from academy_ml.deploy.launch.config import Deployment
from academy_ml.deploy.launch.identities import load_identities
from academy_ml.exceptions import ConfigError, WireError

__all__ = [
    "FinishedDeployment",
    "check_stoppable",
    "down_requested",
    "finished_counts",
    "open_knowledge",
    "request_down",
    "reset_deployment",
    "sqlite_files",
    "stop_agents",
]

#: Files SQLite keeps beside a database in WAL mode (and a rollback journal).
_SIDECARS = ("-wal", "-shm", "-journal")

#: Keys deleted per UNLINK (and asked for per SCAN step).
_BATCH = 500

#: Checkpoint slot of a ``down`` request (no agent is named like this: names are ``[\w-]+``).
_DOWN_SLOT = "deployment/down"

#: Seconds ``down`` waits for ``up`` to stop the run (its hosts have STOP_GRACE_S each).
DOWN_WAIT_S = 60.0

#: Seconds between ``down``'s looks at its request.
_DOWN_POLL_S = 0.2

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


async def request_down(kb: KnowledgeBase, requested: bool = True) -> None:
    """Ask the ``up`` watching the deployment to stop it (False: the request was served)."""
    await kb.save_checkpoint(_DOWN_SLOT, seal_state(_DOWN_SLOT, {"requested": requested}))


async def down_requested(kb: KnowledgeBase) -> bool:
    """``academy-ml down`` asked for the run to stop and no ``up`` has served it yet."""
    saved = await kb.load_checkpoint(_DOWN_SLOT)
    if saved is None:
        return False
    try:
        return unseal_state(_DOWN_SLOT, saved).get("requested") is True
    except WireError:  # unreadable: not a request
        return False


async def stop_agents(deployment: Deployment, wait_s: float = DOWN_WAIT_S) -> None:
    """Ask the ``up`` supervising a host-process deployment to stop it; wait until it has.

    ``up`` looks for the request every time it looks at the run, stops its
    hosts in order (each agent checkpoints in its shutdown) and then marks
    the request served.

    Raises:
        ConfigError: The agents are threads of one ``up`` process (nothing
            separate to stop), the deployment was never launched, or no
            ``up`` served the request within ``wait_s`` (none is running).
    """
    check_stoppable(deployment)
    kb = open_knowledge(deployment)
    try:
        if not await load_identities(kb):
            raise ConfigError(f"{deployment.file}: never launched (no agents registered)")
        await request_down(kb)
        deadline = time.monotonic() + wait_s
        while await down_requested(kb):
            if time.monotonic() > deadline:
                await request_down(kb, requested=False)  # a later `up` must not stop at once
                raise ConfigError(
                    f"{deployment.file}: no `academy-ml up` stopped the run within {wait_s:.0f} s "
                    "(none is running; hosts started by hand stop with SIGTERM)"
                )
            await asyncio.sleep(_DOWN_POLL_S)
    finally:
        await kb.close()
