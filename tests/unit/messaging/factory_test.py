from __future__ import annotations

import pickle

import pydantic
import pytest
from academy.exchange.client_config import ExchangeClientConfig

from academy_ml.messaging import ExchangeOptions, RedisExchangeFactory


def test_factory_pickles_as_its_url_options_and_config() -> None:
    factory = RedisExchangeFactory(
        "redis://:pw@host:6379/2",
        prefix="site-a",
        max_message_bytes=2**20,
        config=ExchangeClientConfig(heartbeat_interval=5),
    )
    data = pickle.dumps(factory)
    assert len(data) < 2_000
    copy = pickle.loads(data)
    assert copy.url == factory.url
    assert copy.options == factory.options
    assert copy.config == factory.config


def test_repr_hides_the_password() -> None:
    text = repr(RedisExchangeFactory("redis://alice:secret@host:6379"))
    assert "secret" not in text
    assert "alice:***@host:6379" in text


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": "a b"}, "prefix"),
        ({"prefix": "x*"}, "prefix"),
        ({"max_message_bytes": 10}, "max_message_bytes"),
        ({"terminated_ttl_s": 0}, "terminated_ttl_s"),
        ({"listen_block_s": -1}, "listen_block_s"),
        ({"socket_timeout": 5}, "socket_timeout"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], field: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        RedisExchangeFactory("redis://localhost", **options)  # type: ignore[arg-type]


def test_defaults_never_unpickle() -> None:
    assert ExchangeOptions().allow_pickle is False
