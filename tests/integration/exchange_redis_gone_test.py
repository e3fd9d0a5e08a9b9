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

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from concurrent.futures import ThreadPoolExecutor
    from academy.manager import Manager
    from exchange_agents import Calculator
    from academy_ml.exceptions import ExchangeConnectionError
    from academy_ml.exchange import RedisExchangeFactory
    from academy_ml.exchange.local_server import RedisServer

    async def main() -> None:
        server = RedisServer().start()
        factory = RedisExchangeFactory(server.url, reconnect_timeout_s=1.0)
        manager = await Manager.from_exchange_factory(factory, executors=ThreadPoolExecutor(1))
        try:
            async with manager:
                calc = await manager.launch(Calculator)
                assert await calc.double(2) == 4
                server.close()
                start = time.monotonic()
                try:
                    await calc.double(3)
                except ExchangeConnectionError as exc:
                    print("call failed:", exc, flush=True)
                print(f"after {time.monotonic() - start:.1f} s", flush=True)
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
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=here,
        env={"PYTHONPATH": str(here), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    print(done.stdout, done.stderr[-2000:])
    assert "call failed: cannot reach Redis" in done.stdout
    assert "exited" in done.stdout
    assert done.returncode == 0
