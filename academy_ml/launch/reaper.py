"""Finding and ending every process a run started, wherever it was reparented.

``academy-ml up`` tags its environment with ``ACADEMY_ML_RUN=<token>`` before
it starts anything, and each host process with ``<token>/<agent>/<start>``.
Every process started below inherits the tag: Parsl interchanges, the
LocalProvider's worker pools (whose launching shell exits at once, so they
are reparented to init and are nobody's children), spawn pool workers. The
tag is how the supervisor finds what a SIGKILLed host left behind, and what
is left when ``up`` ends. Process groups cannot do this: Parsl puts each
block of workers in a group of its own. Sessions cannot in embedded mode,
where ``up`` shares the terminal's session with the user's other jobs.

Linux ``/proc`` only; elsewhere nothing is found and only the endpoints' own
shutdown stops their processes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path

__all__ = ["RUN_VARIABLE", "new_run_tag", "reap", "tagged"]

#: The environment variable carrying a run's tag.
RUN_VARIABLE = "ACADEMY_ML_RUN"

_PROC = Path("/proc")


def new_run_tag() -> str:
    """A fresh tag, set in this process's environment so children inherit it."""
    tag = f"{os.getpid()}-{secrets.token_hex(6)}"
    os.environ[RUN_VARIABLE] = tag
    return tag


def tagged(tag: str) -> list[int]:
    """Live processes (not zombies) whose tag is ``tag`` or below it (``tag/...``)."""
    wanted = f"{RUN_VARIABLE}={tag}".encode()
    found = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_bytes().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile, or another user's
        if state != b"Z" and any(v == wanted or v.startswith(wanted + b"/") for v in variables):
            found.append(int(entry.name))
    return found


def reap(tag: str, grace_s: float = 0.0) -> int:
    """End every process tagged ``tag`` (or below): SIGTERM, then SIGKILL after ``grace_s``.

    Scans again after each round, for children forked meanwhile.

    Returns:
        How many processes were signalled.
    """
    signalled: set[int] = set()
    for _ in range(10):
        pids = tagged(tag)
        if not pids:
            break
        signalled.update(pids)
        if grace_s > 0:
            _signal(pids, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while pids and time.monotonic() < deadline:
                time.sleep(0.05)
                pids = [pid for pid in tagged(tag) if pid in pids]
        _signal(pids, signal.SIGKILL)
        time.sleep(0.05)
    return len(signalled)


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
