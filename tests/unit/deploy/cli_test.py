"""``academy-ml cache stats`` and ``academy-ml cache clear``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import academy_ml as aml
from academy_ml.deploy.cli import main
from academy_ml.engine.cache import summarize


def test_cache_stats_reports_every_processes_counters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = aml.Cache(tmp_path)
    cache.get_blob("missing")
    cache.put_blob("k", b"v" * 2000)
    cache.get_blob("k")
    cache.native.flush()

    main(["cache", "stats", "--dir", str(tmp_path)])

    out = capsys.readouterr().out
    assert "entries" in out
    assert " 1 " in out
    assert "hit rate" in out
    assert "50.0%" in out
    assert "2.0 KiB" in out


def test_cache_clear_empties_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aml.Cache(tmp_path).put_blob("k", b"v")

    main(["cache", "clear", "--dir", str(tmp_path)])

    assert "removed 1 entries" in capsys.readouterr().out
    assert summarize(tmp_path).entries == 0


@pytest.mark.parametrize("verb", ["stats", "clear"])
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("absent", "no such directory"),
        ("file", "it is not a directory"),
        ("other", "it is not a cache directory"),
        ("link", "it is a symbolic link"),
        ("open", "it is writable by group or others (mode 0777)"),
    ],
)
def test_cache_verbs_refuse_what_is_not_a_cache_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str, name: str, reason: str
) -> None:
    aml.Cache(tmp_path / "real")
    (tmp_path / "file").write_text("data")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    (tmp_path / "open" / "entries").mkdir()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    target = tmp_path / name

    with pytest.raises(SystemExit) as exit_info:
        main(["cache", verb, "--dir", str(target)])

    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("academy-ml: error: ")
    assert f"cache directory {target} refused: {reason}" in err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before, "nothing created"
    assert (tmp_path / "file").read_text() == "data"


def test_the_environment_names_the_default_directory(tmp_path: Path) -> None:
    aml.Cache(tmp_path).put_blob("k", b"v")
    env = {"ACADEMY_ML_CACHE_DIR": str(tmp_path), "PATH": ""}

    done = subprocess.run(
        [sys.executable, "-m", "academy_ml", "cache", "stats"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert str(tmp_path) in done.stdout
    assert "entries" in done.stdout


def test_unknown_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cache", "stats", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_endpoint_render_writes_a_ready_kit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = ["venv=/opt/aml", "account=m1", "cache_dir=/local/scratch/$USER/aml"]
    main(
        ["endpoint", "render", "slurm", "--output", str(tmp_path), *(f"--set={v}" for v in values)]
    )

    out = capsys.readouterr().out
    assert f"globus-compute-endpoint configure --core-config {tmp_path / 'config.yaml'}" in out
    assert {path.name for path in tmp_path.iterdir()} == {
        "config.yaml",
        "user_config_template.yaml.j2",
        "user_config_schema.json",
        "endpoint.toml",
        "worker_init.sh",
    }
    template = (tmp_path / "user_config_template.yaml.j2").read_text()
    assert '"account": "m1"' in template
    worker_init = (tmp_path / "worker_init.sh").read_text()
    assert 'export ACADEMY_ML_CACHE_DIR="/local/scratch/$USER/aml"' in worker_init


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["slurm", "--set", "venv=/a", "--set", "walltime=abc"], "variable 'walltime': expected"),
        (["slurm", "--set", "venv=/a", "--set", "max_blocks=-1"], "variable 'max_blocks'"),
        (["slurm", "--set", "venv=/a", "--set", "colour=red"], "unknown variable 'colour'"),
        (["slurm", "--set", "venv"], "--set 'venv': expected KEY=VALUE"),
        (["slurm", "--set", "venv=/a", "--set", "venv=/b"], "variable 'venv' given twice"),
    ],
)
def test_endpoint_render_errors_exit_2_without_a_traceback(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["endpoint", "render", *args, "--output", str(tmp_path / "out")])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("academy-ml: error: ")
    assert message in err
    assert not (tmp_path / "out").exists()


def test_endpoint_render_error_in_a_real_process(tmp_path: Path) -> None:
    command = ["endpoint", "render", "pbs", "--set", "venv=/a", "--output", str(tmp_path / "x")]
    done = subprocess.run(
        [sys.executable, "-m", "academy_ml", *command],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 2
    assert done.stderr == (
        "academy-ml: error: kit 'pbs': variable 'account' is required;"
        " variable 'queue' is required\n"
    )


def test_endpoint_render_refuses_an_unknown_kit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["endpoint", "render", "cloud", "--output", "x"])
    assert exited.value.code == 2
    assert "invalid choice: 'cloud'" in capsys.readouterr().err


def test_endpoint_kits_lists_every_kit_and_its_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["endpoint", "kits"])

    out = capsys.readouterr().out
    for kit in ("local:", "slurm:", "pbs:"):
        assert kit in out
    for name in ("venv", "cache_dir", "walltime", "partition", "queue", "mpiexec_overrides"):
        assert name in out
    assert "academy-ml[endpoint]" in out
    assert "required" in out
