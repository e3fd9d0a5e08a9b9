"""Launching deployments: configs and agent specs, ``academy-ml up`` and ``academy-ml status``.

* :func:`load_deployment` reads ``configs/<x>.toml`` and the ``agents/*.toml``
  specs it names (pydantic; errors name the file, the key and the problem);
* :func:`up` launches the agents (threads with Academy's in-process
  exchange; supervised host processes with the Redis exchange) and watches
  the run until the planner stops and the ledger drains;
* :func:`collect_status` reads a running (or finished) deployment from its
  knowledge base (Redis or SQLite).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from academy_ml.core.lazy import lazy_exports

if TYPE_CHECKING:
    from academy_ml.deploy.launch.config import (
        AgentSpec,
        Deployment,
        load_agent_spec,
        load_deployment,
    )
    from academy_ml.deploy.launch.run import Progress, RunOutcome, up
    from academy_ml.deploy.launch.status import DeploymentStatus, collect_status

__all__ = [
    "AgentSpec",
    "Deployment",
    "DeploymentStatus",
    "Progress",
    "RunOutcome",
    "collect_status",
    "load_agent_spec",
    "load_deployment",
    "up",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AgentSpec": "academy_ml.deploy.launch.config",
        "Deployment": "academy_ml.deploy.launch.config",
        "load_agent_spec": "academy_ml.deploy.launch.config",
        "load_deployment": "academy_ml.deploy.launch.config",
        "Progress": "academy_ml.deploy.launch.run",
        "RunOutcome": "academy_ml.deploy.launch.run",
        "up": "academy_ml.deploy.launch.run",
        "DeploymentStatus": "academy_ml.deploy.launch.status",
        "collect_status": "academy_ml.deploy.launch.status",
    },
)
