"""A node cache that is new or past the notice size is named once, with how to empty it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from academy_ml.deploy.cli import main
from academy_ml.deploy.launch.config import load_deployment
from academy_ml.deploy.launch.notices import (
    NOTICE_BYTES,
    NOTICE_VARIABLE,
    cache_notice,
    deployment_caches,
    large_cache_notice,
    notice_bytes,
)
from academy_ml.engine.cache import ENV_VAR, Cache
from academy_ml.exceptions import ConfigError


def _cache(path: Path, entries: int = 4) -> int:
    """A real cache directory holding ``entries`` blobs of 4 KiB; its size."""
    cache = Cache(path)
    for i in range(entries):
        cache.put_blob(f"k{i}", bytes(4096))
    return cache.summary().bytes


def test_a_cache_past_the_size_is_named_with_the_command(tmp_path: Path) -> None:
    assert large_cache_notice(tmp_path, 2048, 2048) is None
    notice = large_cache_notice(tmp_path, 3 * 2**30, 2**30)
    assert notice == (
        f"the node cache {tmp_path} holds 3.0 GiB (more than 1.0 GiB); "
        f"`academy-ml cache clear --dir {tmp_path}` empties it. It keeps at most "
        "20.0 GiB by default (Cache(disk_bytes=...)), least recently used out first"
    )


def test_the_default_cache_needs_no_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "default"))
    notice = large_cache_notice(None, 5000, 10)
    assert notice is not None
    assert f"the node cache {tmp_path / 'default'} holds 4.9 KiB" in notice
    assert "`academy-ml cache clear` empties it" in notice


def test_the_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NOTICE_VARIABLE, raising=False)
    assert notice_bytes() == NOTICE_BYTES == 2**30
    monkeypatch.setenv(NOTICE_VARIABLE, "4096")
    assert notice_bytes() == 4096
    for bad in ("-1", "lots", "1.5"):
        monkeypatch.setenv(NOTICE_VARIABLE, bad)
        with pytest.raises(ConfigError, match=f"\\${NOTICE_VARIABLE}: expected a number of bytes"):
            notice_bytes()


def test_cache_stats_says_so_past_the_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache"
    size = _cache(path)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv(NOTICE_VARIABLE, str(size - 1))
    main(["cache", "stats", "--dir", str(path)])
    out = " ".join(capsys.readouterr().out.split())
    assert f"`academy-ml cache clear --dir {path}` empties it" in out
    monkeypatch.setenv(NOTICE_VARIABLE, str(size))
    main(["cache", "stats", "--dir", str(path)])
    assert "empties it" not in capsys.readouterr().out


def test_cache_stats_with_a_bad_size_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache"
    _cache(path, entries=1)
    monkeypatch.setenv(NOTICE_VARIABLE, "lots")
    with pytest.raises(SystemExit) as exited:
        main(["cache", "stats", "--dir", str(path)])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"academy-ml: error: ${NOTICE_VARIABLE}: expected a number of bytes, got 'lots'"
    ]


def test_up_looks_at_its_caches_in_the_background_once_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    large, missing, other = tmp_path / "large", tmp_path / "missing", tmp_path / "other"
    _cache(large)
    other.mkdir()
    (other / "notes.txt").write_text("not a cache")
    monkeypatch.setenv(NOTICE_VARIABLE, "1")
    out = io.StringIO()
    cache_notice(Console(file=out, width=400), [large, missing, other, large]).join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"academy-ml: the node cache {large} holds ")


def test_up_names_the_caches_its_run_created_once_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default, endpoint, kept, unused = (tmp_path / n for n in ("default", "ep", "kept", "unused"))
    monkeypatch.setenv(ENV_VAR, str(default))
    _cache(kept)
    out = io.StringIO()
    notice = cache_notice(Console(file=out, width=400), [None, endpoint, kept, unused])
    Cache()  # what the run does: the default cache and an endpoint's are created
    Cache(endpoint)
    notice.join()
    notice.join()
    assert out.getvalue().splitlines() == [
        f"academy-ml: created the node cache {default}; `academy-ml cache clear` empties it. "
        "It keeps at most 20.0 GiB by default (Cache(disk_bytes=...)), least recently used "
        "out first",
        f"academy-ml: created the node cache {endpoint}; `academy-ml cache clear --dir "
        f"{endpoint}` empties it. It keeps at most 20.0 GiB by default (Cache(disk_bytes=...)), "
        "least recently used out first",
    ]
    # The next run finds them: not a word.
    again = io.StringIO()
    cache_notice(Console(file=again, width=400), [None, endpoint, kept]).join()
    assert again.getvalue() == ""


def test_a_deployments_caches_are_the_default_and_its_endpoints(tmp_path: Path) -> None:
    (tmp_path / "planner.toml").write_text(
        '[agent]\nclass = "academy_ml.agents.PlannerAgent"\nname = "planner"\n'
    )
    config = tmp_path / "deployment.toml"
    config.write_text(
        '[deployment]\nagents = ["planner.toml"]\n'
        '[endpoints.pool]\nkind = "local"\nprocesses = true\ncache_dir = "/scratch/aml"\n'
        '[endpoints.threads]\nkind = "local"\n'
    )
    assert deployment_caches(load_deployment(config)) == [None, Path("/scratch/aml")]
