"""Thread budgets of the foreign phase: never more threads than the run was given."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from academy_ml import _runtime
from academy_ml.engine.budgets import THREAD_VARIABLES, foreign_budget, limited, worker_environment


@pytest.mark.parametrize("threads", range(1, 9))
@pytest.mark.parametrize("tasks", [0, 1, 2, 3, 5, 8, 100])
def test_workers_times_threads_per_task_stays_within_threads(threads: int, tasks: int) -> None:
    budget = foreign_budget(threads, tasks)
    assert budget.workers >= 1
    assert budget.threads_per_task >= 1
    assert budget.threads <= threads
    assert budget.workers == max(1, min(threads, tasks))


def test_few_tasks_get_the_leftover_threads() -> None:
    assert foreign_budget(8, 2).threads_per_task == 4
    assert foreign_budget(2, 1).threads_per_task == 2
    assert foreign_budget(2, 10).threads_per_task == 1


def test_no_threads_means_every_core() -> None:
    assert foreign_budget(None, 1000).workers == _runtime.max_threads()


@pytest.mark.parametrize("threads", [0, -1, True, 1.5, "2"])
def test_a_bad_thread_count_is_refused(threads: object) -> None:
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        foreign_budget(threads, 3)  # type: ignore[arg-type]


def test_limited_caps_openmp_and_blas_in_the_block() -> None:
    with limited(1):
        pools = threadpool_info()
    assert pools, "scikit-learn loads OpenMP and BLAS"
    assert {pool["num_threads"] for pool in pools} == {1}


def test_workers_start_with_every_pool_sized_to_their_budget() -> None:
    env = worker_environment(1)
    assert all(env[name] == "1" for name in THREAD_VARIABLES)
