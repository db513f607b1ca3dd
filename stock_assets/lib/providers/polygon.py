"""Polygon.io (now Massive) REST: aggregates and last trade (https://polygon.io/docs/stocks).

Documented shapes: `/v2/aggs/ticker/{T}/range/1/minute/{from}/{to}` = {"ticker", "queryCount",
"resultsCount", "adjusted", "status": "OK" | "DELAYED", "request_id", "results": [{"o", "h", "l",
"c", "v", "vw", "n", "t": window start in epoch ms}], "next_url": absolute URL of the next page,
without the key}; `/v2/last/trade/{T}` = {"status": "OK", "results": {"T", "p": price, "s": size,
"t": SIP timestamp in epoch ns, "x", "i", "q", …}} (not in the free plan: HTTP 403). Errors:
401 {"status": "ERROR", "error": "Unknown API Key"}, 403 {"status": "NOT_AUTHORIZED", "message"},
429 when the free 5/minute budget is spent. The key travels in the Authorization header, so it is
never part of a URL (next_url included).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from stock_assets.lib.marketdata import Bar, Tick
from stock_assets.lib.providers.base import (
    ProviderAuthError,
    ProviderClient,
    ProviderError,
    ProviderResponseError,
    ProviderThrottled,
    as_float,
    as_int,
    day_range,
)
from stock_assets.lib.providers.ratelimit import RateLimit

MAX_PAGES = 100


class PolygonClient(ProviderClient):
    """Polygon/Massive free ("Basic") plan: 5 requests/minute."""

    name: ClassVar[str] = "polygon"
    default_base_url: ClassVar[str] = "https://api.polygon.io"
    limits: ClassVar[tuple[RateLimit, ...]] = (RateLimit(5, 60.0),)
    key_env: ClassVar[str] = "STOCK_API_KEY_POLYGON"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def check_body(self, status: int, body: Any) -> ProviderError | None:
        if not isinstance(body, dict):
            return None
        state = str(body.get("status", "")).upper()
        text = str(body.get("error") or body.get("message") or state)
        if status == 429:
            return ProviderThrottled(text)
        if status in (401, 403) or state == "NOT_AUTHORIZED":
            return ProviderAuthError(text)
        if state == "ERROR" and status < 500:
            return ProviderError(text)
        return None

    def fetch_intraday(self, symbol: str, start: datetime | None, end: datetime | None) -> Any:
        lo, hi = day_range(start, end, self.now())
        path: str | None = f"/v2/aggs/ticker/{symbol}/range/1/minute/{lo}/{hi}"
        params: dict[str, Any] | None = {"adjusted": "true", "sort": "asc", "limit": 50_000}
        pages: list[Any] = []
        while path is not None:
            if len(pages) >= MAX_PAGES:
                raise ProviderResponseError(f"{self.name}: > {MAX_PAGES} pages for {symbol}")
            page = self.get_json(path, params)
            pages.append(page)
            next_url = page.get("next_url") if isinstance(page, dict) else None
            path = self.rebase(next_url) if next_url else None
            params = None  # next_url carries the cursor and the original query
        return pages

    def transform_intraday(self, symbol: str, raw: Any) -> list[Bar]:
        bars: dict[int, Bar] = {}
        for page in raw:
            if not isinstance(page, dict):
                raise ProviderResponseError(f"{self.name}: aggregates page is not an object")
            for row in page.get("results") or []:
                ts = as_int(row.get("t"), "t", self.name) * 1_000
                bars[ts] = Bar(
                    symbol=symbol,
                    ts_us=ts,
                    interval="1m",
                    open=as_float(row.get("o"), "o", self.name),
                    high=as_float(row.get("h"), "h", self.name),
                    low=as_float(row.get("l"), "l", self.name),
                    close=as_float(row.get("c"), "c", self.name),
                    volume=as_float(row.get("v"), "v", self.name),
                    source=self.name,
                )
        return [bars[ts] for ts in sorted(bars)]

    def fetch_quote(self, symbol: str) -> Any:
        return self.get_json(f"/v2/last/trade/{symbol}")

    def transform_quote(self, symbol: str, raw: Any) -> Tick:
        trade = raw.get("results") if isinstance(raw, dict) else None
        if not isinstance(trade, dict):
            raise ProviderResponseError(f"{self.name}: last-trade body has no 'results' object")
        return Tick(
            symbol=str(trade.get("T") or symbol),
            ts_us=as_int(trade.get("t"), "t", self.name) // 1_000,
            price=as_float(trade.get("p"), "p", self.name),
            size=as_float(trade.get("s", 0), "s", self.name),
            source=self.name,
            seq=0,
        )
