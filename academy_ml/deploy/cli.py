"""The ``academy-ml`` command line."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from academy_ml import __version__
from academy_ml.deploy.kits import ENTRY, KITS, KitError, kit_variables, render_kit
from academy_ml.deploy.launch.logs import LOG_LEVELS
from academy_ml.engine.cache import clear, default_cache_dir, summarize
from academy_ml.exceptions import AcademyMLError

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> None:
    """Dispatches to a subcommand."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from academy_ml.deploy import demo  # scikit-learn: seconds that other verbs need not wait

        demo.main(rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command in _LAUNCH:
        from academy_ml.deploy.launch import console, verbs

        runners = {
            "up": console.run_up,
            "status": console.run_status,
            "down": verbs.run_down,
            "reset": verbs.run_reset,
            "results": verbs.run_results,
        }
        try:
            raise SystemExit(runners[args.command](args))
        except AcademyMLError as error:
            print(f"academy-ml: error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:  # before `up` handles signals itself (a watch ends with 0)
            print(f"academy-ml {args.command}: interrupted", file=sys.stderr)
            raise SystemExit(128 + signal.SIGINT) from None
    if args.command == "endpoint":
        try:
            _endpoint(args)
        except KitError as error:
            print(f"academy-ml: error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    elif args.action == "stats":
        _cache_stats(args.dir)
    else:
        _cache_clear(args.dir)


def build_parser() -> argparse.ArgumentParser:
    """The ``academy-ml`` argument parser (``demo`` leaves its arguments to ``demo.main``)."""
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
    _add_endpoint(sub)
    _add_launch(sub)
    return parser


#: Seconds between collections of ``status --watch`` without a value.
WATCH_S = 2.0

#: What ``--log-level`` sets, by verb.
_LOG_LEVEL_HELP = {
    "up": "level of the run's logs, LOGS/up.log and the hosts' (default: the config's log_level, "
    "INFO); the terminal shows warnings and errors",
    "status": "level of what a --watch logs to the terminal (default WARNING)",
    "down": "level of what it logs to the terminal while it waits (default WARNING)",
}

#: The verbs on a deployment config, and their help.
_LAUNCH = {
    "up": "launch a deployment's agents and watch the run until the planner stops",
    "status": "agents, endpoints, caches and recent strategy firings of a deployment",
    "down": "ask the agents of a deployment in host processes to checkpoint and stop",
    "reset": "forget a deployment's state (knowledge base, checkpoints); asks unless --yes",
    "results": "every result record of a deployment as csv, json or parquet",
}


def _add_launch(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for command, text in _LAUNCH.items():
        cmd = sub.add_parser(command, help=text)
        cmd.add_argument("config", type=Path, help="deployment config (configs/local.toml...)")
        cmd.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME.KEY=VALUE",
            help="override an agent's init argument or a deployment setting "
            "(planner.budget=64, deployment.exchange=redis://...)",
        )
        if command in ("up", "status", "down"):
            cmd.add_argument(
                "--log-level",
                choices=LOG_LEVELS,
                default=None,
                help=_LOG_LEVEL_HELP[command],
            )
        if command == "up":
            cmd.add_argument(
                "--timeout", type=float, default=None, help="end the run after SECONDS"
            )
            cmd.add_argument(
                "--logs",
                type=Path,
                default=None,
                help="directory of up's, the hosts' and Parsl's logs "
                "(default: the config's logs, else runinfo/NAME beside the config)",
            )
            cmd.add_argument(
                "--resume",
                action="store_true",
                help="start a finished deployment again (its planner stopped, nothing pending)",
            )
        elif command == "status":
            cmd.add_argument(
                "--json", action="store_true", help="one JSON document (a line) instead of tables"
            )
            cmd.add_argument(
                "--watch",
                type=float,
                nargs="?",
                const=WATCH_S,
                default=None,
                metavar="SECONDS",
                help=f"collect again every SECONDS (default {WATCH_S:g}) until Ctrl-C",
            )
        elif command == "down":
            cmd.add_argument(
                "--wait",
                type=float,
                default=60.0,
                help="seconds to wait for the supervising `up` to stop the run (default 60)",
            )
        elif command == "reset":
            cmd.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        elif command == "results":
            cmd.add_argument("--format", default="csv", help="csv (default), json or parquet")
            cmd.add_argument(
                "--output", type=Path, default=None, help="file to write (default: stdout)"
            )


def _add_endpoint(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    endpoint = sub.add_parser("endpoint", help="Globus Compute and Parsl endpoint kits")
    endpoint_sub = endpoint.add_subparsers(dest="action", required=True)
    endpoint_sub.add_parser("kits", help="list the kits and the variables each takes")
    render = endpoint_sub.add_parser("render", help="write a ready endpoint configuration")
    render.add_argument("kit", choices=sorted(KITS), help="which kit")
    render.add_argument(
        "--set",
        dest="values",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a variable of the kit (repeat; `academy-ml endpoint kits` lists them)",
    )
    render.add_argument("--output", type=Path, required=True, help="directory to write")
    render.add_argument(
        "--name", default=None, help="the endpoint's name in endpoint.toml (default: the kit's)"
    )


def _endpoint(args: argparse.Namespace) -> None:
    if args.action == "kits":
        _list_kits()
        return
    values: dict[str, str] = {}
    for assignment in args.values:
        key, equals, value = assignment.partition("=")
        if not equals or not key:
            raise KitError(f"--set {assignment!r}: expected KEY=VALUE")
        if key in values:
            raise KitError(f"--set: variable {key!r} given twice")
        values[key] = value
    written = render_kit(args.kit, values, args.output, name=args.name)
    out = args.output
    print(f"{args.kit} kit written to {out}:")
    for path in written:
        print(f"  {path.name}")
    files = " ".join(
        f"--{flag} {shlex.quote(str(out / name))}"
        for flag, name in (
            ("core-config", "config.yaml"),
            ("template-config", "user_config_template.yaml.j2"),
            ("schema-config", "user_config_schema.json"),
        )
    )
    print("Globus Compute (on the login node; `start` logs in to Globus):")
    print(f"  globus-compute-endpoint configure {files} NAME")
    print("  globus-compute-endpoint start NAME")
    print("Parsl (the same executor, from this process): a registry entry; copy it into")
    print(f"  your registry directory (configs/), or build_placer({str(out / ENTRY)!r})")


def _list_kits() -> None:
    console = Console(width=110)
    for kit, model in KITS.items():
        summary = escape(f"{kit}: {(model.__doc__ or '').strip()}")
        table = Table(title=summary, title_justify="left")
        table.add_column("variable")
        table.add_column("default")
        table.add_column("meaning")
        for variable in kit_variables(kit):
            if variable.required:
                default = "required"
            elif variable.default is None:
                default = "-"
            else:
                default = str(variable.default)
            table.add_row(variable.name, escape(default), escape(variable.description))
        console.print(table)


def _cache_refused(error: AcademyMLError) -> SystemExit:
    print(f"academy-ml: error: {error}", file=sys.stderr)
    return SystemExit(2)


def _cache_stats(directory: Path | None) -> None:
    from academy_ml.deploy.launch.notices import human_size, large_cache_notice, notice_bytes

    try:
        summary = summarize(directory)
        notice_bytes()  # a bad $ACADEMY_ML_CACHE_NOTICE_BYTES before the table
    except AcademyMLError as error:
        raise _cache_refused(error) from None
    table = Table(title="academy_ml node cache", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    totals = summary.totals
    rows = [
        ("directory", str(summary.path)),
        ("entries", f"{summary.entries:,}"),
        ("size", human_size(summary.bytes)),
        ("hits", f"{totals.hits:,} ({totals.memory_hits:,} from memory)"),
        ("misses", f"{totals.misses:,}"),
        ("hit rate", f"{totals.hit_rate:.1%}"),
        ("read", human_size(totals.bytes_read)),
        ("written", human_size(totals.bytes_written)),
        ("stores", f"{totals.stores:,}"),
        ("evictions", f"{totals.evictions:,}"),
        ("corrupt entries", f"{totals.corrupt:,}"),
        ("I/O errors", f"{totals.io_errors:,}"),
        ("runtime", summary.runtime),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console(width=max(100, len(str(summary.path)) + 30))
    console.print(table)
    notice = large_cache_notice(directory, summary.bytes, notice_bytes())
    if notice is not None:
        console.print(f"[yellow]{escape(notice)}[/yellow]")


def _cache_clear(directory: Path | None) -> None:
    where = directory if directory is not None else default_cache_dir()
    try:
        removed = clear(where)
    except AcademyMLError as error:
        raise _cache_refused(error) from None
    print(f"{where}: removed {removed:,} entries")
