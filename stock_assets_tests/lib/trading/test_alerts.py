"""Alerts: rules by hand, once per event whatever the refreshes, webhook against a real server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta

import polars as pl
import pytest
from pydantic import SecretStr

from stock_assets.lib.trading import alerts
from stock_assets.lib.trading.config import AlertRule
from stock_assets_tests.lib.trading.data import real_daily_bars
from stock_assets_tests.lib.trading.webhook import WebhookServer, webhook_server

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(8)]
CLOSES = [100, 100, 106, 107, 100, 94, 93, 100]
MOVE = AlertRule(name="move5", kind="percent_move", window=1, threshold_pct=5)
LEVEL = AlertRule(name="x105", kind="level_cross", symbols=("X",), level=105)


def bars(closes=CLOSES, symbol="X") -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": [symbol] * len(closes), "session_date": DAYS[: len(closes)], "close": closes},
        schema={"symbol": pl.String, "session_date": pl.Date, "close": pl.Float64},
    )


def fired(df: pl.DataFrame) -> list[tuple]:
    return [(r["session_date"], r["rule"], r["direction"]) for r in df.iter_rows(named=True)]


def test_percent_move_fires_on_the_session_the_move_starts() -> None:
    events = alerts.evaluate(bars(), [MOVE])
    # +6 % on day 2; -6.5 % on day 4 and -6 % on day 5 are one episode; +7.5 % on day 7
    assert fired(events) == [
        (DAYS[2], "move5", "up"),
        (DAYS[4], "move5", "down"),
        (DAYS[7], "move5", "up"),
    ]
    assert events["value"][0] == pytest.approx(6.0)
    assert events["message"][0].startswith("X rose 6.00% over 1 session(s) to 106.00")


def test_multi_session_window() -> None:
    rule = AlertRule(name="w3", kind="percent_move", window=3, threshold_pct=6, direction="down")
    # day 5: 94 / 106 - 1 = -11.3 %; day 6: 93 / 107 - 1 = -13 % (same episode); day 7: 0 %
    assert fired(alerts.evaluate(bars(), [rule])) == [(DAYS[5], "w3", "down")]


def test_level_cross_both_ways() -> None:
    events = alerts.evaluate(bars(), [LEVEL])
    assert fired(events) == [(DAYS[2], "x105", "up"), (DAYS[4], "x105", "down")]
    assert events["threshold"].to_list() == [105.0, 105.0]
    assert alerts.evaluate(bars(symbol="Y"), [LEVEL]).is_empty()  # other symbols


def test_ids_are_deterministic_and_depend_on_the_rule() -> None:
    a = alerts.alert_id(MOVE, "X", DAYS[2], "up")
    assert a == alerts.alert_id(MOVE, "X", DAYS[2], "up")
    changed = MOVE.model_copy(update={"threshold_pct": 4})
    assert (
        len(
            {
                a,
                alerts.alert_id(changed, "X", DAYS[2], "up"),
                alerts.alert_id(MOVE, "X", DAYS[3], "up"),
                alerts.alert_id(MOVE, "X", DAYS[2], "down"),
            }
        )
        == 4
    )


def test_an_event_fires_once_across_refreshes_and_batchings() -> None:
    """Each refresh sees one more bar; a store keyed by alert_id keeps one row per event."""
    daily = real_daily_bars().filter(pl.col("symbol").is_in(["AAPL", "IBM"]))
    rules = [MOVE, AlertRule(name="aapl50", kind="level_cross", symbols=("AAPL",), level=50)]
    full = alerts.evaluate(daily, rules)
    assert full.height > 50 and full["alert_id"].n_unique() == full.height
    stored: dict[str, dict] = {}
    sessions = daily["session_date"].unique().sort()
    lookback = alerts.lookback_sessions(rules)
    for i in range(0, sessions.len(), 97):  # refreshes: windows of 97 sessions, re-run twice
        window = sessions[i : i + 97]
        since = sessions[max(i - lookback, 0)]
        seen = daily.filter(pl.col("session_date").is_between(since, window[-1]))
        for _ in range(2):
            events = alerts.evaluate(seen, rules).filter(
                pl.col("session_date").is_between(window[0], window[-1])
            )
            for row in events.iter_rows(named=True):
                stored.setdefault(row["alert_id"], row)
    assert sorted(stored) == sorted(full["alert_id"])


# --- webhook against a real local HTTP server --------------------------------------------------


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    with webhook_server() as state:
        yield state


def payloads() -> list[dict]:
    events = alerts.evaluate(bars(), [MOVE])
    return [alerts.webhook_payload(r) for r in events.iter_rows(named=True)]


def test_webhook_delivers_each_alert_as_json(server: WebhookServer) -> None:
    url = SecretStr(f"{server.url}/hooks/s3cr3t-token?key=abc")
    delivered = alerts.post_alerts(url, payloads())
    assert len(delivered) == 3
    assert [p for p, _ in server.received] == ["/hooks/s3cr3t-token?key=abc"] * 3
    body = server.received[0][1]
    assert body["alert_id"] == delivered[0] and body["session_date"] == "2024-01-03"
    assert body["symbol"] == "X" and body["direction"] == "up"


def test_webhook_retries_server_errors_but_not_client_errors(
    server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = SecretStr(f"{server.url}/hooks/s3cr3t-token")
    first, second, _ = payloads()
    server.statuses[:] = [503, 200, 400]
    with caplog.at_level(logging.WARNING):
        delivered = alerts.post_alerts(url, [first, second], backoff_s=0.01)
    assert delivered == [first["alert_id"]]  # 503 then 200; the 400 is not retried
    assert len(server.received) == 3
    assert "HTTP 400" in caplog.text and "s3cr3t" not in caplog.text
    assert f"{server.url}/…" in caplog.text


def test_unreachable_webhook_is_logged_without_its_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = SecretStr("http://user:pw-s3cr3t@127.0.0.1:1/hooks/s3cr3t-token")
    with caplog.at_level(logging.WARNING):
        assert alerts.post_alerts(url, payloads()[:1], retries=1, backoff_s=0.01) == []
    assert "ConnectError" in caplog.text and "s3cr3t" not in caplog.text
    assert alerts.redact_url(url.get_secret_value()) == "http://127.0.0.1:1/…"
