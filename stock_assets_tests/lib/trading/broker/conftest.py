"""The local Alpaca-compatible server and an `AlpacaBroker` pointed at it (no real sleeps)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from stock_assets.lib.trading.broker.alpaca import AlpacaBroker
from stock_assets_tests.lib.trading.broker.alpaca_server import (
    KEY_ID,
    SECRET,
    AlpacaServer,
    running_server,
)


@pytest.fixture
def alpaca_server() -> Iterator[AlpacaServer]:
    yield from running_server()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_broker(
    server: AlpacaServer, sleep: Sleeps, *, timeout_s: float = 2.0, max_attempts: int = 4
) -> AlpacaBroker:
    return AlpacaBroker(
        SecretStr(KEY_ID),
        SecretStr(SECRET),
        base_url=server.url,
        stream_url=server.stream_url,
        timeout_s=timeout_s,
        max_attempts=max_attempts,
        sleep=sleep,
        rng=random.Random(7),
    )


@pytest.fixture
def alpaca(alpaca_server: AlpacaServer, sleeps: Sleeps) -> AlpacaBroker:
    return make_broker(alpaca_server, sleeps)
