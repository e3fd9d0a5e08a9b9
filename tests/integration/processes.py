"""Which of a test's child processes are still alive (for leak checks)."""

from __future__ import annotations

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
