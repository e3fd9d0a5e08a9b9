"""``academy-ml down``, ``reset`` and ``results``: what they print and their exit statuses.

Each returns 0 when it did its work. Errors a user can act on (a bad config,
Redis unreachable, a file that cannot be written, ``reset`` without a
terminal to ask on and without ``--yes``) raise an
:class:`~academy_ml.exceptions.AcademyMLError`, which the CLI prints as one
line (exit status 2).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from academy_ml.deploy.launch.config import Deployment, load_deployment
from academy_ml.deploy.launch.console import _reachable, _run
from academy_ml.deploy.launch.lifecycle import check_stoppable, reset_deployment, stop_agents
from academy_ml.deploy.launch.logs import console_logging
from academy_ml.deploy.launch.results import check_format, read_results, render_results
from academy_ml.exceptions import ConfigError

__all__ = ["run_down", "run_reset", "run_results"]


def run_down(args: argparse.Namespace) -> int:
    """``academy-ml down CONFIG``: the supervising ``up`` stops the run; its agents checkpoint."""
    deployment = load_deployment(args.config, args.set)
    check_stoppable(deployment)  # before any connection
    _run(deployment, _reachable(deployment))
    with console_logging(args.log_level or "WARNING", Console(stderr=True)):
        _run(deployment, stop_agents(deployment, args.wait))
    print(f"{deployment.settings.name}: stopped; its agents checkpointed")
    return 0


def run_reset(args: argparse.Namespace) -> int:
    """``academy-ml reset CONFIG [--yes]``: forget the deployment's state."""
    deployment = load_deployment(args.config, args.set)
    what = _what(deployment)
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"{deployment.file}: reset forgets {what}; no terminal to ask on: pass --yes"
            )
        answer = input(f"Forget {what} of {deployment.settings.name}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return 1
    _run(deployment, _reachable(deployment))
    try:
        done = _run(deployment, reset_deployment(deployment))
    except OSError as error:  # a file that cannot be removed (ConnectionLost is handled by _run)
        raise ConfigError(f"{deployment.file}: reset: {error}") from None
    print(f"{deployment.settings.name}: {done}")
    return 0


def run_results(args: argparse.Namespace) -> int:
    """``academy-ml results CONFIG [--format csv|json|parquet] [--output FILE]``."""
    deployment = load_deployment(args.config, args.set)
    check_format(args.format, args.output)
    _run(deployment, _reachable(deployment))
    records = _run(deployment, read_results(deployment))
    try:
        text = render_results(records, args.format, args.output)
    except OSError as error:
        raise ConfigError(f"--output {args.output}: {error}") from None
    if text is not None:
        sys.stdout.write(text)
    else:
        print(f"{len(records)} results written to {args.output}", file=sys.stderr)
    return 0


def _what(deployment: Deployment) -> str:
    """What ``reset`` removes, in words."""
    if deployment.knowledge_path is not None:
        return f"the knowledge base {deployment.knowledge_path}"
    if deployment.knowledge_url is not None:
        return f"every Redis key {deployment.settings.name}:kb:*"
    raise ConfigError(
        f"{deployment.file}: knowledge = 'memory' keeps nothing between runs; nothing to reset"
    )
