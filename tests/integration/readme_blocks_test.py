"""Scenario: every fenced code block of the tracked READMEs runs or is checked.

* ``python`` blocks run as a script in a child process and must exit 0. The
  working directory is a temporary one in which ``agents/`` and ``configs/``
  of the checkout appear (paths in the READMEs are relative to a checkout);
  ``examples/`` is on ``PYTHONPATH`` as ``make demo`` puts it, the node cache
  is a temporary directory, and a block that reads ``REDIS_URL`` gets a real
  redis-server's.
* ``bash``/``sh`` blocks are checked, not run: an ``academy-ml`` line must
  parse with the CLI's own parser (a deployment it names must load with its
  ``--set`` overrides, a kit's ``--set`` values must validate), ``make X``
  must name a target of the Makefile, ``python -m X`` an importable module,
  ``python FILE`` a file of the checkout, ``python -c CODE`` compile, and a
  path under a directory of the checkout must exist.
* ``toml`` blocks parse, and agent specs, deployments and endpoint registries
  validate with the models ``academy-ml up`` uses.

An HTML comment right before a fence changes how its block is taken:
``<!-- docs-test: after previous -->`` runs a python block after the python
block before it (one script), ``<!-- docs-test: skip: REASON -->`` only
compiles it, and the skip is reported with its reason (``-rs``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from readme_blocks import (
    LINKED,
    ROOT,
    Block,
    all_blocks,
    directive_problems,
    python_scripts,
    read_blocks,
    shell_problems,
    toml_problems,
    tracked,
)

#: Upper bound for one python block (a local Parsl endpoint starts in one).
BLOCK_TIMEOUT_S = 240.0
#: The languages a test checks; any other block fails test_every_block_is_checked.
CHECKED = {"python", "bash", "sh", "toml"}

BLOCKS = all_blocks()


def _params(lang: set[str]) -> list[Any]:
    return [pytest.param(b, id=b.where) for b in BLOCKS if b.lang in lang]


def test_the_readmes_are_read() -> None:
    files = {block.file for block in BLOCKS}
    named = {
        "README.md",
        "agents/README.md",
        "configs/README.md",
        "endpoints/README.md",
        "examples/mofa/README.md",
    }
    assert named <= files
    assert files == set(tracked("*README.md"))


def test_every_block_is_checked() -> None:
    unchecked = [f"{b.where}: {b.lang or 'no language'}" for b in BLOCKS if b.lang not in CHECKED]
    assert not unchecked, f"blocks no test checks (give them one of {sorted(CHECKED)})"


def test_directives_are_known() -> None:
    assert directive_problems(BLOCKS) == []


@pytest.mark.parametrize(
    ("first", "code"),
    [pytest.param(first, code, id=first.where) for first, code in python_scripts(BLOCKS)],
)
def test_python_block_runs(
    first: Block, code: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    compile(code, first.where, "exec")
    if first.skip_reason is not None:
        pytest.skip(f"{first.where}: {first.skip_reason}")
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    python_path = [str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")]
    env = {
        **{k: v for k, v in os.environ.items() if k != "ACADEMY_ML_DATASET_DIR"},
        "PYTHONPATH": os.pathsep.join(filter(None, python_path)),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "ACADEMY_ML_CACHE_DIR": str(tmp_path / "cache"),
    }
    if "REDIS_URL" in code:
        env["REDIS_URL"] = request.getfixturevalue("redis_server").url
    script = work / "readme_block.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, script.name],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"{first.where} exited {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )


@pytest.mark.parametrize("block", _params({"bash", "sh"}))
def test_shell_block_names_what_exists(block: Block) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"{block.where}: {block.skip_reason}")
    assert shell_problems(block.text) == []


@pytest.mark.parametrize("block", _params({"toml"}))
def test_toml_block_validates(block: Block, tmp_path: Path) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"{block.where}: {block.skip_reason}")
    assert toml_problems(block.text, tmp_path) == []


# --- the checks catch what they should -------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("academy-ml stauts configs/local.toml", "invalid choice: 'stauts'"),
        ("academy-ml up configs/nowhere.toml", "no configs/nowhere.toml"),
        ("academy-ml up configs/local.toml --set nobody.budget=3", "no agent 'nobody'"),
        ("academy-ml up configs/local.toml --budget 3", "unrecognized arguments: --budget"),
        ("academy-ml status configs/redis.toml --watch x", "invalid float value: 'x'"),
        ("academy-ml demo --workers 3", "unrecognized arguments: --workers"),
        ("academy-ml endpoint render slurm --set nodes=2 --output x", "nodes"),
        ("make demo && make tset", "no Makefile target 'tset'"),
        ("PYTHONPATH=examples python -m mofa_nowhere", "no module 'mofa_nowhere'"),
        (".venv/bin/python benchmarks/nowhere.py", "no script benchmarks/nowhere.py"),
        ("bash -c 'python -c \"print(\"'", "python -c:"),
    ],
)
def test_shell_check_finds(line: str, problem: str) -> None:
    problems = shell_problems(line)
    assert any(problem in p for p in problems), problems


def test_shell_check_accepts() -> None:
    text = (
        "make demo DEMO_ARGS='--seeds 0 1'   # a comment\n"
        "academy-ml endpoint render local \\\n    --set venv=/env --output out\n"
        "PYTHONPATH=examples .venv/bin/python -m mofa --seeds 0 1 2 &\n"
        "academy-ml up configs/redis.toml --set deployment.exchange=redis://host:6379/0\n"
    )
    assert shell_problems(text) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[agent\n", "not TOML"),
        ('[agent]\nclass = "academy_ml.agents.NoSuchAgent"\nname = "x"\n', "no NoSuchAgent"),
        ('[agent]\nclass = "academy_ml.agents.AnalysisAgent"\nname = "a b"\n', "agent.name"),
        ('[deployment]\nagents = ["../agents/nowhere.toml"]\n', "nowhere.toml"),
        ('[endpoints.x]\nkind = "local"\nworkers = "many"\n', "endpoints.x"),
        ("[tool]\nx = 1\n", "neither an agent spec"),
    ],
)
def test_toml_check_finds(text: str, problem: str, tmp_path: Path) -> None:
    problems = toml_problems(text, tmp_path)
    assert len(problems) == 1
    assert problem in problems[0]


def test_reader_takes_directives_and_indented_fences() -> None:
    text = (
        "# t\n\n```python\nx = 1\n```\n\n  <!-- docs-test: after previous -->\n"
        "  ```python\n  print(x)\n  ```\n<!-- docs-test: skip: no Slurm here -->\n"
        "```python\nimport slurm\n```\n<!-- docs-test: sometimes -->\n```bash\nls\n```\n"
    )
    blocks = read_blocks("T.md", text)
    assert [(b.line, b.lang, b.text, b.directive) for b in blocks] == [
        (3, "python", "x = 1\n", None),
        (8, "python", "print(x)\n", "after previous"),
        (12, "python", "import slurm\n", "skip: no Slurm here"),
        (16, "bash", "ls\n", "sometimes"),
    ]
    assert [code for _, code in python_scripts(blocks)] == ["x = 1\n\nprint(x)\n", "import slurm\n"]
    assert directive_problems(blocks) == ["T.md:16: unknown directive 'sometimes'"]
