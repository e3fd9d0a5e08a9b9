"""Academy exchange over Redis: binary msgpack frames, raw buffers, no pickle.

``RedisExchangeFactory(url)`` works wherever Academy takes an exchange
factory. Messages are versioned frames (:mod:`~academy_ml.messaging.wire`);
bytes and numpy arrays travel as raw buffers; nothing read off the wire is
unpickled unless the deployment sets ``allow_pickle=True``.
"""

from __future__ import annotations

from academy_ml.messaging.factory import ExchangeOptions, MailboxInfo, RedisExchangeFactory
from academy_ml.messaging.transport import RedisAgentRegistration, RedisExchangeTransport

__all__ = [
    "ExchangeOptions",
    "MailboxInfo",
    "RedisAgentRegistration",
    "RedisExchangeFactory",
    "RedisExchangeTransport",
]
