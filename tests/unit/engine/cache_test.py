"""``aml.Cache``: configuration, counters, tiers, damage, clearing."""

from __future__ import annotations

import logging
import os
import pickle
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import academy_ml as aml
from academy_ml.engine.cache import ENV_VAR, clear, default_cache_dir, summarize


def test_directory_comes_from_the_environment_or_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "node-local"))
    assert default_cache_dir() == tmp_path / "node-local"
    assert aml.Cache().path == tmp_path / "node-local"
    monkeypatch.delenv(ENV_VAR)
    assert default_cache_dir().name == "academy_ml"


def test_the_first_use_of_the_default_cache_says_where_and_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    default = tmp_path / "default"
    monkeypatch.setenv(ENV_VAR, str(default))
    with caplog.at_level(logging.INFO, logger="academy_ml.engine.cache"):
        aml.Cache(memory_bytes=0, disk_bytes=0)  # no disk tier: nothing created, nothing said
        aml.Cache(tmp_path / "elsewhere")  # not the default
        aml.Cache(disk_bytes=2**30)
        aml.Cache()  # the directory exists: said once only
        aml.Cache(str(default))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.INFO,
            f"created the node cache {default}; `academy-ml cache clear` empties it. "
            "It keeps at most 1.0 GiB (Cache(disk_bytes=...)), least recently used out first",
        )
    ]
    assert default.is_dir()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_bytes": -1}, "memory_bytes must be a non-negative integer"),
        ({"disk_bytes": 1.5}, "disk_bytes must be a non-negative integer"),
        ({"disk_bytes": True}, "disk_bytes must be a non-negative integer"),
    ],
)
def test_bad_budgets_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aml.Cache(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_an_unusable_directory_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    refused = f"{re.escape(str(blocker))} refused: it is not a directory"
    with pytest.raises(aml.CacheError, match=refused):
        aml.Cache(blocker)


def test_blobs_round_trip_across_caches_and_count(tmp_path: Path) -> None:
    first = aml.Cache(tmp_path)
    assert first.get_blob("k") is None
    first.put_blob("k", b"\x00payload")

    assert first.get_blob("k") == b"\x00payload"
    second = aml.Cache(tmp_path)
    assert second.get_blob("k") == b"\x00payload"
    assert first.stats() == aml.CacheStats(
        hits=1, memory_hits=1, misses=1, bytes_written=104, stores=1
    )
    assert second.stats().bytes_read == 104


def test_summary_adds_every_process_and_clear_empties(tmp_path: Path) -> None:
    for name in ("a", "b"):
        cache = aml.Cache(tmp_path)
        cache.get_blob(name)
        cache.put_blob(name, b"x")
        cache.native.flush()

    summary = summarize(tmp_path)
    assert (summary.entries, summary.totals.misses, summary.totals.stores) == (2, 2, 2)
    assert summary.runtime.startswith(aml.__version__)
    assert aml.Cache(tmp_path).clear() == 2
    assert summarize(tmp_path).entries == 0
    with pytest.raises(aml.CacheError, match="no such directory"):
        summarize(tmp_path / "never-created")
    assert not (tmp_path / "never-created").exists()


def test_a_cache_pickles_as_its_configuration(tmp_path: Path) -> None:
    cache = aml.Cache(tmp_path, memory_bytes=1024, disk_bytes=4096)
    cache.put_blob("k", b"v")

    copy = pickle.loads(pickle.dumps(cache))

    assert repr(copy) == repr(cache)
    assert copy.get_blob("k") == b"v"
    assert copy.stats().memory_hits == 0, "a new process has its own memory tier"


def test_memory_only_cache_writes_nothing(tmp_path: Path) -> None:
    cache = aml.Cache(tmp_path / "unused", disk_bytes=0)
    cache.put_blob("k", b"v")

    assert cache.get_blob("k") == b"v"
    assert not (tmp_path / "unused").exists()
    assert cache.memory_used > 0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_directory_is_private_with_a_private_secret(tmp_path: Path) -> None:
    where = tmp_path / "node" / "cache"
    aml.Cache(where).put_blob("k", b"v")

    assert _mode(where) == 0o700
    assert _mode(where / "entries") == 0o700
    secret = where / "secret"
    assert _mode(secret) == 0o600
    assert secret.stat().st_size == 32
    assert len({p.name for p in where.glob("entries/*/*")}) == 1


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    where = tmp_path / "shared"
    where.mkdir()
    where.chmod(mode)

    refused = f"{re.escape(str(where))} refused: it is writable by group or others"
    with pytest.raises(aml.CacheError, match=refused):
        aml.Cache(where)
    assert list(where.iterdir()) == []


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    aml.Cache(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")

    with pytest.raises(aml.CacheError, match="refused: it is a symbolic link"):
        aml.Cache(tmp_path / "link")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    where = tmp_path / "theirs"
    where.mkdir(mode=0o700)
    os.chown(where, 65534, 65534)

    with pytest.raises(aml.CacheError, match="owned by uid 65534, not by this user"):
        aml.Cache(where)
    with pytest.raises(aml.CacheError, match="owned by uid 65534"):
        clear(where)


def test_summarize_and_clear_refuse_other_directories_and_create_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")

    for verb in (summarize, clear):
        with pytest.raises(
            aml.CacheError, match=f"{tmp_path} refused: it is not a cache directory"
        ):
            verb(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    aml.Cache(tmp_path).put_blob("k", b"v")
    assert clear(tmp_path) == 1
    assert summarize(tmp_path).entries == 0


def test_a_planted_entry_is_a_miss(tmp_path: Path) -> None:
    cache = aml.Cache(tmp_path, memory_bytes=0)
    cache.put_blob("k", b"the real result")
    (entry,) = tmp_path.glob("entries/*/*")
    genuine = entry.read_bytes()
    # Same header, another payload: whoever lacks the secret cannot reseal it.
    entry.write_bytes(genuine[:96] + b"forged result!!")

    assert cache.get_blob("k") is None
    assert cache.stats().corrupt == 1
    assert not entry.exists()
    # A link planted at the entry's path is removed, its target untouched.
    victim = tmp_path.parent / f"{tmp_path.name}-victim"
    victim.write_bytes(genuine)
    entry.symlink_to(victim)
    assert cache.get_blob("k") is None
    assert victim.read_bytes() == genuine
    assert not entry.is_symlink()


def _ridge_plan() -> aml.Plan:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    pipelines = [make_pipeline(StandardScaler(), Ridge(alpha=a)) for a in (0.1, 1.0, 10.0)]
    return aml.compile(pipelines, cv=3, X=X, y=y)


def test_a_runs_entries_written_behind_reach_other_processes_after_flush(tmp_path: Path) -> None:
    plan = _ridge_plan()
    first = aml.Cache(tmp_path, memory_bytes=0)
    cold = aml.run(plan, cache=first)
    # Read back in this process at once (memory tier off: pending or disk).
    assert aml.run(plan, cache=first).executed == 0
    first.flush()
    assert summarize(tmp_path).entries == cold.cache_stores
    warm = aml.run(plan, cache=aml.Cache(tmp_path, memory_bytes=0))
    assert (warm.executed, warm.cache.corrupt) == (0, 0)
    assert list((tmp_path / "tmp").iterdir()) == []


CHILD = """
import sys
import academy_ml as aml
sys.path.insert(0, {tests!r})
from cache_test import _ridge_plan
cache = aml.Cache({path!r})
print(aml.run(_ridge_plan(), cache=cache).cache_stores)
"""


def test_entries_still_being_written_reach_the_disk_when_the_process_exits(
    tmp_path: Path,
) -> None:
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(tmp_path))
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert child.returncode == 0, child.stderr
    assert summarize(tmp_path).entries == int(child.stdout) > 0
    warm = aml.run(_ridge_plan(), cache=aml.Cache(tmp_path))
    assert warm.executed == 0
