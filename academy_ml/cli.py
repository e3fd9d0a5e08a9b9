"""The ``academy-ml`` command line."""

from __future__ import annotations

import argparse

from academy_ml import __version__, demo

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Dispatches to a subcommand."""
    parser = argparse.ArgumentParser(prog="academy-ml", description="academy_ml command line")
    parser.add_argument("--version", action="version", version=f"academy-ml {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "demo",
        help="evaluate a generated batch of pipelines and print a leaderboard",
        add_help=False,
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        demo.main(rest)
