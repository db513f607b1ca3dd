"""Financial Modeling Prep "stable" API (https://site.financialmodelingprep.com/developer/docs/stable).

Documented shapes: `/stable/historical-chart/1min?symbol=AAPL&from=&to=` = a JSON array, newest
first, of {"date": "YYYY-MM-DD HH:MM:SS" (exchange time, America/New_York), "open", "low", "high",
"close", "volume"} numbers; `/stable/quote?symbol=AAPL` = an array of one object with "symbol",
"price", "volume", "timestamp" (epoch seconds), "dayLow", … ([] for an unknown symbol). Errors:
HTTP 401 {"Error Message": "Invalid API KEY. …"}, 402/403 for endpoints outside the plan, 429
"Limit Reach …"; the legacy v3 API sent the same "Error Message" object with HTTP 200.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from stock_assets.lib.marketdata import Bar, Tick
from stock_assets.lib.providers.base import (
    NEW_YORK,
    ProviderAuthError,
    ProviderClient,
    ProviderError,
    ProviderNotFound,
    ProviderResponseError,
    ProviderThrottled,
    as_float,
    as_int,
    day_range,
    local_ts_us,
)
from stock_assets.lib.providers.ratelimit import RateLimit


class FmpClient(ProviderClient):
    """FMP free ("Basic") plan: 250 requests/day."""

    name: ClassVar[str] = "fmp"
    default_base_url: ClassVar[str] = "https://financialmodelingprep.com"
    limits: ClassVar[tuple[RateLimit, ...]] = (RateLimit(250, 86_400.0),)
    key_env: ClassVar[str] = "STOCK_API_KEY_FMP"

    def auth_params(self, key: str) -> dict[str, str]:
        return {"apikey": key}

    def check_body(self, status: int, body: Any) -> ProviderError | None:
        if not isinstance(body, dict) or "Error Message" not in body:
            return None
        text = str(body["Error Message"])
        lowered = text.lower()
        if status == 429 or "limit reach" in lowered:
            return ProviderThrottled(text)
        if status in (401, 402, 403) or "api key" in lowered or "restricted" in lowered:
            return ProviderAuthError(text)
        if status >= 500:
            return None  # let the status-based path retry it
        return ProviderNotFound(text)

    def fetch_intraday(self, symbol: str, start: datetime | None, end: datetime | None) -> Any:
        lo, hi = day_range(start, end, self.now())
        return self.get_json(
            "/stable/historical-chart/1min", {"symbol": symbol, "from": lo, "to": hi}
        )

    def transform_intraday(self, symbol: str, raw: Any) -> list[Bar]:
        if not isinstance(raw, list):
            raise ProviderResponseError(f"{self.name}: historical-chart body is not a JSON array")
        bars = []
        for row in raw:
            if not isinstance(row, dict) or "date" not in row:
                raise ProviderResponseError(f"{self.name}: chart row without 'date': {row!r}")
            bars.append(
                Bar(
                    symbol=symbol,
                    ts_us=local_ts_us(str(row["date"]), NEW_YORK),
                    interval="1m",
                    open=as_float(row.get("open"), "open", self.name),
                    high=as_float(row.get("high"), "high", self.name),
                    low=as_float(row.get("low"), "low", self.name),
                    close=as_float(row.get("close"), "close", self.name),
                    volume=as_float(row.get("volume"), "volume", self.name),
                    source=self.name,
                )
            )
        return sorted(bars, key=lambda b: b.ts_us)

    def fetch_quote(self, symbol: str) -> Any:
        return self.get_json("/stable/quote", {"symbol": symbol})

    def transform_quote(self, symbol: str, raw: Any) -> Tick:
        if not isinstance(raw, list):
            raise ProviderResponseError(f"{self.name}: quote body is not a JSON array")
        if not raw:
            raise ProviderNotFound(f"{self.name}: no quote for {symbol!r}")
        row = raw[0]
        return Tick(
            symbol=str(row.get("symbol") or symbol),
            ts_us=as_int(row.get("timestamp"), "timestamp", self.name) * 1_000_000,
            price=as_float(row.get("price"), "price", self.name),
            size=0.0,
            source=self.name,
            seq=0,
        )
