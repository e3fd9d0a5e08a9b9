"""Scenario: an operator's agent spec has a mistake; ``academy-ml up`` says where and stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_up_names_the_file_the_key_and_the_problem(tmp_path: Path) -> None:
    (tmp_path / "planner.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
        "[agent.init]\nbudget = 10\n"
        '[[strategies]]\nname = "retrain"\nwhen = [{ every = 5 }]\nthen = [{ call = "x" }]\n'
    )
    config = tmp_path / "deployment.toml"
    config.write_text('[deployment]\nagents = ["planner.toml"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "academy_ml", "up", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"academy-ml: error: {tmp_path / 'planner.toml'}: strategy 'retrain': "
        "when.0.every: Extra inputs are not permitted"
    )
