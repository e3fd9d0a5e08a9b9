"""A real one-machine Slurm cluster for tests: munged, slurmctld and slurmd in a temp dir.

:class:`SlurmCluster` writes a minimal ``slurm.conf`` (one node, this machine,
in a partition ``debug``), starts its own ``munged`` with its own key and
socket, then ``slurmctld -D`` and ``slurmd -D``, and waits until ``sinfo``
shows the node idle. Client commands (``sbatch``, ``squeue``, ``srun``, ...)
find the cluster through ``SLURM_CONF`` (see :attr:`SlurmCluster.env`); the
munge socket is named in ``slurm.conf`` (``AuthInfo=socket=...``), so clients
and jobs need nothing more. On exit every job is cancelled and every process
it started is stopped.

Nothing here touches the machine's own Slurm or MUNGE configuration: ports
are picked free, state, spool, logs and pid files live in the temp dir. The
daemons run as root (``SlurmUser=root``) without cgroups
(``proctrack/linuxproc``, ``task/none``), which is what a sandbox allows.

Where the binaries are missing or a daemon cannot start, :class:`SlurmCluster`
raises :class:`SlurmUnavailable` with the daemon's log tail;
:func:`slurm_cluster_or_skip` turns that into ``pytest.skip``. Debian 12
packages: ``munge slurmctld slurmd slurm-client``.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import psutil  # type: ignore[import-untyped]
from redis_server import free_port

__all__ = ["SlurmCluster", "SlurmUnavailable", "job_environment", "slurm_cluster_or_skip"]

#: Programs the cluster needs on PATH (or in /usr/sbin).
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "squeue", "sbatch", "srun", "scancel", "scontrol")
#: The Debian 12 packages that provide them.
PACKAGES = "munge slurmctld slurmd slurm-client"
#: prctl option: the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: Lines of a daemon's log quoted when it fails.
LOG_TAIL_LINES = 25


class SlurmUnavailable(RuntimeError):
    """Slurm cannot run here: a program is missing or a daemon did not start."""


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else f"(empty log {path})"


class SlurmCluster:
    """A one-node Slurm cluster of this machine, in its own temp dir.

    Use it as a context manager::

        with SlurmCluster() as cluster:
            cluster.run("sbatch", "--wrap", "hostname")

    Args:
        start_timeout: Seconds to wait for the node to become idle.
        keep: Leave the temp dir (config, logs) in place after exit.

    Attributes:
        root: The temp dir holding config, state, spool, logs and munge.
        node: The node's name (this machine's short host name).
        partition: The one partition, ``debug`` (the default partition).
        conf: The ``slurm.conf`` path.
        env: What client commands need in their environment (``SLURM_CONF``).
    """

    partition = "debug"

    def __init__(self, *, start_timeout: float = 30.0, keep: bool = False) -> None:
        self.start_timeout = start_timeout
        self.keep = keep
        self.node = socket.gethostname().split(".")[0]
        self.root = Path()
        self.conf = Path()
        self.env: dict[str, str] = {}
        self.munge_socket = Path()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Path] = {}
        self._programs: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the configuration, start the daemons, wait for an idle node.

        Raises:
            SlurmUnavailable: A program is missing, or a daemon exited or the
                node did not become idle in time (the message quotes its log).
        """
        missing = [name for name in DAEMONS + CLIENTS if _which(name) is None]
        if missing:
            raise SlurmUnavailable(
                f"Slurm is not installed: {', '.join(missing)} not found"
                f" (Debian: apt-get install {PACKAGES})"
            )
        self._programs = {name: str(_which(name)) for name in DAEMONS + CLIENTS}
        if os.geteuid() != 0:
            raise SlurmUnavailable("a one-machine Slurm cluster needs root (SlurmUser=root)")
        # Short path under /tmp (not $TMPDIR, not pytest's 0700 tmp_path): the
        # munge socket path must fit sockaddr_un, and munged refuses a socket
        # unless every directory above it is searchable by all.
        base = "/tmp" if os.access("/tmp", os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="aml-slurm-", dir=base))
        self.root.chmod(0o755)
        try:
            self._start_munge()
            self._write_conf()
            self._start_daemon("slurmctld", ["-D", "-i", "-f", str(self.conf)])
            self._start_daemon("slurmd", ["-D", "-f", str(self.conf), "-N", self.node])
            self._wait_idle()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Cancel every job, stop the daemons, kill what is left; idempotent."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            self._cancel_all_jobs()
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                _terminate(proc)
        self._kill_strays()
        if not self.keep and self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    # -- clients ---------------------------------------------------------------

    def run(self, *args: str, check: bool = True, timeout: float = 30.0) -> str:
        """Run a Slurm client command against this cluster; its stdout."""
        environment = {**os.environ, **self.env}
        program = self._programs.get(args[0], args[0])
        done = subprocess.run(
            [program, *args[1:]],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, list(args), done.stdout, done.stderr
            )
        return done.stdout

    def jobs(self) -> list[str]:
        """Ids of the jobs slurmctld still knows as pending or running."""
        out = self.run("squeue", "--noheader", "--format=%i %t", check=False)
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def node_state(self) -> str:
        """The node's state as ``sinfo`` prints it (``idle``, ``alloc``, ...)."""
        out = self.run("sinfo", "--noheader", "--Node", "--format=%t", check=False, timeout=10)
        return out.strip()

    def log_tail(self, daemon: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of ``daemon``'s log (``munged``, ``slurmctld``, ``slurmd``)."""
        return _tail(self._logs[daemon], lines) if daemon in self._logs else "(no log)"

    def pids(self) -> list[int]:
        """Pids of the daemons this cluster runs now."""
        return [proc.pid for proc in self._procs.values() if proc.poll() is None]

    # -- internals -------------------------------------------------------------

    def _start_munge(self) -> None:
        directory = self.root / "munge"
        directory.mkdir(mode=0o755)
        key = directory / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket = directory / "munge.socket"
        args = [
            "-F",
            f"--socket={self.munge_socket}",
            f"--key-file={key}",
            f"--pid-file={directory / 'munged.pid'}",
            f"--seed-file={directory / 'munged.seed'}",
            f"--log-file={directory / 'munged.log'}",
            "--num-threads=4",
        ]
        self._start_daemon("munged", args)
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            self._check_alive("munged")
            if time.monotonic() > deadline:
                raise SlurmUnavailable(
                    f"munged did not create {self.munge_socket}:\n{self.log_tail('munged')}"
                )
            time.sleep(0.05)

    def _node_line(self) -> str:
        """``NodeName=...`` with this machine's sockets, cores and memory (``slurmd -C``)."""
        try:
            out = subprocess.run(
                [self._programs["slurmd"], "-C"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        found = re.search(r"^NodeName=\S+ (.*)$", out, re.MULTILINE)
        hardware = found.group(1).strip() if found else f"CPUs={os.cpu_count() or 1}"
        if "RealMemory" not in hardware:
            memory_mb = psutil.virtual_memory().total // (1024 * 1024)
            hardware += f" RealMemory={memory_mb}"
        return f"NodeName={self.node} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN"

    def _write_conf(self) -> None:
        for sub in ("state", "spool", "log", "run"):
            (self.root / sub).mkdir(mode=0o755, exist_ok=True)
        plugstack = self.root / "plugstack.conf"
        plugstack.write_text("")
        self._logs["slurmctld"] = self.root / "log" / "slurmctld.log"
        self._logs["slurmd"] = self.root / "log" / "slurmd.log"
        lines = [
            "# Written by tests/slurm_cluster.py: a one-node test cluster.",
            f"ClusterName=aml{os.getpid()}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={self._logs['slurmctld']}",
            f"SlurmdLogFile={self._logs['slurmd']}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"PlugStackConfig={plugstack}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "MinJobAge=60",
            "KillWait=2",
            "Waittime=0",
            self._node_line(),
            f"PartitionName={self.partition} Nodes={self.node} Default=YES"
            " MaxTime=INFINITE State=UP",
        ]
        self.conf = self.root / "slurm.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.env = {"SLURM_CONF": str(self.conf)}

    def _start_daemon(self, name: str, args: list[str]) -> None:
        # munged logs to its --log-file only when it daemonises: with -F its
        # log goes to stderr. Slurm daemons log to their LogFile; their stderr
        # catches what happens before the log is open.
        stderr_path = self.root / "log" / f"{name}.stderr"
        stderr_path.parent.mkdir(exist_ok=True, mode=0o755)
        if name == "munged":
            self._logs[name] = stderr_path
        environment = {**os.environ, **self.env}
        with stderr_path.open("wb") as stderr:
            self._procs[name] = subprocess.Popen(
                [self._programs[name], *args],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self.root,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            early = _tail(self.root / "log" / f"{name}.stderr")
            raise SlurmUnavailable(
                f"{name} exited with status {proc.returncode}:\n"
                f"{self.log_tail(name)}\n--- {name} stderr ---\n{early}"
            )

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        state = ""
        while time.monotonic() < deadline:
            for name in DAEMONS:
                self._check_alive(name)
            state = self.node_state()
            if state in ("idle", "mix", "alloc"):
                return
            time.sleep(0.2)
        raise SlurmUnavailable(
            f"node {self.node} not idle after {self.start_timeout:.0f} s (sinfo: {state!r})\n"
            f"--- slurmctld ---\n{self.log_tail('slurmctld')}\n"
            f"--- slurmd ---\n{self.log_tail('slurmd')}"
        )

    def _cancel_all_jobs(self, timeout: float = 20.0) -> None:
        with suppress(subprocess.SubprocessError, OSError):
            if not self.jobs():
                return
            self.run("scancel", f"--partition={self.partition}", check=False)
            deadline = time.monotonic() + timeout
            while self.jobs() and time.monotonic() < deadline:
                time.sleep(0.2)

    def leftovers(self) -> list[psutil.Process]:
        """Live processes of this cluster: daemons, step daemons, job processes.

        Step daemons (``slurmstepd``) and what they run leave slurmd's session
        and are re-parented to init. Job processes are recognised by the
        ``SLURM_CONF`` they inherit, daemons by this cluster's temp dir on
        their command line, step daemons (which wipe their environment and
        command line) by their working directory or their open slurmd log.
        Zombies are not counted.
        """
        if self.root == Path():
            return []
        marker = str(self.root)
        # This process and its other children (a Parsl interchange, say) have
        # SLURM_CONF too; they are not the cluster's.
        me = psutil.Process()
        daemons = set(self.pids())
        for pid in list(daemons):
            with suppress(psutil.Error):
                daemons.update(p.pid for p in psutil.Process(pid).children(recursive=True))
        mine = {me.pid} | {p.pid for p in me.children(recursive=True)}
        found = []
        for proc in psutil.process_iter(["pid", "name", "cmdline", "environ", "status"]):
            with suppress(psutil.Error):
                if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid in mine - daemons:
                    continue
                if _belongs(proc, marker):
                    found.append(proc)
        return found

    def _kill_strays(self) -> None:
        strays = self.leftovers()
        for proc in strays:
            with suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(strays, timeout=5)


def _die_with_parent() -> None:
    """In a daemon before exec: SIGTERM when the test process dies (even by SIGKILL)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _belongs(proc: psutil.Process, marker: str) -> bool:
    if marker in " ".join(proc.info["cmdline"] or []):
        return True
    if (proc.info["environ"] or {}).get("SLURM_CONF", "").startswith(marker):
        return True
    if proc.info["name"] != "slurmstepd":
        return False
    if proc.cwd().startswith(marker):
        return True
    return any(f.path.startswith(marker) for f in proc.open_files())


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)


@contextmanager
def slurm_cluster_or_skip(*, start_timeout: float = 30.0) -> Iterator[SlurmCluster]:
    """A started :class:`SlurmCluster` with ``SLURM_CONF`` exported; skips if it cannot start.

    The skip reason says what is missing or quotes the failing daemon's log.
    """
    import pytest  # here: job_environment runs on workers, which need not have pytest

    cluster = SlurmCluster(start_timeout=start_timeout)
    try:
        cluster.start()
    except SlurmUnavailable as error:
        pytest.skip(f"no Slurm cluster on this machine: {error}")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in cluster.env.items():
                patch.setenv(name, value)
            yield cluster
    finally:
        cluster.stop()


def job_environment() -> dict[str, str]:
    """What a task reports of the process it runs in: Slurm job, cache, venv, host.

    A Parsl app or any task function: workers import it from this module
    (``tests/`` on their ``PYTHONPATH``).
    """
    names = (
        "SLURM_JOB_ID",
        "SLURM_STEP_ID",
        "SLURM_JOB_PARTITION",
        "ACADEMY_ML_CACHE_DIR",
        "VIRTUAL_ENV",
    )
    found = {name: os.environ.get(name, "") for name in names}
    found["prefix"] = sys.prefix
    found["host"] = socket.gethostname()
    found["pid"] = str(os.getpid())
    return found
