"""Twelve Data REST: `/time_series` and `/quote` (https://twelvedata.com/docs).

Documented shapes: time_series = {"meta": {"symbol", "interval": "1min", "currency",
"exchange_timezone": "America/New_York", "exchange", "mic_code", "type"}, "values": [{"datetime":
"YYYY-MM-DD HH:MM:SS" in exchange_timezone, "open": "…", "high", "low", "close", "volume"}] newest
first, every value a string, "status": "ok"}; quote = {"symbol", "datetime", "timestamp" (epoch s
of the last bar), "last_quote_at" (epoch s), "open" … "close": strings, "is_market_open", …}.
Errors are bodies {"code": 400|401|403|404|429|500, "message", "status": "error"}, sent with
HTTP 200 or with the matching status. 429 names its window: "…credits for the current minute"
(retry after the minute) or "…for the day" (not worth retrying). The key goes in the documented
`Authorization: apikey <key>` header.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from stock_assets.lib.calendar import TIMEZONE
from stock_assets.lib.marketdata import Bar, Tick
from stock_assets.lib.providers.base import (
    ProviderAuthError,
    ProviderClient,
    ProviderError,
    ProviderNotFound,
    ProviderResponseError,
    ProviderThrottled,
    ProviderUnavailable,
    as_float,
    as_int,
    day_range,
    local_ts_us,
)
from stock_assets.lib.providers.ratelimit import RateLimit

MINUTE_S = 60.0
DAY_S = 86_400.0


def error_from(code: int, text: str) -> ProviderError:
    """Map Twelve Data's documented error codes onto the provider error classes."""
    if code == 429:
        return ProviderThrottled(text, retry_after_s=DAY_S if "day" in text.lower() else MINUTE_S)
    if code in (401, 403):
        return ProviderAuthError(text)
    if code in (400, 404):
        return ProviderNotFound(text)
    if code >= 500:
        return ProviderUnavailable(text)
    return ProviderError(text)


class TwelveDataClient(ProviderClient):
    """Twelve Data free ("Basic") plan: 8 credits/minute and 800/day (1 credit per call here)."""

    name: ClassVar[str] = "twelve_data"
    default_base_url: ClassVar[str] = "https://api.twelvedata.com"
    limits: ClassVar[tuple[RateLimit, ...]] = (RateLimit(8, 60.0), RateLimit(800, 86_400.0))
    key_env: ClassVar[str] = "STOCK_API_KEY_TWELVE_DATA"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"apikey {key}"}

    def check_body(self, status: int, body: Any) -> ProviderError | None:
        if not isinstance(body, dict) or str(body.get("status", "")).lower() != "error":
            return None
        code = body.get("code")
        return error_from(code if isinstance(code, int) else status, str(body.get("message", "")))

    def fetch_intraday(self, symbol: str, start: datetime | None, end: datetime | None) -> Any:
        params: dict[str, Any] = {"symbol": symbol, "interval": "1min", "outputsize": 5000}
        if start or end:
            params["start_date"], params["end_date"] = day_range(start, end, self.now())
        else:
            params["outputsize"] = 390  # one regular session
        return self.get_json("/time_series", params)

    def transform_intraday(self, symbol: str, raw: Any) -> list[Bar]:
        meta = raw.get("meta") if isinstance(raw, dict) else None
        values = raw.get("values") if isinstance(raw, dict) else None
        if not isinstance(meta, dict) or not isinstance(values, list):
            raise ProviderResponseError(f"{self.name}: time_series body lacks 'meta'/'values'")
        if meta.get("interval", "1min") != "1min":
            raise ProviderResponseError(f"{self.name}: unexpected interval {meta.get('interval')}")
        zone = ZoneInfo(str(meta.get("exchange_timezone") or TIMEZONE))
        bars = [
            Bar(
                symbol=symbol,
                ts_us=local_ts_us(str(row["datetime"]), zone),
                interval="1m",
                open=as_float(row.get("open"), "open", self.name),
                high=as_float(row.get("high"), "high", self.name),
                low=as_float(row.get("low"), "low", self.name),
                close=as_float(row.get("close"), "close", self.name),
                volume=as_float(row.get("volume", 0), "volume", self.name),
                source=self.name,
            )
            for row in values
        ]
        return sorted(bars, key=lambda b: b.ts_us)

    def fetch_quote(self, symbol: str) -> Any:
        return self.get_json("/quote", {"symbol": symbol})

    def transform_quote(self, symbol: str, raw: Any) -> Tick:
        if not isinstance(raw, dict) or "close" not in raw:
            raise ProviderResponseError(f"{self.name}: quote body has no 'close'")
        stamp = raw.get("last_quote_at") or raw.get("timestamp")
        return Tick(
            symbol=str(raw.get("symbol") or symbol),
            ts_us=as_int(stamp, "last_quote_at", self.name) * 1_000_000,
            price=as_float(raw.get("close"), "close", self.name),
            size=0.0,
            source=self.name,
            seq=0,
        )
