"""A deployment's logs: the level, the file, the terminal, Parsl's records, ``--log-level``."""

from __future__ import annotations

import asyncio
import io
import logging
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from academy_ml.agents.strategies import (
    FiringRecord,
    OnEvent,
    SetState,
    Signal,
    StateAtLeast,
    Strategy,
    StrategyRunner,
)
from academy_ml.agents.strategies.strategy import FIRINGS
from academy_ml.deploy.cli import main
from academy_ml.deploy.launch import run
from academy_ml.deploy.launch.config import DeploymentSection, load_deployment
from academy_ml.deploy.launch.logs import LOG_LEVELS, deployment_logging, log_overrides
from academy_ml.exceptions import ConfigError

PLANNER = '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'


def _config(directory: Path, extra: str = "") -> Path:
    (directory / "planner.toml").write_text(PLANNER)
    config = directory / "deployment.toml"
    config.write_text(f'[deployment]\nname = "dep"\nagents = ["planner.toml"]\n{extra}')
    return config


def test_the_levels_are_the_configs() -> None:
    annotation = DeploymentSection.model_fields["log_level"].annotation
    assert typing.get_args(annotation) == LOG_LEVELS


def test_log_level_and_logs_are_config_keys_with_defaults(tmp_path: Path) -> None:
    config = _config(tmp_path)
    deployment = load_deployment(config)
    assert deployment.settings.log_level == "INFO"
    assert deployment.run_dir == (tmp_path / "runinfo" / "dep").absolute()
    assert deployment.log_dir == deployment.run_dir
    assert deployment.knowledge_path == deployment.run_dir / "knowledge.sqlite"
    moved = load_deployment(_config(tmp_path, 'log_level = "DEBUG"\nlogs = "elsewhere"\n'))
    assert moved.settings.log_level == "DEBUG"
    assert moved.log_dir == (tmp_path / "elsewhere").absolute()


def test_a_level_that_is_none_of_them_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"deployment\.log_level: Input should be 'DEBUG'"):
        load_deployment(_config(tmp_path, 'log_level = "LOUD"\n'))


def test_cli_options_become_overrides_hosts_see(tmp_path: Path) -> None:
    overrides = log_overrides("DEBUG", Path("logs"))
    assert overrides == ["deployment.log_level=DEBUG", f"deployment.logs={Path('logs').absolute()}"]
    deployment = load_deployment(_config(tmp_path), overrides)
    assert deployment.settings.log_level == "DEBUG"
    assert deployment.log_dir == Path("logs").absolute()
    assert deployment.overrides == tuple(overrides)  # what host processes are started with
    assert log_overrides(None, None) == []


def test_the_file_gets_the_level_the_terminal_warnings_parsl_its_own(tmp_path: Path) -> None:
    file = tmp_path / "logs" / "up.log"
    out = io.StringIO()
    console = Console(file=out, width=200)
    with deployment_logging("INFO", file, console):
        logging.getLogger("academy_ml.test").info("an evaluation")
        logging.getLogger("academy_ml.test").debug("a detail")
        logging.getLogger("academy_ml.test").warning("a restart")
        logging.getLogger("parsl.dataflow").info("a parsl task")
        logging.getLogger("parsl.dataflow").warning("a parsl problem")
    logging.getLogger("academy_ml.test").warning("after")
    text = file.read_text()
    assert "INFO academy_ml.test: an evaluation" in text
    assert "WARNING academy_ml.test: a restart" in text
    assert "a parsl problem" in text
    assert "a detail" not in text
    assert "a parsl task" not in text  # in Parsl's own log
    assert "after" not in text
    shown = out.getvalue()
    assert "a restart" in shown
    assert "a parsl problem" in shown
    assert "an evaluation" not in shown


def test_the_terminal_gets_one_line_the_file_the_traceback(tmp_path: Path) -> None:
    file = tmp_path / "up.log"
    out = io.StringIO()
    with deployment_logging("INFO", file, Console(file=out, width=400)):
        try:
            raise RuntimeError("cannot schedule new futures after shutdown")
        except RuntimeError:
            logging.getLogger("academy_ml.test").warning("writing its log failed", exc_info=True)
    shown = out.getvalue()
    assert (
        "writing its log failed: RuntimeError: cannot schedule new futures after shutdown "
        f"(traceback in {file})" in shown
    )
    assert "Traceback" not in shown
    assert "Traceback (most recent call last)" in file.read_text()


class NoKnowledge:
    async def count_since(self, model_version: int, *, flag: str | None = None) -> int:
        return 0


def test_strategy_firings_are_warnings_in_the_file_not_on_the_terminal(tmp_path: Path) -> None:
    async def log(record: FiringRecord) -> None:
        return None

    state: dict[str, Any] = {"queue": 3}
    pause = Strategy(
        "pause",
        when=OnEvent("queued"),
        if_=StateAtLeast("queue", 10),
        then=[SetState("paused", True)],
    )
    runner = StrategyRunner([pause], object(), state, NoKnowledge(), log, agent="planner")
    now = datetime(2025, 3, 1, tzinfo=UTC)
    file = tmp_path / "up.log"
    out = io.StringIO()
    with deployment_logging("INFO", file, Console(file=out, width=400)):
        asyncio.run(runner.on_signal(Signal("event", "queued"), now))
        state["queue"] = 12
        for _ in range(3):  # a long run acts again and again
            asyncio.run(runner.on_signal(Signal("event", "queued"), now))
        logging.getLogger("academy_ml.test").warning("a restart")
    text = file.read_text()
    assert "INFO academy_ml.agents.strategies.strategy: planner: strategy 'pause' held" in text
    assert text.count(f"WARNING {FIRINGS}: planner: strategy 'pause' fired") == 3
    assert "strategy" not in out.getvalue()
    assert "a restart" in out.getvalue()


def test_debug_reaches_the_file(tmp_path: Path) -> None:
    file = tmp_path / "up.log"
    with deployment_logging("DEBUG", file, Console(file=io.StringIO())):
        logging.getLogger("academy_ml.test").debug("a detail")
    assert "DEBUG academy_ml.test: a detail" in file.read_text()


def test_an_unwritable_log_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("a file where the log directory would be")
    config = _config(tmp_path, 'logs = "taken"\n')
    with pytest.raises(SystemExit) as exited:
        main(["up", str(config), "--log-level", "DEBUG"])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"academy-ml: error: {config}: cannot write the log {tmp_path / 'taken' / 'up.log'}: "
    )


def test_log_level_choices_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["up", "x.toml", "--log-level", "LOUD"])
    assert exited.value.code == 2
    assert "argument --log-level: invalid choice: 'LOUD'" in capsys.readouterr().err


class _Silent:
    """A handle whose agent never answers (a host still importing its modules)."""

    async def status(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class _Counts:
    async def counts(self) -> dict[str, int]:
        return {"candidates": 0, "results": 0, "pending": 0}


@pytest.mark.parametrize(("starting", "level"), [(True, logging.DEBUG), (False, logging.WARNING)])
def test_an_agent_not_answering_while_starting_is_no_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, starting: bool, level: int
) -> None:
    monkeypatch.setattr(run, "ANSWER_TIMEOUT_S", 0.01)
    handles: dict[str, Any] = {"planner": _Silent()}
    with caplog.at_level(logging.DEBUG, logger=run.__name__):
        _, status = asyncio.run(
            run._look(_Counts(), handles, "planner", starting=starting)  # type: ignore[arg-type]
        )
    assert status is None
    assert [r.levelno for r in caplog.records if r.name == run.__name__] == [level]
