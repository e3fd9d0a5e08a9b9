"""One thread that runs callbacks after a delay (the placer's attempt timeouts).

``threading.Timer`` starts a thread per timer; a batch of thousands of
requests would start thousands. :class:`Timers` keeps a heap and one daemon
thread, started on first use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Timer", "Timers"]

logger = logging.getLogger(__name__)


class Timer:
    """A pending call; :meth:`cancel` before it is due and it never runs."""

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Drops the call (no effect once it ran)."""
        self.cancelled = True


class Timers:
    """Runs callbacks after delays, in one thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        """Runs ``callback()`` in the timer thread ``delay_s`` seconds from now."""
        timer = Timer(time.monotonic() + delay_s, callback)
        with self._wake:
            if self._closed:
                raise RuntimeError("timers are closed")
            heapq.heappush(self._heap, (timer.due, next(self._order), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="placer-timers", daemon=True)
                self._thread.start()
            self._wake.notify()
        return timer

    def close(self) -> None:
        """Drops every pending call and stops the thread."""
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                _, _, timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                try:
                    timer.callback()
                except Exception:
                    logger.exception("timer callback %r failed", timer.callback)
