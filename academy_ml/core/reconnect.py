"""Retrying exchange commands across Redis outages, and clear connection errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from academy_ml.core.resp import AuthError, ConnectionLost, TransientReplyError
from academy_ml.exceptions import ExchangeConnectionError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_BACKOFF_CAP_S = 1.0


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connection_error(url: str, exc: BaseException) -> ExchangeConnectionError:
    """A clear :class:`ExchangeConnectionError` for a failure to reach ``url``."""
    where = redacted(url)
    if isinstance(exc, AuthError) and str(exc).startswith("NOAUTH"):
        return ExchangeConnectionError(
            f"Redis at {where} requires a password: authentication failed. "
            "Put it in the exchange URL (redis://:password@host:port)."
        )
    if isinstance(exc, AuthError):
        return ExchangeConnectionError(
            f"Redis at {where} refused the credentials: authentication failed ({exc}). "
            "Check the username and password in the exchange URL."
        )
    return ExchangeConnectionError(f"cannot reach Redis at {where}: {exc}")


async def with_reconnect(
    call: Callable[[], Awaitable[T]],
    *,
    url: str,
    deadline_s: float,
    what: str,
    retry_lost: bool = True,
) -> T:
    """Run ``call``, retrying transient failures until Redis answers again.

    A lost connection and a transient error reply (``LOADING`` while Redis
    replays its append-only file, ``BUSY``, ``TRYAGAIN``, ``MASTERDOWN``) are
    retried with exponential backoff (50 ms doubling to 1 s).

    Args:
        call: Issues the command(s); called again after each failure.
        url: For messages.
        deadline_s: Give up this many seconds after the first failure.
        what: What the call does, for the log.
        retry_lost: Retry a lost connection too (otherwise only transient
            replies: a first contact fails fast when Redis is not there).

    Raises:
        ExchangeConnectionError: Redis stayed unreachable (or transient) past
            the deadline, or refused the credentials.
    """
    # The clock starts at the first failure: a read may block for long.
    first_failure: float | None = None
    delay = 0.05
    while True:
        try:
            return await call()
        except AuthError as exc:
            raise connection_error(url, exc) from exc
        except (ConnectionLost, TransientReplyError) as exc:
            if not (retry_lost or isinstance(exc, TransientReplyError)):
                raise connection_error(url, exc) from exc
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            if now - first_failure >= deadline_s:
                raise connection_error(url, exc) from exc
            logger.warning(
                "Redis at %s unavailable while %s (%s); retrying in %.2f s",
                redacted(url),
                what,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_CAP_S)
