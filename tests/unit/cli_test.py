"""``academy-ml cache stats`` and ``academy-ml cache clear``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import academy_ml as aml
from academy_ml.cli import main


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
    assert aml.cache.summarize(tmp_path).entries == 0
    main(["cache", "clear", "--dir", str(tmp_path / "absent")])
    assert "nothing to clear" in capsys.readouterr().out


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
