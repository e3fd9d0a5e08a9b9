"""A word about a node cache that is new or has grown large, once per ``up`` or ``cache stats``.

The node cache (:mod:`academy_ml.engine.cache`) keeps what runs computed, up
to its disk budget (``Cache(disk_bytes=...)``, 20 GiB by default). The run of
``up`` that creates a cache directory says where it is, its budget and the
command that empties it (the process that created it logs the same line).
Past :data:`NOTICE_BYTES` (1 GiB; the environment variable
``ACADEMY_ML_CACHE_NOTICE_BYTES`` sets another) ``up`` and ``cache stats``
say where it is, how large, and that command. A directory that is missing
or is not a cache is not worth a word here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from academy_ml.compute.placement import load_registry
from academy_ml.deploy.launch.config import Deployment
from academy_ml.engine.cache import (
    cache_advice,
    default_cache_dir,
    first_use_notice,
    human_size,
    summarize,
)
from academy_ml.exceptions import ConfigError

__all__ = [
    "NOTICE_BYTES",
    "NOTICE_VARIABLE",
    "CacheNotice",
    "cache_notice",
    "deployment_caches",
    "human_size",
    "large_cache_notice",
    "notice_bytes",
]

#: Size of a node cache worth a word.
NOTICE_BYTES = 2**30

#: Environment variable that sets another size (bytes).
NOTICE_VARIABLE = "ACADEMY_ML_CACHE_NOTICE_BYTES"


def notice_bytes() -> int:
    """:data:`NOTICE_BYTES`, or what ``$ACADEMY_ML_CACHE_NOTICE_BYTES`` says.

    Raises:
        ConfigError: The variable is not a non-negative integer.
    """
    text = os.environ.get(NOTICE_VARIABLE)
    if text is None or text == "":
        return NOTICE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"${NOTICE_VARIABLE}: expected a number of bytes, got {text!r}")
    return value


def large_cache_notice(path: Path | None, size: int, threshold: int) -> str | None:
    """The notice for a cache of ``size`` bytes at ``path`` (None: the default), or None."""
    if size <= threshold:
        return None
    where = default_cache_dir() if path is None else path
    return (
        f"the node cache {where} holds {human_size(size)} (more than {human_size(threshold)}); "
        + cache_advice(path)
    )


def deployment_caches(deployment: Deployment) -> list[Path | None]:
    """The default cache (None) and the cache directories of the deployment's endpoints.

    Raises:
        RegistryError: The registry is unreadable or invalid.
    """
    specs = load_registry(deployment.registry)
    named = [getattr(spec, "cache_dir", None) for spec in specs.values()]
    return [None, *(Path(path).expanduser() for path in named if path is not None)]


def _where(path: Path | None) -> Path:
    return default_cache_dir() if path is None else path.expanduser()


def _notices(paths: Iterable[Path | None], threshold: int) -> list[str]:
    found = []
    for path in paths:
        if not _where(path).is_dir():
            continue
        try:
            summary = summarize(path)
        except OSError:  # CacheError: not a cache (yet), or refused as not private
            continue
        notice = large_cache_notice(path, summary.bytes, threshold)
        if notice is not None:
            found.append(notice)
    return found


class CacheNotice:
    """What :func:`cache_notice` looks at: large caches now, caches created by the run at the end.

    Args:
        console: Where notices are printed.
        paths: Cache directories (None: the default).
        threshold: Size of a cache worth a word.
    """

    def __init__(self, console: Console, paths: Iterable[Path | None], threshold: int) -> None:
        self.console = console
        self.paths = list(dict.fromkeys(paths))
        # Absent now: a cache the run creates (the directory's absence marks its first use).
        self.absent = [path for path in self.paths if not _where(path).exists()]
        self._thread = threading.Thread(
            target=self._large, args=(threshold,), name="academy-ml-cache-notice", daemon=True
        )
        self._thread.start()

    def _say(self, notice: str) -> None:
        self.console.print(f"[yellow]academy-ml: {escape(notice)}[/yellow]")

    def _large(self, threshold: int) -> None:
        for notice in _notices(self.paths, threshold):
            self._say(notice)

    def join(self) -> None:
        """Wait for the large caches' notices; name the caches created since, once each."""
        self._thread.join()
        for path in self.absent:
            if _where(path).is_dir():
                self._say(first_use_notice(path))
        self.absent = []


def cache_notice(console: Console, paths: Iterable[Path | None] = (None,)) -> CacheNotice:
    """Look at the caches at ``paths`` (None: the default) in the background; say if large.

    Reading a large cache's size takes seconds, which ``up`` does not wait
    for: the notice is printed when it is known (``console`` shows it above a
    progress bar). :meth:`CacheNotice.join`, after the run, waits for it and
    names each cache directory the run created.

    Raises:
        ConfigError: ``$ACADEMY_ML_CACHE_NOTICE_BYTES`` is not a number of bytes.
    """
    return CacheNotice(console, paths, notice_bytes())
