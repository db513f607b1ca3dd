import random
from datetime import UTC, datetime

import pytest

from stock_assets.lib.marketdata import ts_us
from stock_assets.lib.providers import (
    ProviderAuthError,
    ProviderNotFound,
    ProviderResponseError,
    ProviderThrottled,
    TwelveDataClient,
)
from stock_assets_tests.lib.providers.conftest import (
    API_KEY,
    Canned,
    FakeTime,
    FixtureServer,
    canned,
)


def client(server: FixtureServer, fake_time: FakeTime) -> TwelveDataClient:
    return TwelveDataClient(
        API_KEY,
        base_url=server.url,
        clock=fake_time.monotonic,
        sleep=fake_time.sleep,
        rng=random.Random(4),
    )


def test_string_typed_values_become_numbers_in_exchange_time(server, fake_time) -> None:
    server.route("/time_series", canned("twelve_data_time_series.json"))
    bars = client(server, fake_time).intraday_bars("AAPL")
    assert [b.ts_us for b in bars] == [
        ts_us(datetime(2024, 7, 1, 19, m, tzinfo=UTC)) for m in (57, 58, 59)
    ]
    assert bars[-1].close == 216.75 and bars[-1].volume == 1462313.0
    assert isinstance(bars[0].high, float)
    seen = server.requests[0]
    assert seen.query["interval"] == "1min" and seen.query["symbol"] == "AAPL"
    assert seen.headers["Authorization"] == f"apikey {API_KEY}"
    assert "apikey" not in seen.query


def test_quote_uses_last_quote_at(server, fake_time) -> None:
    server.route("/quote", canned("twelve_data_quote.json"))
    tick = client(server, fake_time).quote("AAPL")
    assert (tick.price, tick.ts_us) == (216.75, 1719863940 * 1_000_000)


def test_error_body_with_http_200_is_an_auth_error(server, fake_time) -> None:
    server.route("/time_series", canned("twelve_data_error_401.json"))
    with pytest.raises(ProviderAuthError, match="apikey"):
        client(server, fake_time).intraday_bars("AAPL")
    assert len(server.requests) == 1


def test_minute_credits_429_waits_for_the_next_minute(server, fake_time) -> None:
    server.route(
        "/quote", canned("twelve_data_error_429_minute.json"), canned("twelve_data_quote.json")
    )
    assert client(server, fake_time).quote("AAPL").price == 216.75
    assert fake_time.sleeps == [60.0]


def test_daily_credits_429_is_not_retried(server, fake_time) -> None:
    server.route("/quote", canned("twelve_data_error_429_day.json", 429))
    with pytest.raises(ProviderThrottled, match="for the day"):
        client(server, fake_time).quote("AAPL")
    assert len(server.requests) == 1 and fake_time.sleeps == []


def test_bad_symbol_is_not_found(server, fake_time) -> None:
    server.route("/time_series", canned("twelve_data_error_400_symbol.json"))
    with pytest.raises(ProviderNotFound):
        client(server, fake_time).intraday_bars("NOPE")


def test_non_numeric_value_is_a_response_error(server, fake_time) -> None:
    body = canned("twelve_data_time_series.json").body.replace('"216.75000"', '"n/a"')
    server.route("/time_series", Canned(200, body))
    with pytest.raises(ProviderResponseError, match="'close' is not a number"):
        client(server, fake_time).intraday_bars("AAPL")


def test_malformed_json(server, fake_time) -> None:
    server.route("/quote", Canned(200, "<html>maintenance</html>"))
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        client(server, fake_time).quote("AAPL")
