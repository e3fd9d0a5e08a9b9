"""Scenario: agents placed on Parsl workers (HighThroughputExecutor, LocalProvider).

Academy's Manager takes any ``concurrent.futures.Executor``; Parsl's is
``parsl.concurrent.ParslPoolExecutor``. Each agent occupies one worker for
its lifetime. Shutting the manager down must leave no Parsl process behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from academy.manager import Manager
from exchange_agents import Calculator, Recorder, poll, run, step, worker_env
from parsl.concurrent import ParslPoolExecutor
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider
from processes import alive, descendants
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory


class AgentPoolExecutor(ParslPoolExecutor):
    """ParslPoolExecutor that accepts Manager's ``shutdown(cancel_futures=True)``.

    Parsl cannot cancel tasks and warns when asked to. The Manager always asks,
    but only after every agent has exited, so there is nothing left to cancel.
    """

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait)


def _config(run_dir: Path) -> Config:
    return Config(
        executors=[
            HighThroughputExecutor(
                label="agents",
                address="127.0.0.1",
                max_workers_per_node=2,
                cores_per_worker=1,
                provider=LocalProvider(  # type: ignore[no-untyped-call]
                    init_blocks=1, min_blocks=0, max_blocks=1
                ),
            )
        ],
        run_dir=str(run_dir),
        strategy_period=0.2,
        initialize_logging=False,
    )


async def _none_alive(pids: set[int]) -> bool:
    return not alive(pids)


def test_agents_on_parsl_workers(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in worker_env().items():
        monkeypatch.setenv(name, value)
    before = descendants()

    async def main() -> None:
        factory = RedisExchangeFactory(redis_server.url, prefix="parsl")
        pool = AgentPoolExecutor(config=_config(tmp_path / "runinfo"))
        async with await Manager.from_exchange_factory(factory, executors=pool) as manager:
            calc = await manager.launch(Calculator)
            recorder = await manager.launch(Recorder)
            # the first call waits for the block to start and the agent to connect
            pids = {await step(calc.pid(), 60), await step(recorder.pid(), 60)}
            assert os.getpid() not in pids
            assert len(pids) == 2
            assert await step(calc.double(21)) == 42
            assert await step(calc.echo({"nested": [1, (2, b"3")]})) == {"nested": [1, (2, b"3")]}
            for token in range(20):
                assert await step(recorder.record(token)) == token
            assert await step(recorder.seen()) == list(range(20))
            workers = pids

        # the manager shut the agents and the DataFlowKernel down
        await poll(lambda: _none_alive(workers), timeout=15, what="the Parsl workers to exit")

    run(main, timeout=150)
    leaked = descendants() - before
    # Parsl's cleanup cancels the block and returns; its processes exit right after.
    run(lambda: poll(lambda: _none_alive(leaked), timeout=15, what="Parsl's processes to exit"))
