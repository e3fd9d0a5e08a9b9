"""Scenario: Redis goes away for good while agents run.

Calls fail with a clear error once ``reconnect_timeout_s`` has passed, the
agents' mailbox reads give up and the agents shut down, and the process
that hosts them exits instead of retrying forever.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from redis_server import RedisServer

# The agents' process: one call succeeds, then it waits for the test to stop
# Redis (a line on stdin) and calls again.
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from concurrent.futures import ThreadPoolExecutor
    from academy.manager import Manager
    from exchange_agents import Calculator
    from academy_ml.exceptions import ExchangeConnectionError
    from academy_ml.messaging import RedisExchangeFactory

    async def main() -> None:
        factory = RedisExchangeFactory(sys.argv[1], reconnect_timeout_s=1.0)
        manager = await Manager.from_exchange_factory(factory, executors=ThreadPoolExecutor(1))
        try:
            async with manager:
                calc = await manager.launch(Calculator)
                assert await calc.double(2) == 4
                print("ready", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
                try:
                    await calc.double(3)
                except ExchangeConnectionError as exc:
                    print("call failed:", exc, flush=True)
        except ExchangeConnectionError:
            print("manager closed with the connection error", flush=True)

    asyncio.run(main())
    print("exited", flush=True)
    """
)


def test_agents_and_their_process_end_when_redis_is_gone(tmp_path: Path) -> None:
    script = tmp_path / "gone.py"
    script.write_text(SCRIPT)
    here = Path(__file__).parent
    with RedisServer() as server:
        process = subprocess.Popen(
            [sys.executable, str(script), server.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=here,
            env={"PYTHONPATH": str(here), "PATH": "/usr/bin:/bin"},
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            server.stop()
            stdout, stderr = process.communicate("go\n", timeout=60)
        finally:
            process.kill()
    print(stdout, stderr[-2000:])
    assert "call failed: cannot reach Redis" in stdout
    assert "exited" in stdout
    assert process.returncode == 0
