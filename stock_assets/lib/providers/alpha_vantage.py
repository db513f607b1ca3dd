"""Alpha Vantage: TIME_SERIES_INTRADAY and GLOBAL_QUOTE (https://www.alphavantage.co/documentation/).

Documented shapes: intraday = {"Meta Data": {"1. Information", "2. Symbol", "3. Last Refreshed",
"4. Interval", "5. Output Size", "6. Time Zone": "US/Eastern"}, "Time Series (1min)": {"YYYY-MM-DD
HH:MM:SS": {"1. open": "…", "2. high", "3. low", "4. close", "5. volume"}}}, every value a string;
quote = {"Global Quote": {"01. symbol", "02. open", …, "05. price", "06. volume",
"07. latest trading day": "YYYY-MM-DD", …}} ({} for an unknown symbol). Errors arrive as HTTP 200:
`Error Message` (bad symbol/function, or a missing/invalid apikey), `Note` (the old per-minute
throttle) or `Information` (the per-day limit, or the demo-key notice). The throttle text echoes
the caller's key, so messages are redacted before they are raised.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from stock_assets.lib.marketdata import Bar, Tick, ts_us
from stock_assets.lib.providers.base import (
    NEW_YORK,
    ProviderAuthError,
    ProviderClient,
    ProviderError,
    ProviderNotFound,
    ProviderResponseError,
    ProviderThrottled,
    as_float,
    local_ts_us,
)
from stock_assets.lib.providers.ratelimit import RateLimit

INTERVALS = {"1min": "1m", "5min": "5m", "15min": "15m", "30min": "30m", "60min": "1h"}
THROTTLE_RETRY_S = 60.0  # the throttle notes name a per-minute window; wait it out once
SESSION_CLOSE = time(16, 0)


def zone_of(meta: dict[str, Any]) -> ZoneInfo:
    """The series' time zone; "US/Eastern" is a legacy alias of America/New_York."""
    name = str(meta.get("6. Time Zone") or meta.get("5. Time Zone") or "US/Eastern")
    return NEW_YORK if name == "US/Eastern" else ZoneInfo(name)


class AlphaVantageClient(ProviderClient):
    """Alpha Vantage free tier: 25 requests/day (since 2024) and 5/minute (the older cap)."""

    name: ClassVar[str] = "alpha_vantage"
    default_base_url: ClassVar[str] = "https://www.alphavantage.co"
    limits: ClassVar[tuple[RateLimit, ...]] = (RateLimit(5, 60.0), RateLimit(25, 86_400.0))
    key_env: ClassVar[str] = "STOCK_API_KEY_ALPHA_VANTAGE"
    interval: str = "1min"

    def auth_params(self, key: str) -> dict[str, str]:
        return {"apikey": key}

    def check_body(self, status: int, body: Any) -> ProviderError | None:
        if not isinstance(body, dict):
            return None
        if "Error Message" in body:
            text = str(body["Error Message"])
            if "apikey" in text.lower():
                return ProviderAuthError(text)
            return ProviderNotFound(text)
        for field in ("Note", "Information"):
            if field in body:
                text = str(body[field])
                lowered = text.lower()
                limited = "rate limit" in lowered or "call frequency" in lowered
                if not limited and "api key" in lowered:
                    return ProviderAuthError(text)  # the demo-key notice
                return ProviderThrottled(text, retry_after_s=THROTTLE_RETRY_S)
        return None

    def fetch_intraday(self, symbol: str, start: datetime | None, end: datetime | None) -> Any:
        params = {
            "function": "TIME_SERIES_INTRADAY",
            "symbol": symbol,
            "interval": self.interval,
            "outputsize": "full" if start else "compact",
            "month": start.strftime("%Y-%m") if start else None,
        }
        return self.get_json("/query", params)

    def transform_intraday(self, symbol: str, raw: Any) -> list[Bar]:
        meta = raw.get("Meta Data") if isinstance(raw, dict) else None
        if not isinstance(meta, dict):
            raise ProviderResponseError(f"{self.name}: intraday body has no 'Meta Data'")
        interval_name = str(meta.get("4. Interval", self.interval))
        series = raw.get(f"Time Series ({interval_name})")
        if not isinstance(series, dict) or interval_name not in INTERVALS:
            raise ProviderResponseError(
                f"{self.name}: intraday body has no 'Time Series ({interval_name})'"
            )
        zone = zone_of(meta)
        interval = INTERVALS[interval_name]
        bars = [
            Bar(
                symbol=symbol,
                ts_us=local_ts_us(stamp, zone),
                interval=interval,  # type: ignore[arg-type]
                open=as_float(row.get("1. open"), "1. open", self.name),
                high=as_float(row.get("2. high"), "2. high", self.name),
                low=as_float(row.get("3. low"), "3. low", self.name),
                close=as_float(row.get("4. close"), "4. close", self.name),
                volume=as_float(row.get("5. volume"), "5. volume", self.name),
                source=self.name,
            )
            for stamp, row in series.items()
        ]
        return sorted(bars, key=lambda b: b.ts_us)

    def fetch_quote(self, symbol: str) -> Any:
        return self.get_json("/query", {"function": "GLOBAL_QUOTE", "symbol": symbol})

    def transform_quote(self, symbol: str, raw: Any) -> Tick:
        quote = raw.get("Global Quote") if isinstance(raw, dict) else None
        if not isinstance(quote, dict):
            raise ProviderResponseError(f"{self.name}: quote body has no 'Global Quote'")
        if not quote:
            raise ProviderNotFound(f"{self.name}: no quote for {symbol!r}")
        day = datetime.strptime(str(quote.get("07. latest trading day")), "%Y-%m-%d")
        # GLOBAL_QUOTE carries a date only: stamp it at that session's close, or now if earlier.
        close = ts_us(datetime.combine(day.date(), SESSION_CLOSE, NEW_YORK))
        observed = int(self.now() * 1_000_000)
        return Tick(
            symbol=str(quote.get("01. symbol") or symbol),
            ts_us=min(close, observed),
            price=as_float(quote.get("05. price"), "05. price", self.name),
            size=0.0,
            source=self.name,
            seq=0,
        )
