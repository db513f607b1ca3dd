import logging
import random
from datetime import UTC, datetime

import pytest

from stock_assets.lib.marketdata import ts_us, validate
from stock_assets.lib.providers import (
    AlphaVantageClient,
    ProviderAuthError,
    ProviderNotFound,
    ProviderResponseError,
    ProviderThrottled,
)
from stock_assets_tests.lib.providers.conftest import (
    API_KEY,
    Canned,
    FakeTime,
    FixtureServer,
    canned,
)


def client(server: FixtureServer, fake_time: FakeTime, **kw: object) -> AlphaVantageClient:
    return AlphaVantageClient(
        API_KEY,
        base_url=server.url,
        clock=fake_time.monotonic,
        sleep=fake_time.sleep,
        rng=random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


def test_intraday_transform_follows_documented_format(server, fake_time) -> None:
    server.route("/query", canned("alpha_vantage_intraday.json"))
    bars = client(server, fake_time).intraday_bars("AAPL")
    assert [b.ts_us for b in bars] == sorted(b.ts_us for b in bars)
    first = bars[0]
    # "US/Eastern" wall time in January = UTC-5
    assert first.ts_us == ts_us(datetime(2024, 1, 5, 20, 55, tzinfo=UTC))
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        181.05,
        181.15,
        181.01,
        181.12,
        233410.0,
    )
    assert {b.interval for b in bars} == {"1m"} and {b.source for b in bars} == {"alpha_vantage"}
    for bar in bars:
        validate(bar)
    sent = server.requests[0].query
    assert sent["function"] == "TIME_SERIES_INTRADAY"
    assert (sent["symbol"], sent["interval"], sent["apikey"]) == ("AAPL", "1min", API_KEY)


def test_global_quote_is_stamped_at_the_session_close(server, fake_time) -> None:
    server.route("/query", canned("alpha_vantage_quote.json"))
    tick = client(server, fake_time).quote("AAPL")
    assert tick.price == 181.18
    assert tick.ts_us == ts_us(datetime(2024, 1, 5, 21, 0, tzinfo=UTC))  # 16:00 EST
    assert server.requests[0].query["function"] == "GLOBAL_QUOTE"


def test_unknown_symbol_quote_is_not_found(server, fake_time) -> None:
    server.route("/query", canned("alpha_vantage_quote_unknown.json"))
    with pytest.raises(ProviderNotFound):
        client(server, fake_time).quote("NOPE")


def test_throttle_note_in_http_200_is_retried_after_a_minute(server, fake_time) -> None:
    server.route("/query", canned("alpha_vantage_note.json"), canned("alpha_vantage_intraday.json"))
    bars = client(server, fake_time).intraday_bars("AAPL")
    assert len(bars) == 5
    assert len(server.requests) == 2
    assert fake_time.sleeps == [60.0]


def test_daily_limit_information_gives_up_and_never_leaks_the_key(server, fake_time) -> None:
    server.route("/query", canned("alpha_vantage_information_daily.json"))
    with pytest.raises(ProviderThrottled) as info:
        client(server, fake_time).intraday_bars("AAPL")
    assert len(server.requests) == 4  # RetryPolicy.max_attempts
    assert "25 requests per day" in str(info.value)
    assert API_KEY not in str(info.value)
    assert "***" in str(info.value)


def test_invalid_key_error_message_is_an_auth_error_without_retry(server, fake_time) -> None:
    server.route("/query", canned("alpha_vantage_error_apikey.json"))
    with pytest.raises(ProviderAuthError, match="apikey is invalid"):
        client(server, fake_time).quote("AAPL")
    assert len(server.requests) == 1 and fake_time.sleeps == []


def test_bad_symbol_error_message_is_not_found(server, fake_time) -> None:
    server.route("/query", canned("alpha_vantage_error_symbol.json"))
    with pytest.raises(ProviderNotFound, match="Invalid API call"):
        client(server, fake_time).intraday_bars("NOPE")


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(ProviderAuthError, match="STOCK_API_KEY_ALPHA_VANTAGE"):
        AlphaVantageClient(None)


def test_malformed_json_is_a_response_error(server, fake_time) -> None:
    server.route("/query", Canned(200, '{"Meta Data": {"1. Information": "Intra'))
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        client(server, fake_time).intraday_bars("AAPL")
    assert len(server.requests) == 1


def test_5xx_then_success_backs_off_once(server, fake_time) -> None:
    server.route("/query", Canned(503, "Service Unavailable"), canned("alpha_vantage_quote.json"))
    assert client(server, fake_time).quote("AAPL").price == 181.18
    assert len(fake_time.sleeps) == 1 and 0.5 <= fake_time.sleeps[0] <= 1.0


def test_timeout_is_retried(server, fake_time) -> None:
    slow = canned("alpha_vantage_quote.json")
    slow.delay_s = 0.5
    server.route("/query", slow, canned("alpha_vantage_quote.json"))
    tick = client(server, fake_time, timeout_s=0.1).quote("AAPL")
    assert tick.price == 181.18
    assert len(server.requests) == 2 and len(fake_time.sleeps) == 1


def test_httpx_request_log_lines_are_redacted(server, fake_time, caplog) -> None:
    server.route("/query", canned("alpha_vantage_quote.json"))
    with caplog.at_level(logging.DEBUG):
        client(server, fake_time).quote("AAPL")
    assert "HTTP Request" in caplog.text
    assert API_KEY not in caplog.text
    assert "apikey=***" in caplog.text
