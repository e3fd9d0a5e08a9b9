"""Agents and helpers shared by the exchange's integration tests.

Agents launched on process pools or Parsl workers are unpickled there by
reference, so they live in this module, not in the test files. The test
files import it as the top-level module ``exchange_agents``: pytest puts
``tests/integration`` on ``sys.path`` (its default ``prepend`` import mode,
``tests/`` has no ``__init__.py``). Spawned processes inherit ``sys.path``
from the parent; processes started through a shell (Parsl's workers) get it
through ``PYTHONPATH`` (see :func:`worker_env`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from academy.agent import Agent, action, loop
from academy.handle import Handle

T = TypeVar("T")

#: Upper bound for one awaited exchange operation in these tests.
STEP_TIMEOUT_S = 20.0

HERE = Path(__file__).resolve().parent


def worker_env() -> dict[str, str]:
    """Environment additions for workers started through a shell.

    ``PYTHONPATH`` makes this module importable; ``PATH`` finds the venv's
    scripts (Parsl starts ``interchange.py`` and ``process_worker_pool.py`` by
    name, and ``.venv/bin`` is not on ``PATH`` unless the venv is activated).
    """
    python_path = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    path = [str(Path(sys.executable).parent), *os.environ.get("PATH", "").split(os.pathsep)]
    return {"PYTHONPATH": os.pathsep.join(python_path), "PATH": os.pathsep.join(path)}


def run(main: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60.0) -> T:
    """Run a test's async body with an overall timeout (no pytest-asyncio here)."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


async def step(awaitable: Awaitable[T], timeout: float = STEP_TIMEOUT_S) -> T:
    """Await one operation, failing the test instead of hanging."""
    return await asyncio.wait_for(awaitable, timeout)


async def poll(
    check: Callable[[], Awaitable[bool]], *, timeout: float = STEP_TIMEOUT_S, what: str = ""
) -> None:
    """Wait until ``check()`` is true, polling every 20 ms."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(0.02)


class Calculator(Agent):
    """Echoes and transforms values; raises on request."""

    @action
    async def echo(self, value: Any) -> Any:
        return value

    @action
    async def double(self, value: int) -> int:
        return 2 * value

    @action
    async def increment_in_place(self, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Adds one to ``array`` in place (fails if the array arrived read-only)."""
        array += 1
        return array

    @action
    async def describe(self, value: Any) -> str:
        """The type name the agent received, to check that types survive the wire."""
        return type(value).__name__

    @action
    async def fail(self, message: str) -> None:
        raise ValueError(message)

    @action
    async def fail_key(self, key: str) -> None:
        raise KeyError(key)

    @action
    async def blob(self, size: int) -> bytes:
        return b"x" * size

    @action
    async def pid(self) -> int:
        return os.getpid()

    @action
    async def unsendable(self, kind: str) -> Any:
        """A result the exchange cannot encode without pickle, or at all."""
        if kind == "object":
            return _Unregistered()
        if kind == "object array":
            return np.array([1, "two", None], dtype=object)
        if kind == "recursive":
            looped: list[Any] = []
            looped.append(looped)
            return looped
        raise ValueError(f"unknown kind {kind!r}")


class _Unregistered:
    """A type with no wire encoding."""


class SpecialCalculator(Calculator):
    """A subclass, for discovery by type."""

    @action
    async def special(self) -> str:
        return "special"


class Ticker(Agent):
    """Counts ticks of a control loop."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    @loop
    async def tick(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            self.count += 1
            await asyncio.sleep(0.01)

    @action
    async def ticks(self) -> int:
        return self.count


class Relay(Agent):
    """Calls another agent through a handle it receives as an argument."""

    @action
    async def ask_double(self, peer: Handle[Calculator], value: int) -> int:
        result: int = await peer.double(value)
        return result

    @action
    async def peer_id(self, peer: Handle[Calculator]) -> str:
        return str(peer.agent_id)


class Recorder(Agent):
    """Remembers every token it was sent (to count losses and duplicates)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[int] = []

    @action
    async def record(self, token: int) -> int:
        self.tokens.append(token)
        return token

    @action
    async def seen(self) -> list[int]:
        return list(self.tokens)

    @action
    async def pid(self) -> int:
        return os.getpid()
