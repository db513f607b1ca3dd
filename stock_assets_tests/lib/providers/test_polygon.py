import random
from datetime import UTC, datetime

import pytest

from stock_assets.lib.marketdata import ts_us
from stock_assets.lib.providers import PolygonClient, ProviderAuthError, ProviderThrottled
from stock_assets_tests.lib.providers.conftest import API_KEY, FakeTime, FixtureServer, canned

AGGS = "/v2/aggs/ticker/AAPL/range/1/minute/2024-01-05/2024-01-05"
NEXT = "/v2/aggs/ticker/AAPL/range/1/minute/1704465120000/1704499199999"


def client(server: FixtureServer, fake_time: FakeTime) -> PolygonClient:
    return PolygonClient(
        API_KEY,
        base_url=server.url,
        clock=fake_time.monotonic,
        sleep=fake_time.sleep,
        rng=random.Random(3),
    )


def window() -> tuple[datetime, datetime]:
    return datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 5, 23, 59, tzinfo=UTC)


def test_aggregates_follow_next_url_on_the_configured_host(server, fake_time) -> None:
    server.route(AGGS, canned("polygon_aggs_page1.json"))
    server.route(NEXT, canned("polygon_aggs_page2.json"))
    bars = client(server, fake_time).intraday_bars("AAPL", *window())
    assert server.paths() == [AGGS, NEXT]
    assert server.requests[1].query == {"cursor": "bGltaXQ9MiZzb3J0PWFzYw"}
    assert [b.ts_us for b in bars] == [
        ts_us(datetime(2024, 1, 5, 14, 30 + i, tzinfo=UTC)) for i in range(4)
    ]
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
        181.99,
        182.1,
        181.6,
        181.8,
        1225830.0,
    )


def test_key_travels_in_the_header_never_in_the_url(server, fake_time) -> None:
    server.route(AGGS, canned("polygon_aggs_page1.json"))
    server.route(NEXT, canned("polygon_aggs_page2.json"))
    client(server, fake_time).intraday_bars("AAPL", *window())
    for seen in server.requests:
        assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
        assert API_KEY not in str(seen.query)


def test_429_is_retried_then_succeeds(server, fake_time) -> None:
    server.route(
        "/v2/last/trade/AAPL",
        canned("polygon_error_429.json", 429, **{"Retry-After": "12"}),
        canned("polygon_last_trade.json"),
    )
    tick = client(server, fake_time).quote("AAPL")
    assert fake_time.sleeps == [12.0]
    # SIP timestamp in ns → µs without float rounding
    assert (tick.ts_us, tick.price, tick.size) == (1617901342969834, 129.8473, 25.0)


def test_429_without_retry_after_uses_backoff_and_gives_up(server, fake_time) -> None:
    server.route("/v2/last/trade/AAPL", canned("polygon_error_429.json", 429))
    with pytest.raises(ProviderThrottled, match="maximum requests per minute"):
        client(server, fake_time).quote("AAPL")
    assert len(server.requests) == 4


def test_unknown_key_and_not_entitled_are_auth_errors(server, fake_time) -> None:
    server.route(AGGS, canned("polygon_error_401.json", 401))
    server.route("/v2/last/trade/AAPL", canned("polygon_error_403.json", 403))
    c = client(server, fake_time)
    with pytest.raises(ProviderAuthError, match="Unknown API Key"):
        c.intraday_bars("AAPL", *window())
    with pytest.raises(ProviderAuthError, match="not entitled"):
        c.quote("AAPL")
    assert len(server.requests) == 2


def test_free_tier_limiter_spaces_the_sixth_request(server, fake_time) -> None:
    server.route("/v2/last/trade/AAPL", canned("polygon_last_trade.json"))
    c = client(server, fake_time)
    for _ in range(6):
        c.quote("AAPL")
    assert fake_time.sleeps == pytest.approx([12.0])  # 5 requests/minute
