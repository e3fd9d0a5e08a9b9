"""Which of a test's child processes are still alive (for leak checks)."""

from __future__ import annotations

from pathlib import Path

import psutil  # type: ignore[import-untyped]


def descendants() -> set[int]:
    """Process ids of this process's children, recursively."""
    return {child.pid for child in psutil.Process().children(recursive=True)}


def alive(pids: set[int]) -> list[int]:
    """The ones of ``pids`` still running (zombies count as gone)."""
    running = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.append(pid)
        except psutil.NoSuchProcess:
            pass
    return running


def in_sessions(sessions: set[int]) -> dict[int, str]:
    """Live processes (not zombies) of the sessions ``sessions``: pid -> command line.

    A session survives reparenting and process groups of their own (Parsl's
    worker pools, the interchange), so it finds what a killed parent left.
    """
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rpartition(b")")[2].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # fields after the name: state, ppid, pgrp, session
        if fields[0] != b"Z" and int(fields[3]) in sessions:
            found[int(entry.name)] = command.strip()
    return found
