"""pytest plugin that runs Academy's published test suite against our exchange.

Loaded with ``-p academy_ml_conformance_plugin`` by
``tests/integration/academy_conformance_test.py`` in a pytest run inside the
unpacked academy-py sdist. It must be imported before Academy's
``tests/conftest.py``, which takes its fixtures from ``testing.fixture``: the
fixtures that make exchange factories are replaced there, so every factory a
test obtains through them is :class:`~academy_ml.messaging.RedisExchangeFactory`
on one real ``redis-server`` (a fresh key prefix per test). Tests
parametrized over Academy's factory types run once (their
``LocalExchangeFactory`` variant, which our factory stands in for).
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from academy.exchange import ExchangeFactory, LocalExchangeFactory, UserExchangeClient
from redis_server import RedisServer

from academy_ml.messaging import RedisExchangeFactory

#: Tests expected to fail with our exchange, by node id, with the reason.
#: Checked strictly: one that starts passing fails the run, so the list stays true.
EXPECTED_FAILURES: dict[str, str] = {}


@pytest.fixture(scope="session")
def _aml_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


#: Set to 1 by the driver to run the suite on a deployment that allows pickle.
ALLOW_PICKLE = os.environ.get("ACADEMY_ML_CONFORMANCE_ALLOW_PICKLE") == "1"


def _our_factory(server: RedisServer) -> RedisExchangeFactory:
    return RedisExchangeFactory(
        server.url, prefix=f"conf-{uuid.uuid4().hex[:12]}", allow_pickle=ALLOW_PICKLE
    )


@pytest.fixture
def get_factory(
    _aml_redis: RedisServer,
) -> Callable[[type[ExchangeFactory[Any]]], ExchangeFactory[Any]]:
    """Academy's ``get_factory``: every factory type gives ours."""
    return lambda factory_type: _our_factory(_aml_redis)


@pytest.fixture
def local_exchange_factory(_aml_redis: RedisServer) -> RedisExchangeFactory:
    """Academy's per-backend factory fixtures, all ours."""
    return _our_factory(_aml_redis)


@pytest.fixture  # async: pytest-asyncio runs it (the suite's asyncio_mode is auto)
async def exchange_client(
    _aml_redis: RedisServer,
) -> AsyncIterator[UserExchangeClient[Any]]:
    """Academy's default user client (its ``manager`` fixture builds on it)."""
    async with await _our_factory(_aml_redis).create_user_client() as client:
        yield client


# Academy's conftest imports these names from testing.fixture after this
# plugin is loaded, so it registers ours. (Imported by name: the sdist's
# testing package exists only in the subprocess that loads this plugin.)
academy_fixtures = importlib.import_module("testing.fixture")
_OURS = {
    "get_factory": get_factory,
    "local_exchange_factory": local_exchange_factory,
    "redis_exchange_factory": local_exchange_factory,
    "hybrid_exchange_factory": local_exchange_factory,
    "http_exchange_factory": local_exchange_factory,
    "exchange_client": exchange_client,
}
for _name, _fixture in _OURS.items():
    setattr(academy_fixtures, _name, _fixture)


def _factory_params(item: pytest.Item) -> list[type]:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return []
    return [
        value
        for value in callspec.params.values()
        if isinstance(value, type) and issubclass(value, ExchangeFactory)
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run each factory-parametrized test once; mark the listed expected failures."""
    kept, dropped = [], []
    for item in items:
        params = _factory_params(item)
        if params and any(param is not LocalExchangeFactory for param in params):
            dropped.append(item)
            continue
        reason = EXPECTED_FAILURES.get(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    unknown = set(EXPECTED_FAILURES) - {item.nodeid for item in kept}
    if unknown:
        raise pytest.UsageError(f"expected failures not collected: {sorted(unknown)}")
