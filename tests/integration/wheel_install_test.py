"""The wheel `make wheel` builds works on a machine without Rust or a checkout.

It is installed into a fresh venv (dependencies from the package index), and
everything then runs with no cargo or rustc on PATH, from a directory outside
the checkout: the CLI, rendering a kit from package data, ``aml.evaluate``
on the Rust runtime, and a batch through a Parsl endpoint rendered from the
local kit whose workers start in that venv. Slow: a release build takes
~30 minutes on two busy cores from a debug-only target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from academy_ml.compute.placement import ParslSpec, load_registry
from academy_ml.deploy.kits import KITS, render_kit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
ALPHAS = (0.1, 1.0, 10.0)
#: The wheel's name: one abi3 wheel for CPython 3.11+, tagged manylinux.
WHEEL_NAME = re.compile(r"academy_ml-[\w.]+-cp311-abi3-manylinux_2_\d+_x86_64\.whl")

#: Scores of Ridge pipelines on diabetes with `aml.evaluate`, as JSON.
EVALUATE = """
import json, sys
import academy_ml as aml
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_diabetes(return_X_y=True)
pipelines = [make_pipeline(StandardScaler(), Ridge(alpha=a)) for a in json.loads(sys.argv[1])]
results = aml.evaluate(pipelines, X, y, cv=5, scoring="r2")
print(json.dumps({
    "module": aml.__file__,
    "scores": [list(map(float, r.fold_scores)) for r in results],
    "errors": [r.error for r in results],
    "backends": [r.backends for r in results],
}))
"""

#: The same batch through the rendered local kit's Parsl endpoint, as JSON.
RUN_BATCH = """
import json, sys
from academy_ml.compute.placement import build_placer
from academy_ml.compute.tasks import make_request
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_diabetes(return_X_y=True)
pipelines = [make_pipeline(StandardScaler(), Ridge(alpha=a)) for a in json.loads(sys.argv[2])]
with build_placer(sys.argv[1]) as placer:
    result = placer.submit(make_request(pipelines, X, y, cv=5, scoring="r2")).result(timeout=600)
print(json.dumps({
    "scores": [list(map(float, r.fold_scores)) for r in result.results],
    "errors": [r.error for r in result.results],
    "executed": result.executed,
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(["make", "wheel", f"WHEEL_DIR={out}"], cwd=ROOT, check=True, timeout=3000)
    built = list(out.iterdir())
    assert len(built) == 1, built
    assert WHEEL_NAME.fullmatch(built[0].name), built[0].name
    return built[0]


@pytest.fixture(scope="module")
def no_rust_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment without Rust on PATH, an activated venv or the checkout."""
    home = tmp_path_factory.mktemp("home")
    path = "/usr/local/bin:/usr/bin:/bin"
    for tool in ("cargo", "rustc", "maturin"):
        assert shutil.which(tool, path=path) is None, f"{tool} is on {path}"
    return {
        "PATH": path,
        "HOME": str(home),
        "ACADEMY_ML_CACHE_DIR": str(home / "client-cache"),
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
    }


@pytest.fixture(scope="module")
def venv(
    wheel: Path, no_rust_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel installed, and the environment to run it in."""
    prefix = tmp_path_factory.mktemp("venv") / "env"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(prefix)], check=True, timeout=300)
    env = {**no_rust_env, "PATH": f"{prefix / 'bin'}{os.pathsep}{no_rust_env['PATH']}"}
    subprocess.run(
        [str(prefix / "bin" / "pip"), "install", "--quiet", f"{wheel}[endpoint]"],
        env=env,
        cwd=prefix.parent,
        check=True,
        timeout=1800,
    )
    return prefix, env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _reference() -> list[list[float]]:
    X, y = load_diabetes(return_X_y=True)
    return [
        list(cross_val_score(make_pipeline(StandardScaler(), Ridge(alpha=a)), X, y, scoring="r2"))
        for a in ALPHAS
    ]


def test_the_wheel_holds_the_kits_and_one_extension(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for kit in KITS:
        for file in ("config.yaml", "user_config_schema.json", "user_config_template.yaml.j2"):
            assert f"academy_ml/deploy/kits/{kit}/{file}" in names
    assert [n for n in names if n.endswith(".so")] == ["academy_ml/_runtime.abi3.so"]
    assert {"academy_ml/py.typed", "academy_ml/_runtime.pyi"} <= names


def test_the_cli_runs_from_the_wheel(venv: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    prefix, env = venv
    out = _run([str(prefix / "bin" / "academy-ml"), "--help"], env, tmp_path)
    assert "endpoint" in out


def test_a_kit_renders_from_the_wheels_package_data(
    venv: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    prefix, env = venv
    values = {"venv": str(prefix), "account": "m1234", "partition": "regular"}
    settings = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    command = [str(prefix / "bin" / "academy-ml"), "endpoint", "render", "slurm", *settings]
    _run([*command, "--output", str(tmp_path / "installed")], env, tmp_path)

    written = render_kit("slurm", values, tmp_path / "checkout")
    for path in written:
        assert (tmp_path / "installed" / path.name).read_text() == path.read_text(), path.name
    spec = load_registry(tmp_path / "installed" / "endpoint.toml")["slurm"]
    assert isinstance(spec, ParslSpec)
    assert (spec.provider, spec.account) == ("slurm", "m1234")


def test_evaluate_runs_on_the_wheels_runtime(
    venv: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    prefix, env = venv
    out = json.loads(
        _run([str(prefix / "bin" / "python"), "-c", EVALUATE, json.dumps(ALPHAS)], env, tmp_path)
    )
    assert Path(out["module"]).is_relative_to(prefix)
    assert out["errors"] == [None] * len(ALPHAS)
    assert all(set(backends.values()) == {"rust"} for backends in out["backends"])
    np.testing.assert_allclose(out["scores"], _reference(), rtol=0, atol=1e-6)


def test_a_batch_runs_through_a_parsl_endpoint_in_the_fresh_venv(
    venv: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    prefix, env = venv
    node_cache = tmp_path / "node-cache"
    render_kit("local", {"venv": str(prefix), "cache_dir": str(node_cache)}, tmp_path / "kit")
    out: dict[str, Any] = json.loads(
        _run(
            [
                str(prefix / "bin" / "python"),
                "-c",
                RUN_BATCH,
                str(tmp_path / "kit" / "endpoint.toml"),
                json.dumps(ALPHAS),
            ],
            env,
            tmp_path,  # Parsl's runinfo/ goes here
        )
    )
    assert out["errors"] == [None] * len(ALPHAS)
    assert out["executed"] > 0
    np.testing.assert_allclose(out["scores"], _reference(), rtol=0, atol=1e-6)
    # The worker ran the kit's worker_init: its cache and pushed dataset are on "node" disk.
    assert any((node_cache / "datasets").iterdir())
