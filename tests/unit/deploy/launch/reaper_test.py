"""The reaper finds a run's processes by tag or session, wherever they were reparented."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from academy_ml.deploy.launch.reaper import RUN_VARIABLE, members, reap, run_tag

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids a test started; whatever is left is killed afterwards."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _orphan(env: dict[str, str] | None = None) -> int:
    """A sleeper in a process group of its own whose parent shell has exited, as Parsl's
    LocalProvider starts worker pools."""
    shell = subprocess.run(
        ["bash", "-c", 'set -m; "$@" >/dev/null 2>&1 & echo $!', "bash", *SLEEPER],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return int(shell.stdout)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def _wait_until_listed(tag: str, pid: int) -> None:
    # A child's environment is visible once it has exec'd.
    deadline = time.monotonic() + 30
    while pid not in members(tag):
        assert time.monotonic() < deadline, f"{pid} never carried {tag}"
        time.sleep(0.05)


def test_an_orphan_in_its_own_group_is_found_by_its_tag_and_reaped(started: list[int]) -> None:
    outsider = subprocess.Popen(SLEEPER)
    started.append(outsider.pid)
    with run_tag() as tag:
        orphan = _orphan()
        started.append(orphan)
        assert os.getpgid(orphan) != os.getpgid(0)
        _wait_until_listed(tag, orphan)
        assert outsider.pid not in members(tag)

        assert reap(tag) == 1

    assert not _alive(orphan)
    assert outsider.poll() is None
    outsider.kill()
    outsider.wait()


def test_tags_below_the_run_belong_to_it_and_lookalikes_do_not(started: list[int]) -> None:
    with run_tag() as tag:
        host = _orphan({**os.environ, RUN_VARIABLE: f"{tag}/analysis/0"})
        lookalike = _orphan({**os.environ, RUN_VARIABLE: f"{tag}0"})
        started += [host, lookalike]
        _wait_until_listed(tag, host)
        assert lookalike not in members(tag)
        assert reap(f"{tag}/analysis/0") == 1
    assert not _alive(host)
    assert _alive(lookalike)


def start_ready(setup: str, started: list[int]) -> subprocess.Popen[bytes]:
    """A Python child that runs ``setup``, says it is ready, then sleeps; returns once ready."""
    code = f"{setup}\nimport time; print('ready', flush=True); time.sleep(300)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    started.append(child.pid)
    assert child.stdout is not None
    with child.stdout:
        assert child.stdout.readline().strip() == b"ready"
    return child


def test_the_tag_lives_through_setproctitle(started: list[int]) -> None:
    """Parsl's interchange renames itself, which overwrites the environment /proc shows
    unless SPT_NOENV is set (run_tag sets it)."""
    with run_tag() as tag:
        child = start_ready(
            "import setproctitle; setproctitle.setproctitle('parsl: ' + 'x' * 500)", started
        )
        assert child.pid in members(tag)
        reap(tag)
    child.wait()


def test_a_session_finds_what_a_cleared_environment_hides(started: list[int]) -> None:
    leader = subprocess.Popen(
        ["bash", "-c", 'set -m; "$@" >/dev/null 2>&1 & wait', "bash", *SLEEPER],
        env={"PATH": os.environ["PATH"]},
        start_new_session=True,
    )
    started.append(leader.pid)
    with run_tag() as tag:
        deadline = time.monotonic() + 30
        while len(members(tag, {leader.pid})) < 2:  # the shell and its sleeper
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert members(tag) == []
        assert reap(tag, sessions={leader.pid}) == 2
    leader.wait()
    assert members("unused", {leader.pid}) == []


def test_a_process_ignoring_sigterm_is_killed_after_the_grace(started: list[int]) -> None:
    with run_tag() as tag:
        child = start_ready("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)", started)
        assert reap(tag, grace_s=0.2) == 1
    assert child.wait() == -signal.SIGKILL


def test_run_tag_restores_the_environment() -> None:
    before = {name: os.environ.get(name) for name in (RUN_VARIABLE, "SPT_NOENV")}
    with run_tag() as tag:
        assert os.environ[RUN_VARIABLE] == tag
        assert os.environ["SPT_NOENV"] == "1"
    assert {name: os.environ.get(name) for name in before} == before
