"""``aml.Cache``: configuration, counters, tiers, damage, clearing."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import academy_ml as aml
from academy_ml.cache import ENV_VAR, default_cache_dir, summarize


def test_directory_comes_from_the_environment_or_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "node-local"))
    assert default_cache_dir() == tmp_path / "node-local"
    assert aml.Cache().path == tmp_path / "node-local"
    monkeypatch.delenv(ENV_VAR)
    assert default_cache_dir().name == "academy_ml"


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

    with pytest.raises(aml.CacheError, match="cannot use cache directory"):
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
    assert summarize(tmp_path / "never-created").entries == 0


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
