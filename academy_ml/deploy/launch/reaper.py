"""Finding and ending every process a run started, wherever it was reparented.

``academy-ml up`` tags its environment with ``ACADEMY_ML_RUN=<token>`` before
it starts anything, and each host process with ``<token>/<agent>/<start>``.
Every process started below inherits the tag: Parsl interchanges, the
LocalProvider's worker pools (whose launching shell exits at once, so they
are reparented to init and are nobody's children), spawn pool workers. The
tag is how ``up`` finds what is left when it ends, and what a forced exit
kills. Process groups cannot do this (Parsl puts each block of workers in a
group of its own), nor can sessions in embedded mode, where ``up`` shares the
terminal's session with the user's other jobs. ``SPT_NOENV`` is set with the
tag: Parsl's interchange renames itself with ``setproctitle``, which would
otherwise overwrite the environment ``/proc`` shows.

Host processes lead sessions of their own, which nothing below them leaves,
so a host's session also finds what it started even if a program cleared
its environment.

Linux ``/proc`` only; elsewhere nothing is found and only the endpoints' own
shutdown stops their processes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Collection, Iterator
from pathlib import Path

__all__ = ["RUN_VARIABLE", "members", "reap", "run_tag"]

#: The environment variable carrying a run's tag.
RUN_VARIABLE = "ACADEMY_ML_RUN"

_PROC = Path("/proc")


@contextlib.contextmanager
def run_tag() -> Iterator[str]:
    """A fresh tag, in this process's environment (children inherit it) until the block ends."""
    saved = {name: os.environ.get(name) for name in (RUN_VARIABLE, "SPT_NOENV")}
    tag = f"{os.getpid()}-{secrets.token_hex(6)}"
    os.environ.update({RUN_VARIABLE: tag, "SPT_NOENV": "1"})
    try:
        yield tag
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def members(tag: str, sessions: Collection[int] = ()) -> list[int]:
    """Live processes (not zombies) tagged ``tag`` or below it (``tag/...``), or in ``sessions``."""
    wanted = f"{RUN_VARIABLE}={tag}".encode()
    found = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # after the name: state, ppid, pgrp, session
            stat = (entry / "stat").read_bytes().rpartition(b")")[2].split()
            if stat[0] == b"Z":
                continue
            if int(stat[3]) in sessions:
                found.append(int(entry.name))
                continue
            variables = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or another user's
        if any(v == wanted or v.startswith(wanted + b"/") for v in variables):
            found.append(int(entry.name))
    return found


def reap(tag: str, grace_s: float = 0.0, sessions: Collection[int] = ()) -> int:
    """End the processes of :func:`members`: SIGTERM, then SIGKILL after ``grace_s``.

    Scans again after each round, for children forked meanwhile.

    Returns:
        How many processes were signalled.
    """
    signalled: set[int] = set()
    for _ in range(10):
        pids = members(tag, sessions)
        if not pids:
            break
        signalled.update(pids)
        if grace_s > 0:
            _signal(pids, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while pids and time.monotonic() < deadline:
                time.sleep(0.05)
                pids = [pid for pid in members(tag, sessions) if pid in pids]
        _signal(pids, signal.SIGKILL)
        time.sleep(0.05)
    return len(signalled)


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
