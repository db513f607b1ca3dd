import random
from datetime import UTC, datetime

import pytest

from stock_assets.lib.marketdata import ts_us
from stock_assets.lib.providers import (
    FmpClient,
    ProviderAuthError,
    ProviderNotFound,
    ProviderUnavailable,
)
from stock_assets_tests.lib.providers.conftest import (
    API_KEY,
    Canned,
    FakeTime,
    FixtureServer,
    canned,
)

CHART = "/stable/historical-chart/1min"


def client(server: FixtureServer, fake_time: FakeTime) -> FmpClient:
    return FmpClient(
        API_KEY,
        base_url=server.url,
        clock=fake_time.monotonic,
        sleep=fake_time.sleep,
        rng=random.Random(2),
        now=lambda: datetime(2024, 7, 2, tzinfo=UTC).timestamp(),
    )


def test_chart_rows_become_ascending_bars_in_new_york_time(server, fake_time) -> None:
    server.route(CHART, canned("fmp_chart_1min.json"))
    start = datetime(2024, 7, 1, tzinfo=UTC)
    bars = client(server, fake_time).intraday_bars("AAPL", start)
    assert len(bars) == 3
    # 15:57 EDT (July, UTC-4) = 19:57 UTC; FMP lists newest first
    assert bars[0].ts_us == ts_us(datetime(2024, 7, 1, 19, 57, tzinfo=UTC))
    assert (bars[-1].open, bars[-1].high, bars[-1].low, bars[-1].close) == (
        216.61,
        216.82,
        216.55,
        216.75,
    )
    assert bars[-1].volume == 1462313.0
    sent = server.requests[0].query
    assert sent == {"symbol": "AAPL", "from": "2024-07-01", "to": "2024-07-02", "apikey": API_KEY}


def test_quote_uses_the_epoch_seconds_timestamp(server, fake_time) -> None:
    server.route("/stable/quote", canned("fmp_quote.json"))
    tick = client(server, fake_time).quote("AAPL")
    assert (tick.symbol, tick.price, tick.ts_us) == ("AAPL", 216.75, 1719864001 * 1_000_000)


def test_empty_quote_array_is_not_found(server, fake_time) -> None:
    server.route("/stable/quote", canned("fmp_quote_unknown.json"))
    with pytest.raises(ProviderNotFound):
        client(server, fake_time).quote("NOPE")


@pytest.mark.parametrize(
    ("name", "status"), [("fmp_error_401.json", 401), ("fmp_error_403_restricted.json", 403)]
)
def test_401_and_403_are_auth_errors_without_retry(server, fake_time, name, status) -> None:
    server.route(CHART, canned(name, status))
    with pytest.raises(ProviderAuthError) as info:
        client(server, fake_time).intraday_bars("AAPL")
    assert len(server.requests) == 1
    assert API_KEY not in str(info.value)


def test_legacy_http_200_error_message_is_still_an_auth_error(server, fake_time) -> None:
    server.route("/stable/quote", canned("fmp_error_401.json", 200))
    with pytest.raises(ProviderAuthError, match="Invalid API KEY"):
        client(server, fake_time).quote("AAPL")


def test_limit_reach_429_honours_retry_after(server, fake_time) -> None:
    server.route(
        "/stable/quote",
        canned("fmp_error_429.json", 429, **{"Retry-After": "7"}),
        canned("fmp_quote.json"),
    )
    assert client(server, fake_time).quote("AAPL").price == 216.75
    assert fake_time.sleeps == [7.0]


def test_persistent_5xx_gives_up_after_exponential_backoff(server, fake_time) -> None:
    server.route("/stable/quote", Canned(502, "<html>Bad Gateway</html>"))
    with pytest.raises(ProviderUnavailable, match="HTTP 502"):
        client(server, fake_time).quote("AAPL")
    assert len(server.requests) == 4
    ceilings = [1.0, 2.0, 4.0]
    assert all(c / 2 <= s <= c for s, c in zip(fake_time.sleeps, ceilings, strict=True))
