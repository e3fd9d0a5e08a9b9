"""What ``academy-ml status`` prints: tables, one JSON document, or either again and again.

``--json`` prints the status as one JSON document on one line (agents and
their state, the ledger's counts, endpoints and their caches, the latest
firings that acted and the latest evaluations). ``--watch [SECONDS]``
collects it again every SECONDS (2 by default) until Ctrl-C, which exits 0:
as a table redrawn in place (rich's Live), or with ``--json`` as one line
per collection (JSON Lines). A refresh that fails (Redis gone for a moment)
is shown and the next one tried; only the first collection's errors end the
command, as they do without ``--watch``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from academy_ml.agents.knowledge import StrategyFiring
from academy_ml.core.resp import AuthError, ConnectionLost
from academy_ml.deploy.launch.config import Deployment
from academy_ml.deploy.launch.status import DeploymentStatus, collect_status
from academy_ml.exceptions import AcademyMLError

__all__ = ["render_status", "status_json", "watch_status"]


def status_json(status: DeploymentStatus) -> str:
    """The status as one line of JSON."""
    return json.dumps(status.model_dump(mode="json"), separators=(",", ":"))


def render_status(status: DeploymentStatus, note: str | None = None) -> RenderableType:
    """The status as rich tables (a headline, agents, endpoints, firings, evaluations)."""
    counts = status.counts
    headline = Text.from_markup(
        f"[bold]{escape(status.name)}[/bold]: {counts['candidates']} candidates, "
        f"{counts['results']} results, {counts['pending']} pending"
        + ("" if status.registered else " (never launched)")
    )
    parts: list[RenderableType] = [headline]
    if note is not None:
        parts.append(Text(note, style="yellow"))
    agents = Table("agent", "answering", "heartbeat", "queued", "stopped", "state", title="agents")
    for agent in status.agents:
        heartbeat = "-" if agent.heartbeat_age_s is None else f"{agent.heartbeat_age_s:.1f} s ago"
        state = ", ".join(f"{k}={v}" for k, v in sorted(agent.state.items()))
        agents.add_row(
            agent.name,
            "yes" if agent.answering else "no (last checkpoint)",
            heartbeat,
            "-" if agent.queued is None else str(agent.queued),
            "-" if agent.stopped is None else str(agent.stopped).lower(),
            escape(state),
        )
    endpoints = Table("endpoint", "kind", "used by", "queue", "cache", title="endpoints")
    for endpoint in status.endpoints:
        cache = "-"
        if endpoint.cache is not None:
            totals = endpoint.cache.totals
            cache = f"{endpoint.cache.entries} entries, {totals.hits} hits, {totals.misses} misses"
        endpoints.add_row(
            endpoint.name,
            endpoint.kind,
            ", ".join(endpoint.used_by) or "-",
            "-" if endpoint.queue_depth is None else str(endpoint.queue_depth),
            cache,
        )
    now = time.time()
    parts += [
        agents,
        endpoints,
        _firings("recent firings (strategies that acted)", status.firings, now),
        _firings("latest evaluations", status.evaluations, now),
    ]
    return Group(*parts)


def _firings(title: str, firings: list[StrategyFiring], now: float) -> Table:
    table = Table("when", "agent", "strategy", "fired", "why", "outcome", title=title)
    for firing in firings:
        when = datetime.fromtimestamp(firing.created, UTC).strftime("%H:%M:%S")
        table.add_row(
            f"{when} ({now - firing.created:.0f} s ago)",
            firing.agent,
            firing.strategy,
            "yes" if firing.fired else "no",
            escape(firing.reason),
            escape(firing.outcome or "-"),
        )
    return table


async def watch_status(
    deployment: Deployment,
    first: DeploymentStatus,
    interval_s: float,
    as_json: bool,
    console: Console,
) -> None:
    """Show ``first``, then collect and show the status every ``interval_s`` seconds, forever.

    The caller ends it (Ctrl-C).
    """
    if as_json:
        await _refresh(deployment, first, interval_s, _json_lines)
        return
    with Live(render_status(first), console=console, auto_refresh=False) as live:

        def redraw(status: DeploymentStatus, note: str | None) -> None:
            live.update(render_status(status, note), refresh=True)

        await _refresh(deployment, first, interval_s, redraw)


def _json_lines(status: DeploymentStatus, note: str | None) -> None:
    if note is not None:
        print(f"academy-ml status: {note}", file=sys.stderr, flush=True)
    else:
        print(status_json(status), flush=True)


async def _refresh(
    deployment: Deployment,
    last: DeploymentStatus,
    interval_s: float,
    show: Callable[[DeploymentStatus, str | None], None],
) -> None:
    show(last, None)
    while True:
        await asyncio.sleep(interval_s)
        try:
            last = await collect_status(deployment)
        except (AcademyMLError, ConnectionLost, AuthError, OSError) as error:
            when = datetime.now(UTC).strftime("%H:%M:%S")
            show(last, f"refresh at {when} failed: {error}; showing the last status")
            continue
        show(last, None)
