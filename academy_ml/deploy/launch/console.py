"""What ``academy-ml up`` and ``academy-ml status`` print (rich), and their exit statuses.

``up`` exits 0 when the run completed, 128 + the signal when a signal
interrupted it (130 for Ctrl-C, 143 for SIGTERM) and 124 when ``--timeout``
ended it, as ``timeout(1)`` does. Errors a user can act on (a bad config,
Redis unreachable or refusing the password) raise an
:class:`~academy_ml.exceptions.AcademyMLError`, which the CLI prints as one
line (exit status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from academy_ml.core.reconnect import connection_error
from academy_ml.core.resp import AuthError, Connection, ConnectionLost
from academy_ml.deploy.launch.build import check_agents, use_python_path
from academy_ml.deploy.launch.config import Deployment, load_deployment
from academy_ml.deploy.launch.lifecycle import FinishedDeployment, finished_counts
from academy_ml.deploy.launch.logs import console_logging, deployment_logging, log_overrides
from academy_ml.deploy.launch.notices import cache_notice, deployment_caches
from academy_ml.deploy.launch.run import Progress as RunProgress
from academy_ml.deploy.launch.run import RunOutcome, up
from academy_ml.deploy.launch.status import collect_status
from academy_ml.deploy.launch.status_view import render_status, status_json, watch_status
from academy_ml.exceptions import ConfigError

__all__ = ["TIMEOUT_STATUS", "exit_status", "progress_bar", "run_status", "run_up"]

T = TypeVar("T")

#: Exit status of a run that ``--timeout`` ended (as ``timeout(1)``).
TIMEOUT_STATUS = 124

#: Seconds Redis has to answer before ``up`` or ``status`` starts.
CONNECT_TIMEOUT_S = 5.0


@contextlib.contextmanager
def progress_bar(
    deployment: Deployment, console: Console
) -> Iterator[Callable[[RunProgress], None]]:
    """A rich progress bar of a run (results of the stop agent's budget); yields its callback."""
    stop_with = deployment.settings.stop_with
    budget = None
    if stop_with is not None:
        budget = deployment.agents[stop_with].agent.init.get("budget")
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(deployment.settings.name, total=budget, detail="starting agents")

        def show(progress: RunProgress) -> None:
            counts = progress.counts
            state = progress.stop_agent["state"] if progress.stop_agent else {}
            detail = (
                f"results {counts['results']} · pending {counts['pending']} · "
                f"model v{state.get('model_version', '?')} · queue {state.get('queue_depth', '?')}"
            )
            if progress.starting:
                detail = "starting agents · " + detail
            restarts = sum(progress.restarts.values())
            if restarts:
                detail += f" · restarts {restarts}"
            bar.update(task, completed=counts["results"], detail=detail)

        yield show


def exit_status(outcome: RunOutcome) -> int:
    """0 (done, or stopped by ``down``), 128 + signal (interrupted) or :data:`TIMEOUT_STATUS`."""
    if outcome.reason in ("done", "down"):
        return 0
    if outcome.reason == "timeout":
        return TIMEOUT_STATUS
    return 128 + (outcome.signal or signal.SIGINT)


def run_up(args: argparse.Namespace) -> int:
    """``academy-ml up CONFIG``; returns the exit status (:func:`exit_status`).

    Raises:
        FinishedDeployment: The deployment is finished and ``--resume`` was not given.
    """
    # As overrides, so that host processes and Parsl endpoints see them too.
    overrides = [*args.set, *log_overrides(args.log_level, args.logs)]
    deployment = load_deployment(args.config, overrides)
    use_python_path(deployment)  # agent classes may live there (examples/, a test's modules)
    check_agents(deployment)  # before the progress bar: an error is then its only line
    _run(deployment, _reachable(deployment))
    finished = None if args.resume else _run(deployment, finished_counts(deployment))
    if finished is not None:
        raise FinishedDeployment(
            f"{deployment.file}: finished with {finished['results']} results; "
            f"`academy-ml up --resume {deployment.file}` continues it, "
            f"`academy-ml reset {deployment.file}` forgets it"
        )
    console = Console(stderr=True)
    log_file = deployment.log_dir / "up.log"
    try:
        logs_to = deployment_logging(deployment.settings.log_level, log_file, console)
    except OSError as error:
        raise ConfigError(f"{deployment.file}: cannot write the log {log_file}: {error}") from None
    notice = cache_notice(console, deployment_caches(deployment))
    with logs_to, progress_bar(deployment, console) as show:
        outcome = _run(deployment, up(deployment, on_progress=show, timeout_s=args.timeout))
    notice.join()
    counts = outcome.counts
    how = outcome.reason
    if outcome.signal is not None:
        how += f" by {signal.Signals(outcome.signal).name}"
    console.print(
        f"{deployment.settings.name}: {how} after {outcome.elapsed_s:.1f} s: "
        f"{counts['candidates']} candidates, {counts['results']} results, "
        f"{counts['pending']} pending" + (f"; logs in {outcome.log_dir}" if outcome.log_dir else "")
    )
    return exit_status(outcome)


def run_status(args: argparse.Namespace) -> int:
    """``academy-ml status CONFIG [--json] [--watch [SECONDS]]``; Ctrl-C ends a watch with 0."""
    deployment = load_deployment(args.config, args.set)
    if args.watch is not None and not args.watch > 0:
        raise ConfigError(f"--watch {args.watch:g}: expected a positive number of seconds")
    _run(deployment, _reachable(deployment))
    status = _run(deployment, collect_status(deployment))
    console = Console()
    if args.watch is None:
        if args.json:
            print(status_json(status))
        else:
            console.print(render_status(status))
        return 0
    logs = Console(stderr=True) if args.json else console  # JSON Lines alone on stdout
    # Ctrl-C is how a watch ends.
    with console_logging(args.log_level or "WARNING", logs), contextlib.suppress(KeyboardInterrupt):
        _run(deployment, watch_status(deployment, status, args.watch, args.json, console))
    return 0


def _redis_urls(deployment: Deployment) -> list[str]:
    urls = (deployment.knowledge_url, deployment.settings.exchange)
    return [url for url in dict.fromkeys(urls) if url is not None and url != "local"]


async def _reachable(deployment: Deployment) -> None:
    """Ask each Redis of the deployment once, quickly (its clients would retry for a minute).

    Raises:
        ExchangeConnectionError: Naming the (redacted) URL that failed and why.
    """
    for url in _redis_urls(deployment):
        connection = Connection(url, connect_timeout_s=CONNECT_TIMEOUT_S)
        try:
            await connection.call(b"PING")
        except (ConnectionLost, AuthError) as error:
            raise connection_error(url, error) from None
        finally:
            await connection.close()


def _run(deployment: Deployment, main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with Redis refusing or unreachable as one clear error.

    Raises:
        ExchangeConnectionError: Naming the (redacted) URL and what went wrong.
    """
    try:
        return asyncio.run(main)
    except (ConnectionLost, AuthError) as error:
        urls = _redis_urls(deployment)
        raise connection_error(urls[0] if urls else "redis://", error) from None
