"""Price-movement alerts on daily bars: edge-triggered rules, deterministic ids, webhook delivery.

Rules (config `alert_rules`, see AlertRule):
- percent_move: move = close[t] / close[t - window] - 1 (in %); "up" when move >= threshold_pct,
  "down" when move <= -threshold_pct.
- level_cross: "up" when close[t - 1] < level <= close[t]; "down" when
  close[t - 1] > level >= close[t].

An alert fires on the session where its condition becomes true (it was false, or unknown, on the
symbol's previous session) — one event per episode, not one per session the move lasts. Its id is
a hash of (rule definition, symbol, session, direction), so evaluating the same bars again, in
any batching, yields the same ids; the warehouse keeps the first (primary key) and the webhook is
called only for rows that were new.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import SecretStr

from stock_assets.lib import tables
from stock_assets.lib.trading.config import AlertRule

if TYPE_CHECKING:  # httpx is imported where alerts are sent, not when the code location loads
    import httpx

log = logging.getLogger(__name__)

ALERT_COLUMNS = tables.ALERTS.written  # an event as analytics.alerts stores it
ALERT_SCHEMA = tables.ALERTS.schema()


def alert_id(rule: AlertRule, symbol: str, session_date: Any, direction: str) -> str:
    """Deterministic id of one alert event (a changed rule definition gives new ids)."""
    key = f"v1|{rule.canonical()}|{symbol}|{session_date}|{direction}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def lookback_sessions(rules: Iterable[AlertRule]) -> int:
    """Sessions of history needed before the first evaluated one (move window + the edge)."""
    return max((r.window for r in rules if r.kind == "percent_move"), default=1) + 1


def evaluate(bars: pl.DataFrame, rules: Sequence[AlertRule]) -> pl.DataFrame:
    """Alert events of (symbol, session_date, close) bars, sorted by date, symbol, rule."""
    df = bars.select("symbol", "session_date", "close").sort("symbol", "session_date")
    close = pl.col("close")
    frames = []
    for rule in rules:
        part = df.filter(pl.col("symbol").is_in(rule.symbols)) if rule.symbols else df
        if rule.kind == "percent_move":
            threshold = float(rule.threshold_pct or 0.0)
            part = part.with_columns(
                ((close / close.shift(rule.window).over("symbol") - 1) * 100).alias("value")
            )
            up, down = pl.col("value") >= threshold, pl.col("value") <= -threshold
        else:
            threshold = float(rule.level or 0.0)
            part = part.with_columns(
                close.alias("value"), close.shift(1).over("symbol").alias("prev")
            )
            up = (pl.col("prev") < threshold) & (close >= threshold)
            down = (pl.col("prev") > threshold) & (close <= threshold)
        part = part.with_columns(
            up.fill_null(False).alias("up"), down.fill_null(False).alias("down")
        )
        for direction in ("up", "down"):
            if rule.direction not in (direction, "both"):
                continue
            # edge-triggered: true now, false (or unknown) on the symbol's previous session
            cond = pl.col(direction)
            fire = cond & ~cond.shift(1).over("symbol").fill_null(False)
            hits = part.filter(fire)
            if hits.height:
                frames.append(_events(rule, direction, threshold, hits))
    if not frames:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    return pl.concat(frames).sort("session_date", "symbol", "rule", "direction")


def _events(rule: AlertRule, direction: str, threshold: float, hits: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for symbol, day, close, value in hits.select(
        "symbol", "session_date", "close", "value"
    ).iter_rows():
        if rule.kind == "percent_move":
            message = (
                f"{symbol} {'rose' if direction == 'up' else 'fell'} {abs(value):.2f}% over "
                f"{rule.window} session(s) to {close:.2f} on {day} (rule {rule.name}: "
                f"{'+' if direction == 'up' else '-'}{threshold:g}%)"
            )
        else:
            message = (
                f"{symbol} closed {'above' if direction == 'up' else 'below'} {threshold:g} at "
                f"{close:.2f} on {day} (rule {rule.name})"
            )
        rows.append(
            (
                alert_id(rule, symbol, day, direction),
                symbol,
                day,
                rule.name,
                rule.kind,
                direction,
                float(value),
                threshold,
                message,
            )
        )
    return pl.DataFrame(rows, schema=ALERT_SCHEMA, orient="row")


def redact_url(url: str) -> str:
    """scheme://host[:port]/… — no credentials, path or query (they often carry the token)."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}/…"


def post_alerts(
    url: SecretStr,
    alerts: Sequence[dict[str, Any]],
    *,
    timeout_s: float = 5.0,
    retries: int = 2,
    backoff_s: float = 0.2,
    client: httpx.Client | None = None,
) -> list[str]:
    """POST each alert as JSON; returns the ids delivered (2xx). Never logs the URL's secrets.

    Transport errors, 429 and 5xx are retried `retries` times with exponential backoff; other
    statuses fail the alert at once. Failures are logged (redacted) and left for a later run.
    """
    import httpx

    target = redact_url(url.get_secret_value())
    delivered: list[str] = []
    owned = client is None
    http = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
    try:
        for alert in alerts:
            problem = ""
            for attempt in range(retries + 1):
                if attempt:
                    time.sleep(backoff_s * 2 ** (attempt - 1))
                try:
                    response = http.post(url.get_secret_value(), json=alert)
                except httpx.TransportError as exc:
                    problem = type(exc).__name__
                    continue
                if response.is_success:
                    delivered.append(str(alert["alert_id"]))
                    problem = ""
                    break
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break
            if problem:
                log.warning("alert %s not delivered to %s: %s", alert["alert_id"], target, problem)
    finally:
        if owned:
            http.close()
    return delivered


def webhook_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON body posted for one alert (dates as ISO strings)."""
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
