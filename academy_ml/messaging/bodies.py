"""Message bodies as received: Academy's serializer settings honoured on read.

A received action request, action response or user error keeps the
serialization strategy its sender chose (``serialization``), and its values
are released only by Academy's accessors (``get_args``, ``get_result``...),
which first check the strategy against Academy's deserializer allow-list
(:data:`academy.serialize.allowed_deserializers`) in the reader's context,
as Academy's own message bodies do: a request whose arguments were sent
with a strategy its agent does not allow fails with
:class:`~academy.exception.DeserializationMethodProhibitedError`.

Values are decoded from msgpack when the frame arrives (nothing there runs
code), except pickled ones (deployments with ``allow_pickle``): those are
unpickled only after the check passes, by the reader that asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from academy.exception import DeserializationMethodProhibitedError
from academy.message import ActionRequest, ActionResponse, UserErrorResponse
from academy.serialize import SerializationStrategy, allowed_deserializers
from pydantic import PrivateAttr

#: Decodes a body's deferred (pickled) values when they are first read.
Loader = Callable[[], Any]


def check_allowed(strategy: SerializationStrategy | str) -> None:
    """Refuse values sent with a strategy the current context does not allow.

    Raises:
        DeserializationMethodProhibitedError: ``strategy`` is not in
            :data:`academy.serialize.allowed_deserializers`.
    """
    if strategy not in allowed_deserializers.get():
        raise DeserializationMethodProhibitedError()


class ReceivedActionRequest(ActionRequest):
    """An :class:`~academy.message.ActionRequest` read off the exchange."""

    _load: Loader | None = PrivateAttr(default=None)

    def defer(self, load: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]) -> None:
        """Decode the arguments with ``load`` (pickled values) when first read."""
        self._load = load

    def _resolve(self) -> None:
        check_allowed(self.serialization)
        if self._load is not None:
            self.pargs, self.kargs = self._load()
            self._load = None

    def get_args(self) -> tuple[Any, ...]:
        """The positional arguments, if their strategy is allowed here."""
        self._resolve()
        return self.pargs

    def get_kwargs(self) -> dict[str, Any]:
        """The keyword arguments, if their strategy is allowed here."""
        self._resolve()
        return self.kargs


class ReceivedActionResponse(ActionResponse):
    """An :class:`~academy.message.ActionResponse` read off the exchange."""

    _load: Loader | None = PrivateAttr(default=None)

    def defer(self, load: Loader) -> None:
        """Decode the result with ``load`` (pickled values) when first read."""
        self._load = load

    def get_result(self) -> Any:
        """The action's result, if its strategy is allowed here.

        Unlike Academy's, never treats a received ``["__serialized__", data]``
        list as serialized data: a peer cannot make this deserialize anything.
        """
        check_allowed(self.serialization)
        if self._load is not None:
            self.result = self._load()
            self._load = None
        return self.result


class ReceivedUserErrorResponse(UserErrorResponse):
    """A :class:`~academy.message.UserErrorResponse` read off the exchange."""

    _load: Loader | None = PrivateAttr(default=None)

    def defer(self, load: Loader) -> None:
        """Decode the exception with ``load`` (pickled values) when first read."""
        self._load = load

    def get_exception(self) -> Exception:
        """The remote exception, if its strategy is allowed here."""
        check_allowed(self.serialization)
        if self._load is not None:
            self.exception = self._load()
            self._load = None
        return self.exception
