"""Exceptions raised by academy_ml.

The Rust runtime raises these same classes (it imports them from here), so
callers catch one hierarchy whichever side detected the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AcademyMLError",
    "ActionError",
    "CacheError",
    "ConfigError",
    "DataError",
    "DatasetError",
    "EnvelopeError",
    "ExchangeConnectionError",
    "ExchangeError",
    "ExchangeLoopError",
    "GeneratorExhausted",
    "InternalError",
    "KitError",
    "KnowledgeError",
    "KnowledgeStoreError",
    "MessageTooLargeError",
    "NumericalError",
    "ParameterError",
    "PayloadTooDeepError",
    "PayloadTooLargeError",
    "PlanError",
    "RegistryError",
    "RunInterrupted",
    "StrategyError",
    "UnsupportedPayloadError",
    "UnsupportedStepError",
    "WireError",
]


class AcademyMLError(Exception):
    """Base class of every academy_ml error."""


class PlanError(AcademyMLError, ValueError):
    """A plan is malformed, truncated, of another version or ill-typed."""


class ParameterError(AcademyMLError, ValueError):
    """A step was given a parameter value it cannot work with."""


class DataError(AcademyMLError, ValueError):
    """The data does not fit a step (NaN reaching a model, too few rows...)."""


class DatasetError(DataError):
    """Dataset bytes are not a valid academy_ml dataset: corrupt, truncated or too large."""


class NumericalError(AcademyMLError, ArithmeticError):
    """A numerical routine failed (singular system, no convergence...)."""


class CacheError(AcademyMLError, OSError):
    """The cache directory cannot be used (permissions, not a directory...)."""


class InternalError(AcademyMLError, RuntimeError):
    """The runtime broke one of its own invariants (a bug, e.g. a Rust panic).

    Only the work it touched fails: a panic in one node fails the pipelines
    that need that node, a panic elsewhere fails that call; the process and
    the runtime stay usable.
    """


class RunInterrupted(AcademyMLError, RuntimeError):
    """A runtime call was stopped by ``_runtime.interrupt_runs()`` (the process is stopping).

    Raised in the thread that made the call, whichever thread that was; calls
    started after the interrupt run normally. An ``Exception``, not a
    ``KeyboardInterrupt``, so that it ends one batch, not an agent's event loop.
    """


class UnsupportedStepError(AcademyMLError, TypeError):
    """An object given as a pipeline is not a scikit-learn estimator."""


class ExchangeError(AcademyMLError):
    """The Redis exchange could not carry a message."""


class ExchangeConnectionError(ExchangeError, ConnectionError):
    """Redis is unreachable, refused the credentials or stayed down too long."""


class ExchangeLoopError(ExchangeError, RuntimeError):
    """An exchange client is used from an event loop other than the running one that owns it."""


class MessageTooLargeError(ExchangeError, ValueError):
    """An encoded message exceeds the exchange's ``max_message_bytes``."""


class WireError(ExchangeError, ValueError):
    """A message read off the wire is garbled, of another version or hostile."""


class PayloadTooDeepError(WireError):
    """Untrusted msgpack nests containers and extensions deeper than its decoder allows."""


class PayloadTooLargeError(WireError):
    """Untrusted bytes exceed the size their decoder accepts."""


class EnvelopeError(WireError):
    """Enveloped bytes hold another kind of record, or a version the reader does not know.

    Attributes:
        kind: The kind the reader expected.
        versions: The versions of ``kind`` the reader knows.
        found_kind: The kind the bytes claim (None when it is not a string).
        found_version: The version the bytes claim (None when it is not an int).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        versions: Sequence[int] = (),
        found_kind: str | None = None,
        found_version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.versions = tuple(versions)
        self.found_kind = found_kind
        self.found_version = found_version


class UnsupportedPayloadError(ExchangeError, TypeError):
    """A value cannot travel through the exchange without pickle."""


class KitError(AcademyMLError, ValueError):
    """An endpoint kit is unknown or missing, or a value given to it is not acceptable."""


class RegistryError(AcademyMLError, ValueError):
    """An endpoint registry file is unreadable, or a value in it is missing or invalid."""


class KnowledgeError(AcademyMLError, ValueError):
    """A request conflicts with what the knowledge base holds.

    For example a model version registered twice, or a stage set on a model
    version that was never registered.
    """


class KnowledgeStoreError(KnowledgeError):
    """The knowledge base's file cannot be used: corrupt, truncated, foreign, newer or unwritable.

    The message names the file and what SQLite reported.
    """


class StrategyError(AcademyMLError, ValueError):
    """A trigger, constraint or strategy is given a value it cannot work with."""


class ConfigError(AcademyMLError, ValueError):
    """A deployment config or agent spec file is unreadable or invalid (names file and key)."""


class ActionError(AcademyMLError, RuntimeError):
    """A strategy's action could not run (the host lacks the method, a chained action failed...)."""


class GeneratorExhausted(AcademyMLError):
    """A generator has no new candidate left to propose (its search space is used up).

    Not an error of the caller's: an agent delivers :attr:`partial`, raises a
    ``generator_exhausted`` event and lets its strategies decide what follows.

    Attributes:
        partial: The new candidates found before running out (possibly none).
    """

    def __init__(self, message: str, partial: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.partial = list(partial)
