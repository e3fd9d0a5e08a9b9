"""A word about a node cache that has grown large, once per ``up`` or ``cache stats``.

The node cache (:mod:`academy_ml.engine.cache`) keeps what runs computed, up
to its disk budget (``Cache(disk_bytes=...)``, 20 GiB by default), and grows
silently until then. Past :data:`NOTICE_BYTES` (1 GiB; the environment
variable ``ACADEMY_ML_CACHE_NOTICE_BYTES`` sets another) ``up`` and ``cache
stats`` say where it is, how large, and the command that empties it. A
directory that is missing or is not a cache is not worth a word here.
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
from academy_ml.engine.cache import DEFAULT_DISK_BYTES, default_cache_dir, summarize
from academy_ml.exceptions import ConfigError

__all__ = [
    "NOTICE_BYTES",
    "NOTICE_VARIABLE",
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
    clear = "academy-ml cache clear" + ("" if path is None else f" --dir {path}")
    return (
        f"the node cache {where} holds {human_size(size)} (more than {human_size(threshold)}); "
        f"`{clear}` empties it. It keeps at most Cache(disk_bytes=...), "
        f"{human_size(DEFAULT_DISK_BYTES)} by default, least recently used out first"
    )


def deployment_caches(deployment: Deployment) -> list[Path | None]:
    """The default cache (None) and the cache directories of the deployment's endpoints.

    Raises:
        RegistryError: The registry is unreadable or invalid.
    """
    specs = load_registry(deployment.registry)
    named = [getattr(spec, "cache_dir", None) for spec in specs.values()]
    return [None, *(Path(path).expanduser() for path in named if path is not None)]


def _notices(paths: Iterable[Path | None], threshold: int) -> list[str]:
    found = []
    for path in dict.fromkeys(paths):
        if path is not None and not path.expanduser().is_dir():
            continue
        try:
            summary = summarize(path)
        except OSError:  # CacheError: not a cache (yet), or refused as not private
            continue
        notice = large_cache_notice(path, summary.bytes, threshold)
        if notice is not None:
            found.append(notice)
    return found


def cache_notice(console: Console, paths: Iterable[Path | None] = (None,)) -> threading.Thread:
    """Look at the caches at ``paths`` (None: the default) in the background; say if large.

    Reading a large cache's size takes seconds, which ``up`` does not wait
    for: the notice is printed when it is known (``console`` shows it above a
    progress bar). Join the thread returned to be sure it was said.

    Raises:
        ConfigError: ``$ACADEMY_ML_CACHE_NOTICE_BYTES`` is not a number of bytes.
    """
    threshold = notice_bytes()
    listed = list(paths)

    def look() -> None:
        for notice in _notices(listed, threshold):
            console.print(f"[yellow]academy-ml: {escape(notice)}[/yellow]")

    thread = threading.Thread(target=look, name="academy-ml-cache-notice", daemon=True)
    thread.start()
    return thread
