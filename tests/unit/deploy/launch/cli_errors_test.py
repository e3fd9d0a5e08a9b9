"""Every verb on a deployment config: bad input and unreachable services are one line, rc 2.

Run as a user would (a subprocess of ``python -m academy_ml``), against a
real redis-server for the password cases and a closed port for the
unreachable one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from redis_server import RedisServer

#: Every verb on a deployment config (reset told --yes: it asks before connecting).
VERBS = ["up", "status", "down", "reset --yes", "results"]

SPECS = {
    "planner.toml": '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
    "[agent.init]\nbudget = 4\n",
}


def _config(directory: Path, deployment: str) -> Path:
    for name, text in SPECS.items():
        (directory / name).write_text(text)
    config = directory / "deployment.toml"
    config.write_text(deployment)
    return config


def _redis_config(directory: Path, url: str) -> Path:
    return _config(
        directory,
        f'[deployment]\nagents = ["planner.toml"]\nexchange = "{url}"\nknowledge = "exchange"\n',
    )


def _cli(*args: str | Path) -> tuple[int, list[str]]:
    """Exit status and the lines of stderr (stdout must be empty)."""
    done = subprocess.run(
        [sys.executable, "-m", "academy_ml", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout == "", done.stdout
    return done.returncode, done.stderr.splitlines()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("verb", VERBS)
def test_a_deployment_that_is_no_table(tmp_path: Path, verb: str) -> None:
    config = _config(tmp_path, "deployment = 5\n")
    code, lines = _cli(*verb.split(), config)
    assert code == 2
    assert lines == [f"academy-ml: error: {config}: deployment: expected a table ([deployment]), "
                     "got 5"]  # fmt: skip


def test_an_agent_argument_of_the_wrong_type(tmp_path: Path) -> None:
    config = _config(tmp_path, '[deployment]\nagents = ["planner.toml"]\n')
    code, lines = _cli("up", config, "--set", "planner.budget=abc")
    assert code == 2
    assert len(lines) == 1
    assert f"{tmp_path / 'planner.toml'}: agent.init.budget: PlannerAgent expects int" in lines[0]


@pytest.mark.parametrize("verb", VERBS)
def test_a_bad_url_parameter(tmp_path: Path, verb: str) -> None:
    config = _redis_config(tmp_path, "redis://127.0.0.1:6379/0?colour=blue")
    code, lines = _cli(*verb.split(), config)
    assert code == 2
    assert len(lines) == 1
    assert f"{config}: deployment.exchange: unknown Redis URL parameter(s) ['colour']" in lines[0]


@pytest.mark.parametrize("verb", VERBS)
def test_redis_unreachable(tmp_path: Path, verb: str) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    code, lines = _cli(*verb.split(), _redis_config(tmp_path, url))
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"academy-ml: error: cannot reach Redis at {url}: ")


@pytest.mark.parametrize("verb", VERBS)
def test_a_wrong_password(tmp_path: Path, verb: str, redis_password_server: RedisServer) -> None:
    url = f"redis://:wrong@127.0.0.1:{redis_password_server.port}/0"
    code, lines = _cli(*verb.split(), _redis_config(tmp_path, url))
    assert code == 2
    assert len(lines) == 1, lines
    assert f"Redis at redis://:***@127.0.0.1:{redis_password_server.port}/0 refused" in lines[0]
    assert "wrong" not in lines[0]


def test_no_password_for_a_server_that_requires_one(
    tmp_path: Path, redis_password_server: RedisServer
) -> None:
    url = f"redis://127.0.0.1:{redis_password_server.port}/0"
    code, lines = _cli("status", _redis_config(tmp_path, url))
    assert code == 2
    assert len(lines) == 1, lines
    assert "requires a password" in lines[0]
