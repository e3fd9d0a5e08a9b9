"""The ``academy-ml`` command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from academy_ml import __version__, demo
from academy_ml.cache import Cache, default_cache_dir, summarize

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
    cache = sub.add_parser("cache", help="inspect or empty the node-local cache")
    cache_sub = cache.add_subparsers(dest="action", required=True)
    for action, text in (
        ("stats", "entries, bytes and hit counters of every process"),
        ("clear", "remove every entry and reset the counters"),
    ):
        cmd = cache_sub.add_parser(action, help=text)
        cmd.add_argument(
            "--dir",
            type=Path,
            default=None,
            help=f"cache directory (default: $ACADEMY_ML_CACHE_DIR or {default_cache_dir()})",
        )
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        demo.main(rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.action == "stats":
        _cache_stats(args.dir)
    else:
        _cache_clear(args.dir)


def _cache_stats(directory: Path | None) -> None:
    summary = summarize(directory)
    table = Table(title="academy_ml node cache", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    totals = summary.totals
    rows = [
        ("directory", str(summary.path)),
        ("entries", f"{summary.entries:,}"),
        ("size", _size(summary.bytes)),
        ("hits", f"{totals.hits:,} ({totals.memory_hits:,} from memory)"),
        ("misses", f"{totals.misses:,}"),
        ("hit rate", f"{totals.hit_rate:.1%}"),
        ("read", _size(totals.bytes_read)),
        ("written", _size(totals.bytes_written)),
        ("stores", f"{totals.stores:,}"),
        ("evictions", f"{totals.evictions:,}"),
        ("corrupt entries", f"{totals.corrupt:,}"),
        ("I/O errors", f"{totals.io_errors:,}"),
        ("runtime", summary.runtime),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console(width=max(100, len(str(summary.path)) + 30)).print(table)


def _cache_clear(directory: Path | None) -> None:
    where = directory if directory is not None else default_cache_dir()
    if not where.exists():
        print(f"{where}: nothing to clear")
        return
    removed = Cache(where, memory_bytes=0).clear()
    print(f"{where}: removed {removed:,} entries")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"
