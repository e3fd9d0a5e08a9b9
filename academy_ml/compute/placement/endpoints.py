"""Endpoints: where a batch runs, behind one small protocol.

An :class:`Endpoint` runs a *task function* (an importable ``fn(bytes) ->
bytes``, by default :func:`academy_ml.compute.tasks.run_batch`) on its workers and
hands back a :class:`concurrent.futures.Future` of the returned bytes. Three
kinds:

* :class:`LocalEndpoint`: a thread pool, or a process pool started with
  ``spawn`` (for laptops, unit tests, CI).
* :class:`ParslEndpoint`: a Parsl :class:`~parsl.config.Config`, usually one
  HighThroughputExecutor with a LocalProvider, SlurmProvider or
  PBSProProvider. Each endpoint owns its own DataFlowKernel, so several
  coexist in one process (``parsl.load`` allows one).
* :class:`GlobusComputeEndpoint`: a ``globus_compute_sdk.Executor`` bound to
  an endpoint UUID. The SDK coalesces submissions into batch requests of up
  to ``batch_size`` tasks and rate-limits them (its service limits requests).

Task functions travel by reference: they must be importable on the workers
(nothing is pickled by value), which is why they are named by import path.

Processes an endpoint starts stay out of the terminal's way: a Parsl
interchange runs in a process group of its own (Parsl already starts
LocalProvider blocks that way) and ``spawn`` pool workers ignore SIGINT, so a
Ctrl-C reaches only the client, which then closes its endpoints in order.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from parsl.config import Config

__all__ = [
    "RUN_BATCH",
    "Endpoint",
    "GlobusComputeEndpoint",
    "LocalEndpoint",
    "ParslEndpoint",
    "Scalable",
    "TaskFunction",
    "resolve_task",
]

#: A function an endpoint's workers run: bytes in (msgpack, Arrow IPC), and
#: bytes (``run_batch``) or a fingerprint (``put_dataset``) out.
TaskFunction = Callable[[bytes], Any]

#: Import path of the batch function the placer runs by default.
RUN_BATCH = "academy_ml.compute.tasks.run_batch"


def resolve_task(fn: str | TaskFunction) -> TaskFunction:
    """The task function ``fn`` names.

    Args:
        fn: a callable, or its import path: ``"package.module.function"`` or
            ``"package.module:function"``.

    Raises:
        ValueError: the path names no module attribute.
        ImportError: the module cannot be imported.
    """
    if callable(fn):
        return fn
    module_name, sep, attribute = fn.rpartition(":") if ":" in fn else fn.rpartition(".")
    if not sep or not module_name or not attribute:
        raise ValueError(f"task function {fn!r}: expected 'package.module.function'")
    function = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(function):
        raise ValueError(f"task function {fn!r}: {module_name} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


@runtime_checkable
class Endpoint(Protocol):
    """Somewhere a task function runs.

    Attributes:
        name: the endpoint's name in the registry and in affinity records.
    """

    name: str

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not finished yet (the endpoint's load)."""
        ...

    def submit(self, fn: str | TaskFunction, payload: bytes) -> Future[Any]:
        """Runs ``fn(payload)`` on a worker; the future holds what it returned."""
        ...

    def close(self) -> None:
        """Stops the endpoint's executor; tasks still running are abandoned."""
        ...


@runtime_checkable
class Scalable(Protocol):
    """An endpoint whose capacity can change while it runs."""

    def set_max_blocks(self, max_blocks: int) -> None:
        """Let the endpoint's providers run at most ``max_blocks`` blocks (batch jobs)."""
        ...


class _TrackedEndpoint:
    """Counts in-flight tasks and resolves task functions once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._in_flight = 0
        self._functions: dict[str | TaskFunction, TaskFunction] = {}
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not finished yet."""
        return self._in_flight

    def submit(self, fn: str | TaskFunction, payload: bytes) -> Future[Any]:
        """Runs ``fn(payload)`` on a worker of this endpoint.

        Raises:
            RuntimeError: the endpoint is closed.
        """
        if self._closed:
            raise RuntimeError(f"endpoint {self.name!r} is closed")
        function = self._functions.get(fn)
        if function is None:
            function = self._functions[fn] = resolve_task(fn)
        with self._lock:
            self._in_flight += 1
        try:
            future = self._submit(function, payload)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any] | None) -> None:
        with self._lock:
            self._in_flight -= 1

    def _submit(self, fn: TaskFunction, payload: bytes) -> Future[Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, in_flight={self._in_flight})"


class LocalEndpoint(_TrackedEndpoint):
    """A thread pool or a ``spawn`` process pool on this machine.

    Args:
        name: the endpoint's name.
        workers: pool size.
        processes: run tasks in worker processes (started with ``spawn``)
            rather than threads.
        env: environment variables set in each worker process (for instance
            ``ACADEMY_ML_CACHE_DIR``); only with ``processes=True``, since
            threads share this process's environment.
    """

    def __init__(
        self,
        name: str,
        *,
        workers: int = 2,
        processes: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name)
        if env and not processes:
            raise ValueError(f"endpoint {name!r}: env needs processes=True (threads share it)")
        self._pool: Executor
        if processes:
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(dict(env or {}),),
            )
        else:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def _submit(self, fn: TaskFunction, payload: bytes) -> Future[Any]:
        return self._pool.submit(fn, payload)

    def close(self) -> None:
        """Shuts the pool down, cancelling queued tasks."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(env: dict[str, str]) -> None:
    """Process pool initializer: sets a worker's environment variables.

    Workers share the client's process group, so a terminal's Ctrl-C reaches
    them too; they ignore it and stop when the client shuts the pool down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)


#: Runs the rest of its command line in a new process group (``setpgid(0, 0)``
#: then exec). Parsl starts the interchange with a plain ``subprocess.Popen``,
#: in the client's group, where a terminal's Ctrl-C killed it before the client
#: could stop it in order; its launch command is the one hook Parsl offers. Not
#: a new session: the interchange stays in the session of ``academy-ml up``'s
#: host process, which is how the supervisor finds it if the host dies.
OWN_PROCESS_GROUP = (
    sys.executable,
    "-I",
    "-c",
    "import os, sys; os.setpgid(0, 0); os.execvp(sys.argv[1], sys.argv[1:])",
)


def _scripts_on_path() -> None:
    """Puts this interpreter's scripts directory on ``PATH`` if it is not there.

    Parsl starts its interchange (``interchange.py``), and a LocalProvider its
    worker pools (``process_worker_pool.py``), as scripts found on ``PATH``:
    from an environment that was not activated (``.venv/bin/python``) they
    are not found. Blocks of batch providers inherit it too (``sbatch
    --export=ALL``); their ``worker_init`` activates their own environment.
    """
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if scripts not in path:
        os.environ["PATH"] = os.pathsep.join([scripts, *filter(None, path)])


def _interchange_in_own_group(config: Config) -> None:
    """Prefix each HighThroughputExecutor's interchange command with OWN_PROCESS_GROUP."""
    from parsl.executors import HighThroughputExecutor

    for executor in config.executors:
        if isinstance(executor, HighThroughputExecutor):
            command = list(executor.interchange_launch_cmd)
            if tuple(command[: len(OWN_PROCESS_GROUP)]) != OWN_PROCESS_GROUP:
                executor.interchange_launch_cmd = [*OWN_PROCESS_GROUP, *command]


class ParslEndpoint(_TrackedEndpoint):
    """A Parsl configuration with a DataFlowKernel of its own.

    Args:
        name: the endpoint's name.
        config: the Parsl configuration (an HTEX with ``address="127.0.0.1"``
            for local providers: ``None`` looks a public address up over
            HTTPS); its kernel starts here and stops in :meth:`close`.
        executors: labels of the config's executors to use (default: all).
    """

    def __init__(self, name: str, config: Config, *, executors: list[str] | None = None) -> None:
        from parsl.dataflow.dflow import DataFlowKernel

        super().__init__(name)
        self.config = config
        _scripts_on_path()
        _interchange_in_own_group(config)
        self._dfk = DataFlowKernel(config)
        self._executors: list[str] | str = executors or "all"
        self._apps: dict[TaskFunction, Any] = {}

    @property
    def run_dir(self) -> str:
        """The kernel's run directory (Parsl's logs and the interchange's)."""
        return str(self._dfk.run_dir)

    def _submit(self, fn: TaskFunction, payload: bytes) -> Future[Any]:
        from parsl.app.python import PythonApp

        app = self._apps.get(fn)
        if app is None:
            app = self._apps[fn] = PythonApp(  # type: ignore[no-untyped-call]
                fn, data_flow_kernel=self._dfk, executors=self._executors
            )
        return _cancellable(app(payload))

    def set_max_blocks(self, max_blocks: int) -> None:
        """Change ``max_blocks`` of every executor's provider (Parsl's scaling reads it).

        Raises:
            ValueError: ``max_blocks`` is below a provider's ``min_blocks``.
        """
        from parsl.executors.status_handling import BlockProviderExecutor

        providers = [
            executor.provider
            for label, executor in self._dfk.executors.items()
            if isinstance(executor, BlockProviderExecutor)
            and executor.provider is not None
            and (self._executors == "all" or label in self._executors)
        ]
        for provider in providers:
            if max_blocks < provider.min_blocks:
                minimum = provider.min_blocks
                raise ValueError(
                    f"max_blocks {max_blocks} is below {self.name}'s min_blocks {minimum}"
                )
        for provider in providers:
            provider.max_blocks = max_blocks

    def close(self) -> None:
        """Stops the kernel: its executors, interchange and blocks."""
        if not self._closed:
            self._closed = True
            self._dfk.cleanup()


def _cancellable(app_future: Future[Any]) -> Future[Any]:
    """A plain future that follows ``app_future`` and can be cancelled.

    Parsl's AppFuture raises NotImplementedError from ``cancel()``, which
    ``asyncio.wrap_future`` calls when the awaiting task is cancelled (an agent
    shutting down): one traceback per evaluation in flight. Cancelling the
    returned future only stops waiting; the Parsl task itself ends with its
    kernel (:meth:`ParslEndpoint.close`).
    """
    follower: Future[Any] = Future()

    def copy(done: Future[Any]) -> None:
        if done.cancelled():
            follower.cancel()
            return
        if not follower.set_running_or_notify_cancel():
            return  # cancelled by the caller: nobody waits for the outcome
        error = done.exception()
        if error is not None:
            follower.set_exception(error)
        else:
            follower.set_result(done.result())

    app_future.add_done_callback(copy)
    return follower


class GlobusComputeEndpoint(_TrackedEndpoint):
    """A Globus Compute endpoint, reached through ``globus_compute_sdk.Executor``.

    Args:
        name: the endpoint's name.
        endpoint_id: the endpoint's UUID.
        client: the ``globus_compute_sdk.Client`` to use (default: a new one,
            which logs in through Globus Auth).
        user_endpoint_config: values for a multi-user endpoint's template.
        batch_size: most tasks per submission request; the SDK coalesces
            what is queued when it sends.
        executor: an Executor to wrap instead of building one (then the
            other arguments except ``name`` are ignored).
    """

    def __init__(
        self,
        name: str,
        endpoint_id: str | None = None,
        *,
        client: Any = None,
        user_endpoint_config: dict[str, Any] | None = None,
        batch_size: int = 128,
        executor: Any = None,
    ) -> None:
        super().__init__(name)
        if executor is None:
            from globus_compute_sdk import Executor as ComputeExecutor

            if endpoint_id is None:
                raise ValueError(f"endpoint {name!r}: endpoint_id is required")
            executor = ComputeExecutor(
                endpoint_id=endpoint_id,
                client=client,
                user_endpoint_config=user_endpoint_config,
                batch_size=batch_size,
                label=name,
            )
        self.executor = executor

    def _submit(self, fn: TaskFunction, payload: bytes) -> Future[Any]:
        future: Future[Any] = self.executor.submit(fn, payload)
        return future

    def close(self) -> None:
        """Stops the SDK executor; results not received yet are given up."""
        if not self._closed:
            self._closed = True
            self.executor.shutdown(wait=False, cancel_futures=True)
