"""Stopping the runtime's native work on every thread when a run stops.

A signal reaches Python's main thread only, so Ctrl-C alone cannot stop a
pipeline batch that an agent runs on a worker thread (``asyncio.to_thread``,
an executor), and a stopping process waits for it: an agent's event loop
joins its worker threads before it closes. :func:`interrupt_native_runs`
cuts every run in flight short (it raises ``RunInterrupted`` in its own
thread); :class:`Interrupter` keeps doing so while the agents shut down, so
a batch an agent starts meanwhile (a retry, the next strategy firing) is cut
short as well.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType

__all__ = ["INTERRUPT_PERIOD_S", "Interrupter", "interrupt_native_runs"]

#: Seconds between interrupts while agents shut down.
INTERRUPT_PERIOD_S = 0.2

_RUNTIME = "academy_ml._runtime"

#: Foreign (scikit-learn) steps of a run execute in worker processes the
#: runtime does not see; this module stops them (and kills the workers).
_FOREIGN = "academy_ml.engine.foreign_pool"


def interrupt_native_runs() -> int:
    """Interrupt every runtime call in flight in this process; returns how many there were.

    Safe in a signal handler (no import, no lock): a process that has not
    loaded the runtime has nothing to interrupt and does not load it. Runs
    in their foreign-step phase are interrupted too.
    """
    interrupted = 0
    foreign = sys.modules.get(_FOREIGN)
    if foreign is not None:
        interrupted += foreign.interrupt_foreign_runs()
    runtime = sys.modules.get(_RUNTIME)
    if runtime is not None:
        interrupted += runtime.interrupt_runs()
    return interrupted


class Interrupter:
    """Once started, interrupts native runs now and every ``period_s`` until closed.

    A daemon thread does it, so it also acts while the caller's event loop
    is blocked (an executor's ``shutdown(wait=True)``, a loop closing).
    """

    def __init__(self, period_s: float = INTERRUPT_PERIOD_S) -> None:
        self.period_s = period_s
        self.interrupted = 0
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Interrupt now and keep interrupting (a second call does nothing)."""
        if self._thread is not None or self._closed.is_set():
            return
        self.interrupted += interrupt_native_runs()
        self._thread = threading.Thread(
            target=self._run, name="academy-ml-interrupter", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop interrupting; runs started from now on are left alone."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._closed.wait(self.period_s):
            self.interrupted += interrupt_native_runs()

    def __enter__(self) -> Interrupter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
