"""Foreign-step worker processes: starting, talking to, killing, and keeping them between runs.

A worker is ``python -m academy_ml.engine.foreign_worker`` with two pipes:
tasks in, replies out. Replies are the only bytes the parent reads from a
worker; they are size-bounded msgpack, checked against the exact shape a
reply has before use. Idle workers are kept for the next run (a worker pays
for importing scikit-learn once); a forked child never uses its parent's.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

import msgpack

from academy_ml.engine.budgets import worker_environment

__all__ = ["Reply", "Worker", "WorkerDied", "acquire", "release"]

#: Largest reply a worker may send (a score or an error message).
MAX_REPLY_BYTES = 1 << 20

_WORKER_MODULE = "academy_ml.engine.foreign_worker"

#: Seconds a closing idle worker gets to exit on its own before it is killed.
_CLOSE_GRACE_S = 2.0

Reply = tuple[int, float | None, str | None, str | None]
"""A checked reply: (task id, score, error message, error kind)."""


class WorkerDied(Exception):
    """A worker's pipe broke: it exited, crashed or was killed; the message says how."""


class Worker:
    """One worker process and its two pipes."""

    def __init__(self) -> None:
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", _WORKER_MODULE, str(task_read), str(result_write)],
                pass_fds=(task_read, result_write),
                stdin=subprocess.DEVNULL,
                env=worker_environment(1),
            )
        except BaseException:
            for fd in (task_write, result_read):
                os.close(fd)
            raise
        finally:
            # Only the worker holds these ends, so its death reads as EOF here.
            os.close(task_read)
            os.close(result_write)
        self.tasks = Connection(task_write, readable=False)
        self.results = Connection(result_read, writable=False)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def send(self, frame: bytes) -> None:
        """Sends one task frame.

        Raises:
            WorkerDied: If the worker is gone.
        """
        try:
            self.tasks.send_bytes(frame)
        except OSError as exc:
            raise WorkerDied(self._death()) from exc

    def receive(self) -> Reply:
        """Reads and checks one reply.

        Raises:
            WorkerDied: If the worker is gone or sent something that is not a reply.
        """
        try:
            data = self.results.recv_bytes(MAX_REPLY_BYTES)
        except (EOFError, OSError) as exc:
            raise WorkerDied(self._death()) from exc
        reply = _check_reply(data)
        if reply is None:
            self.kill()
            raise WorkerDied(f"the worker process (pid {self.pid}) sent a malformed reply")
        return reply

    def kill(self) -> None:
        """Kills the process, reaps it and closes the pipes."""
        if self.alive():
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def signal_kill(self) -> None:
        """Sends SIGKILL only: safe while another thread reads or writes the pipes.

        That thread then sees the worker's death on its pipe and cleans up
        (:meth:`kill` reaps the process and closes the pipes).
        """
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Lets an idle worker exit (EOF on its task pipe); kills it if it lingers."""
        self._close_pipes()
        try:
            self.process.wait(_CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        self.tasks.close()
        self.results.close()

    def _death(self) -> str:
        try:
            code = self.process.wait(_CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        self._close_pipes()
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return f"the worker process running this step (pid {self.pid}) {how}"


def _check_reply(data: bytes) -> Reply | None:
    try:
        reply = msgpack.unpackb(data, raw=False, strict_map_key=True, max_array_len=0)
    except Exception:
        return None
    if not isinstance(reply, dict) or not isinstance(reply.get("id"), int):
        return None
    if set(reply) == {"id", "score"} and isinstance(reply["score"], float):
        return reply["id"], reply["score"], None, None
    if (
        set(reply) == {"id", "error", "kind"}
        and isinstance(reply["error"], str)
        and reply["kind"] in ("step", "load")
    ):
        return reply["id"], None, reply["error"], reply["kind"]
    return None


_lock = threading.Lock()
_idle: list[Worker] = []
_owner = os.getpid()


def acquire(count: int) -> list[Worker]:
    """``count`` workers for one run: idle ones first, new ones for the rest."""
    global _owner
    with _lock:
        if _owner != os.getpid():
            # A forked child: those workers are its parent's; leave them be.
            _idle.clear()
            _owner = os.getpid()
        taken: list[Worker] = []
        while _idle and len(taken) < count:
            worker = _idle.pop()
            if worker.alive():
                taken.append(worker)
            else:
                worker.kill()
    return taken + [Worker() for _ in range(count - len(taken))]


def release(workers: list[Worker], keep: int) -> None:
    """Returns a run's live, idle workers to the pool, keeping at most ``keep`` idle."""
    surplus: list[Worker] = []
    with _lock:
        for worker in workers:
            if worker.alive() and _owner == os.getpid() and len(_idle) < keep:
                _idle.append(worker)
            else:
                surplus.append(worker)
    for worker in surplus:
        worker.close()


def shutdown() -> None:
    """Closes every idle worker (at exit, so no worker outlives its parent)."""
    with _lock:
        workers = list(_idle) if _owner == os.getpid() else []
        _idle.clear()
    for worker in workers:
        worker.close()


atexit.register(shutdown)
