"""Thread budgets for foreign steps: how many run at once, and on how many threads each.

A run may use ``threads`` cores. Foreign estimators bring their own thread
pools (OpenMP in HistGradientBoosting and the k-means family, BLAS in linear
algebra), each sized to every core by default. Left alone, several of them
at once (or one beside the runtime's pool) oversubscribe the cores, and
OpenMP's spinning barriers then turn a 1.6 s fit into 6 s or, on a busy
machine, into minutes. So the budget is split: ``workers`` tasks run at
once and each caps its OpenMP and BLAS pools at ``threads_per_task``, with
``workers * threads_per_task <= threads``.

The foreign tasks also run beside the runtime's own pool (a run's native
plan and its foreign tails overlap): :func:`native_share` says how many of
the ``threads`` the runtime's pool takes while both sides have work, and
the foreign tasks in flight use at most the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from academy_ml import _runtime

__all__ = [
    "THREAD_VARIABLES",
    "ForeignBudget",
    "foreign_budget",
    "limited",
    "native_share",
    "worker_environment",
]

#: Environment variables that size a native library's pool when it loads: set
#: in a worker before scikit-learn is imported, so no pool ever starts wider
#: than its budget (threadpoolctl then narrows them per task).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@dataclass(frozen=True)
class ForeignBudget:
    """How the foreign phase of a run shares its cores.

    Attributes:
        workers: Foreign tasks that run at once (at least 1).
        threads_per_task: OpenMP and BLAS threads each task may use (at least 1).
    """

    workers: int
    threads_per_task: int

    @property
    def threads(self) -> int:
        """Threads the foreign phase uses at most."""
        return self.workers * self.threads_per_task


def foreign_budget(threads: int | None, tasks: int) -> ForeignBudget:
    """Splits ``threads`` (None: every core this process may use) over ``tasks`` foreign tasks.

    Tasks come first: a fold fit on one thread scales better than one fit on
    many (no barriers, no idle threads in a fit's serial parts), so as many
    tasks run at once as there are threads, and only when there are fewer
    tasks than threads does each get the leftover threads.

    Raises:
        ValueError: If ``threads`` is not a positive integer or None, or
            ``tasks`` is negative.
    """
    if threads is None:
        threads = _runtime.max_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if tasks < 0:
        raise ValueError(f"tasks must not be negative, got {tasks}")
    workers = max(1, min(threads, tasks))
    return ForeignBudget(workers=workers, threads_per_task=max(1, threads // workers))


def native_share(threads: int, native_work: int, foreign_work: int) -> int:
    """Threads of ``threads`` the runtime's pool gets while foreign tasks run beside it.

    Split by the amount of work on each side (the caller's units: pipeline
    folds on each side), rounded, so that each side with work keeps at
    least one thread; the foreign tasks get ``threads`` minus the result,
    which is 0 with one thread (the native plan runs first, then them).

    Raises:
        ValueError: If ``threads`` is not a positive integer or a work amount
            is negative.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    if native_work < 0 or foreign_work < 0:
        raise ValueError(f"work must not be negative, got {native_work} and {foreign_work}")
    if foreign_work == 0 or threads == 1:
        return threads
    if native_work == 0:
        return 0
    share = round(threads * native_work / (native_work + foreign_work))
    return min(max(share, 1), threads - 1)


@contextmanager
def limited(threads: int) -> Iterator[None]:
    """Caps OpenMP and BLAS pools at ``threads`` while the block runs.

    OpenMP limits apply to the calling thread only (threadpoolctl sets the
    thread's ICV), BLAS limits to the whole process: both are what a worker
    process running one task at a time needs.
    """
    with threadpool_limits(limits=threads):
        yield


def worker_environment(threads: int) -> dict[str, str]:
    """This process's environment with every native pool sized to ``threads``."""
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env
