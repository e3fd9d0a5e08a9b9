"""A throwaway ``redis-server`` on a loopback port, for tests and benchmarks.

Example:
    ```python
    with RedisServer(appendonly=True) as server:
        factory = RedisExchangeFactory(server.url)
        ...
        server.restart(kill=True)  # kill -9, then start again on the same port
    ```

Each server gets its own temporary directory (``dir``), removed by
:meth:`RedisServer.close`; restarts keep it, so an append-only file survives.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import redis

__all__ = ["RedisServer", "RedisServerError", "free_port"]

_STARTUP_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class RedisServerError(RuntimeError):
    """``redis-server`` is missing, or did not start or stop in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reap(processes: list[subprocess.Popen[bytes]], directory: Path) -> None:
    """Kill what is left and remove the directory (close, collection or exit)."""
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    shutil.rmtree(directory, ignore_errors=True)


class RedisServer:
    """A ``redis-server`` child process listening on ``127.0.0.1``.

    Args:
        password: Sets ``requirepass``; the :attr:`url` then carries it.
        appendonly: Persist every write (``appendonly yes``, ``appendfsync
            always``) so the data survives :meth:`restart`, even a
            ``kill=True`` one. Without it nothing is saved (``save ""``).
        extra_args: More ``--option value`` arguments for ``redis-server``.
        port: A fixed port; by default a free one is picked.
        executable: The ``redis-server`` binary.
    """

    def __init__(
        self,
        *,
        password: str | None = None,
        appendonly: bool = False,
        extra_args: tuple[str, ...] | list[str] = (),
        port: int | None = None,
        executable: str = "redis-server",
    ) -> None:
        found = shutil.which(executable)
        if found is None:
            raise RedisServerError(
                f"{executable!r} not found on PATH: install redis-server, e.g. `make redis`"
            )
        self.executable = found
        self.password = password
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="academy-ml-redis-"))
        self.log_path = self.dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        # The finalizer must not reference self: it shares this list instead.
        self._processes: list[subprocess.Popen[bytes]] = []
        self._finalizer = weakref.finalize(self, _reap, self._processes, self.dir)

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT``."""
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        args = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.dir), "--daemonize", "no", "--loglevel", "notice"]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        else:
            args += ["--appendonly", "no", "--save", ""]
        if self.password is not None:
            args += ["--requirepass", self.password]
        return args + self.extra_args

    def aof_bytes(self) -> int:
        """Size of the append-only file on disk (all its parts), 0 without one."""
        return sum(
            path.stat().st_size
            for path in self.dir.rglob("*.aof*")  # appendonly.aof or appendonlydir/*
            if path.is_file()
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _ping(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False
        finally:
            client.close()

    def start(self) -> RedisServer:
        """Start the server and wait until it answers ``PING``.

        Returns:
            The server itself, for chaining.

        Raises:
            RedisServerError: If it exits or does not answer within ~10 s;
                the message ends with the tail of the server's log.
        """
        if self.running:
            return self
        for attempt in range(3):
            try:
                self._launch()
                return self
            except RedisServerError:
                in_use = "Address already in use" in self.log_tail()
                if self._fixed_port or not in_use or attempt == 2:
                    raise
                self.port = free_port()  # lost a race for the port: try another
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self) -> None:
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._process = process
        self._processes[:] = [process]
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with code {process.returncode} on port {self.port}:\n"
                    f"{self.log_tail()}"
                )
            if self._ping():
                return
            time.sleep(0.02)
        self.kill()
        raise RedisServerError(
            f"redis-server did not answer PING on port {self.port} within "
            f"{_STARTUP_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Shut the server down gracefully (SIGTERM; SIGKILL if it hangs).

        With ``appendonly`` the append-only file is flushed first. The
        directory is kept, so :meth:`start` brings the data back.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def restart(self, kill: bool = False) -> None:
        """Stop (or kill) the server and start it again, same port and dir.

        Args:
            kill: SIGKILL instead of a graceful shutdown.
        """
        self.kill() if kill else self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        self._finalizer()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RedisServer(port={self.port}, {state}, dir={str(self.dir)!r})"
