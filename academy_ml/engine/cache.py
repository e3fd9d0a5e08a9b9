"""``aml.Cache``: the node-local cache of pipeline intermediates.

Every plan node carries a content key (operation, parameters, input keys,
dataset fingerprint, fold rows; the runtime adds its own version and source
hash), so what one batch computed is reused by the next batch, by another
agent, and by another process on the same node::

    cache = aml.Cache()                      # ~/.cache/academy_ml, or $ACADEMY_ML_CACHE_DIR
    aml.evaluate(batch_1, X, y, cache=cache)
    aml.evaluate(batch_2, X, y, cache=cache)  # shared prefixes are read, not recomputed

Two tiers: memory (values shared by reference, least recently used out past
``memory_bytes``) and a directory shared by every process of the user on the
node (entries written atomically, least recently used out past
``disk_bytes``). A damaged entry is detected, counted, removed and
recomputed. A value is kept when it is small or when recomputing it would
take longer than reading it back.

A run's entries are written to disk behind it, by a background thread of the
cache: this process reads them at once, other processes once they are written
(at the latest after :meth:`Cache.flush`, when the cache is collected, or when
the interpreter exits). A process killed before that only loses cache entries.

The directory is private: created with mode 0700, and refused (``CacheError``
naming the path and the reason) when it is a symbolic link, owned by another
user or writable by group or others. Entries carry a blake3 checksum keyed
with a secret only its owner can read (``secret``, mode 0600), so an entry
planted by anyone else is a miss; temporary files get unpredictable names and
are never opened through a planted link, and anything at an entry's path that
is not a regular file (a link, a FIFO) is removed unread.

The process that creates the default directory says so, once, at INFO on this
module's logger: where it is, its disk budget and the command that empties it
(:func:`first_use_notice`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import platformdirs

from academy_ml import _runtime
from academy_ml.exceptions import CacheError

__all__ = [
    "DEFAULT_DISK_BYTES",
    "DEFAULT_MEMORY_BYTES",
    "ENV_VAR",
    "Cache",
    "CacheStats",
    "CacheSummary",
    "cache_advice",
    "clear",
    "default_cache_dir",
    "first_use_notice",
    "human_size",
    "summarize",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the cache directory (endpoints point it at
#: node-local disk).
ENV_VAR = "ACADEMY_ML_CACHE_DIR"
#: Default budget of the memory tier.
DEFAULT_MEMORY_BYTES = 512 * 2**20
#: Default budget of the disk tier.
DEFAULT_DISK_BYTES = 20 * 2**30


def default_cache_dir() -> Path:
    """``$ACADEMY_ML_CACHE_DIR``, else the platform's user cache directory."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("academy_ml", appauthor=False))


def human_size(n: int) -> str:
    """``n`` bytes for people (B, KiB, MiB, GiB)."""
    if n < 1024:
        return f"{n:,} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def cache_advice(path: Path | None, disk_bytes: int | None = None) -> str:
    """How to empty the cache at ``path`` (None: the default) and what it keeps at most.

    ``disk_bytes`` is its budget (None: the default budget, said as such).
    """
    clear = "academy-ml cache clear" + ("" if path is None else f" --dir {path}")
    budget = (
        f"{human_size(DEFAULT_DISK_BYTES)} by default"
        if disk_bytes is None
        else human_size(disk_bytes)
    )
    return (
        f"`{clear}` empties it. It keeps at most {budget} (Cache(disk_bytes=...)), "
        "least recently used out first"
    )


def first_use_notice(path: Path | None, disk_bytes: int | None = None) -> str:
    """What is said when the cache at ``path`` (None: the default) was created."""
    where = default_cache_dir() if path is None else path
    return f"created the node cache {where}; {cache_advice(path, disk_bytes)}"


@dataclass(frozen=True)
class CacheStats:
    """Cache counters.

    Attributes:
        hits: Lookups answered (either tier).
        memory_hits: Of the hits, answered from memory.
        misses: Lookups not answered.
        bytes_read: Bytes read from disk.
        bytes_written: Bytes written to disk.
        stores: Entries stored.
        evictions: Entries evicted from either tier.
        corrupt: Damaged entries found (removed and recomputed).
        io_errors: Disk reads or writes that failed (the run went on).
        disk_skipped: Entries kept in memory only: the disk writer was behind
            and they were cheaper to recompute than to write.
    """

    hits: int = 0
    memory_hits: int = 0
    misses: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    stores: int = 0
    evictions: int = 0
    corrupt: int = 0
    io_errors: int = 0
    disk_skipped: int = 0

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> CacheStats:
        """Builds stats from the runtime's counters."""
        return cls(*[int(counts.get(name, 0)) for name in _STATS_FIELDS])

    def __sub__(self, earlier: CacheStats) -> CacheStats:
        """Counts between two snapshots."""
        return CacheStats(*[getattr(self, name) - getattr(earlier, name) for name in _STATS_FIELDS])

    @property
    def hit_rate(self) -> float:
        """Hits / (hits + misses), 0 when nothing was looked up."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


# Every run reads the counters twice: their names are looked up once.
_STATS_FIELDS = tuple(f.name for f in fields(CacheStats))


@dataclass(frozen=True)
class CacheSummary:
    """What a cache directory holds.

    Attributes:
        path: The directory.
        entries: Entries on disk.
        bytes: Bytes on disk.
        totals: Counters of every process that used it since it was cleared.
        runtime: Identity of this runtime (entries of other builds are never read).
    """

    path: Path
    entries: int
    bytes: int
    totals: CacheStats
    runtime: str


def _budget(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (bytes), got {value!r}")
    return value


class Cache:
    """A node-local cache of intermediates, passed as ``evaluate(..., cache=cache)``.

    Args:
        path: Directory of the disk tier; default :func:`default_cache_dir`.
        memory_bytes: Budget of the in-process tier (0 turns it off).
        disk_bytes: Budget of the directory (0 turns the disk tier off).

    Raises:
        ValueError: If a budget is not a non-negative integer.
        CacheError: If the directory cannot be created, or is not private (a
            symbolic link, owned by another user, writable by group or others).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        disk_bytes: int = DEFAULT_DISK_BYTES,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_dir()
        self.memory_bytes = _budget("memory_bytes", memory_bytes)
        self.disk_bytes = _budget("disk_bytes", disk_bytes)
        # The default directory's absence marks its first use, worth a line.
        first_use = (
            self.disk_bytes > 0 and self.path == default_cache_dir() and not self.path.exists()
        )
        self.native = _runtime.NodeCache(str(self.path), self.memory_bytes, self.disk_bytes)
        if first_use:
            logger.info("%s", first_use_notice(None, self.disk_bytes))
        # Entries still being written reach the disk before the interpreter
        # exits, even when this cache is still referenced then.
        weakref.finalize(self, _flush_quietly, self.native)

    def __repr__(self) -> str:
        return (
            f"Cache({str(self.path)!r}, memory_bytes={self.memory_bytes}, "
            f"disk_bytes={self.disk_bytes})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # A cache travels as its configuration; the receiving process opens
        # the same directory (on its own node) with its own memory tier.
        return (_open, (str(self.path), self.memory_bytes, self.disk_bytes))

    def stats(self) -> CacheStats:
        """Counters of this cache in this process."""
        return CacheStats.from_counts(self.native.stats())

    @property
    def memory_used(self) -> int:
        """Bytes held by the memory tier."""
        return self.native.memory_used()

    def flush(self) -> None:
        """Waits until every entry stored so far is on disk; adds the counters to the totals.

        Raises:
            CacheError: If the directory's totals cannot be updated.
        """
        self.native.flush()

    def summary(self) -> CacheSummary:
        """What the directory holds, with every process's counters."""
        self.flush()
        return summarize(self.path)

    def clear(self) -> int:
        """Empties both tiers and the directory's counters; returns entries removed."""
        return self.native.clear()

    def get_blob(self, key: str) -> bytes | None:
        """Bytes stored under ``key`` by :meth:`put_blob`, or None."""
        return self.native.get_blob(key)

    def put_blob(self, key: str, data: bytes) -> None:
        """Stores a small Python-side result (a fold score) under ``key``."""
        self.native.put_blob(key, data)


def _flush_quietly(native: Any) -> None:
    # At exit, counters that cannot be written are not worth a traceback.
    with contextlib.suppress(CacheError):
        native.flush()


def _open(path: str, memory_bytes: int, disk_bytes: int) -> Cache:
    return Cache(path, memory_bytes=memory_bytes, disk_bytes=disk_bytes)


def _where(path: str | os.PathLike[str] | None) -> Path:
    return Path(path).expanduser() if path is not None else default_cache_dir()


def summarize(path: str | os.PathLike[str] | None = None) -> CacheSummary:
    """What a cache directory holds (default: :func:`default_cache_dir`).

    Nothing is created.

    Raises:
        CacheError: If the path is missing, not a directory, not a cache
            directory, or not private.
    """
    where = _where(path)
    entries, size, totals = _runtime.cache_summary(str(where))
    return CacheSummary(where, entries, size, CacheStats.from_counts(totals), _runtime.RUNTIME_ID)


def clear(path: str | os.PathLike[str] | None = None) -> int:
    """Empties a cache directory and its counters; returns entries removed.

    Unlike :meth:`Cache.clear`, opens no cache: nothing is created.

    Raises:
        CacheError: If the path is missing, not a directory, not a cache
            directory, or not private.
    """
    return _runtime.NodeCache.clear_dir(str(_where(path)))
