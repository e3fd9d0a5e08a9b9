"""Foreign steps and a native-side spy that show how a run's two sides interleave.

A module of their own (not a test module), so a worker process unpickles
the steps by the same name the tests import them by. Both sides write to
the same places: events into one append-only log (one line per event,
``CLOCK_MONOTONIC`` nanoseconds, which every process on the machine shares,
so lines order across processes), and marker files a side waits for.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

#: Seconds a side waits for the other before giving up. Only a run that
#: never overlaps its sides comes near it (it then fails, not hangs); idle,
#: the other side answers within a worker's start (about a second).
HANDSHAKE_BOUND_S = 240.0


def log_event(log: str, side: str, what: str, threads: int) -> None:
    """Appends ``<ns> <side> <what> <threads> <pid>`` to ``log`` (one write, so whole)."""
    line = f"{time.monotonic_ns()} {side} {what} {threads} {os.getpid()}\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_events(log: str) -> list[tuple[int, str, str, int, int]]:
    """The log's events in time order: (ns, side, start/end, threads, pid)."""
    events = []
    for line in Path(log).read_text().splitlines():
        ns, side, what, threads, pid = line.split()
        events.append((int(ns), side, what, int(threads), int(pid)))
    return sorted(events)


def peak_threads(events: list[tuple[int, str, str, int, int]]) -> int:
    """Most threads both sides held at once (an end at the same instant counts first)."""
    held = peak = 0
    for _, _, what, threads, _ in sorted(events, key=lambda e: (e[0], e[2] != "end")):
        held += threads if what == "start" else -threads
        peak = max(peak, held)
    return peak


def wait_for(path: Path, bound_s: float = HANDSHAKE_BOUND_S) -> bool:
    """Waits until ``path`` exists; False if it did not within ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def task_threads() -> int:
    """Threads this process's OpenMP and BLAS pools may use now (at least 1)."""
    return max([1] + [int(pool["num_threads"]) for pool in threadpool_info()])


class _Passthrough(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    def transform(self, X: Any) -> Any:
        return X


class Record(_Passthrough):
    """Logs its fit's start and end, with the threads it may use, to ``log``."""

    def __init__(self, log: str = "", seconds: float = 0.0) -> None:
        self.log = log
        self.seconds = seconds

    def fit(self, X: Any, y: Any = None) -> Record:
        threads = task_threads()
        log_event(self.log, "foreign", "start", threads)
        time.sleep(self.seconds)
        log_event(self.log, "foreign", "end", threads)
        return self


class Handshake(_Passthrough):
    """Marks ``directory/foreign-started-*``, then waits for ``directory/native-done``.

    Fails its fit if the native side never finishes meanwhile.
    """

    def __init__(self, directory: str = "") -> None:
        self.directory = directory

    def fit(self, X: Any, y: Any = None) -> Handshake:
        (Path(self.directory) / f"foreign-started-{uuid.uuid4().hex}").touch()
        if not wait_for(Path(self.directory) / "native-done"):
            raise RuntimeError("the native plan did not finish while this foreign step ran")
        return self


class NativeSpy:
    """Wraps ``_runtime.run_plan``: logs each call's threads, and can hold one call back.

    Call number ``hold`` (from 0) first waits for a file matching ``marker``
    in ``directory`` (``foreign-started-*`` is what :class:`Handshake`
    writes), and marks ``native-done`` once it returned.
    """

    def __init__(
        self,
        real: Callable[..., Any],
        log: str,
        directory: Path,
        hold: int | None = None,
        marker: str = "foreign-started-*",
    ) -> None:
        self.real = real
        self.log = log
        self.directory = directory
        self.hold = hold
        self.marker = marker
        self.calls: list[int] = []
        self.saw_foreign: list[bool] = []
        self.raised: list[BaseException] = []

    def __call__(self, *args: Any) -> Any:
        threads = args[4]
        number = len(self.calls)
        self.calls.append(threads)
        if number == self.hold:
            self.saw_foreign.append(self._foreign_started())
        log_event(self.log, "native", "start", threads)
        try:
            return self.real(*args)
        except BaseException as exc:
            self.raised.append(exc)
            raise
        finally:
            log_event(self.log, "native", "end", threads)
            if number == self.hold:
                (self.directory / "native-done").touch()

    def _foreign_started(self) -> bool:
        deadline = time.monotonic() + HANDSHAKE_BOUND_S
        while not any(self.directory.glob(self.marker)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
