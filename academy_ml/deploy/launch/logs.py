"""Where a deployment's logs go, and at which level.

``academy-ml up`` writes its own log (the supervisor's and, in an embedded
deployment, every agent's: they are threads of it) to ``up.log`` in the
deployment's log directory (``logs``, by default ``runinfo/<name>/`` beside
the config); each host process writes ``<agent>.log`` there. The level is
the config's ``log_level`` (INFO by default), which ``--log-level``
overrides: at INFO every strategy evaluation is a line (which strategy, the
trigger seen, what the constraint said, the actions and their outcomes;
firings that acted are WARNING). The terminal shows warnings and errors
only, above the progress bar, one line each (their tracebacks are in the
file), but for strategy firings: a long run acts often, and the progress
bar and ``status`` show what came of it.

Parsl endpoints built for the deployment keep Parsl's own log in their run
directory (``<logs>/parsl/NNN/parsl.log``, with the interchange's and the
workers' logs); Parsl's records below WARNING are left out of the
deployment's logs, which they would otherwise fill.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from rich.console import Console
from rich.logging import RichHandler

__all__ = [
    "LOG_LEVELS",
    "console_logging",
    "deployment_logging",
    "host_logging",
    "log_overrides",
]

#: The levels ``--log-level`` and ``log_level`` accept.
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

#: The format of log files (host processes add their agent's name).
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_overrides(level: str | None, logs: Path | None) -> list[str]:
    """``--log-level`` and ``--logs`` as config overrides, so host processes see them too."""
    overrides = []
    if level is not None:
        overrides.append(f"deployment.log_level={level}")
    if logs is not None:
        overrides.append(f"deployment.logs={logs.expanduser().absolute()}")
    return overrides


#: Loggers whose records stay off the terminal: strategy firings that acted
#: (``academy_ml.agents.strategies.strategy.FIRINGS``, named here so that
#: every verb need not import the strategies).
_FILES_ONLY: Final = frozenset({"academy_ml.agents.strategies.strategy.firings"})


def _off_terminal(record: logging.LogRecord) -> bool:
    return record.name not in _FILES_ONLY


def _quiet_parsl(record: logging.LogRecord) -> bool:
    """Parsl's records below WARNING stay in Parsl's own log."""
    return record.levelno >= logging.WARNING or not (
        record.name == "parsl" or record.name.startswith("parsl.")
    )


def deployment_logging(
    level: str, file: Path, console: Console
) -> contextlib.AbstractContextManager[None]:
    """Log to ``file`` at ``level`` and to ``console`` at WARNING or above, within the context.

    Raises:
        OSError: ``file`` cannot be opened (raised here, before the context).
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(file, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(FORMAT))
    to_file.setLevel(level)
    to_console = _console_handler(console, max(logging.WARNING, logging.getLevelName(level)))
    to_console.setFormatter(_OneLine(file))
    return _installed(level, [to_file, to_console])


class _OneLine(logging.Formatter):
    """A record's message and its exception in one line; the traceback is in ``file``."""

    def __init__(self, file: Path) -> None:
        super().__init__()
        self.file = file

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f": {type(error).__name__}: {error} (traceback in {self.file})"
        return message


def console_logging(level: str, console: Console) -> contextlib.AbstractContextManager[None]:
    """Log to ``console`` at ``level`` within the context (verbs that write no log file)."""
    return _installed(level, [_console_handler(console, logging.getLevelName(level))])


def _console_handler(console: Console, level: int) -> logging.Handler:
    handler = RichHandler(console=console, show_path=False)
    handler.setLevel(level)
    handler.addFilter(_off_terminal)
    return handler


@contextlib.contextmanager
def _installed(level: str, handlers: list[logging.Handler]) -> Iterator[None]:
    """``handlers`` on the root logger at ``level``; restored as they were afterwards."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(level)
    for handler in handlers:
        handler.addFilter(_quiet_parsl)
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(previous)


def host_logging(level: str, agent: str, stream: IO[str] = sys.stderr) -> None:
    """A host process's logging: ``stream`` (its log file) at ``level``, its agent named."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter(FORMAT.replace("%(levelname)s", f"{agent} %(levelname)s"))
    )
    handler.addFilter(_quiet_parsl)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
