"""Market-data provider adapters behind one interface (`ProviderClient`). IEX Cloud shut down in
2024, so it has no adapter; the replay and simulator sources cover keyless/offline runs."""

from __future__ import annotations

from typing import Any

from stock_assets.lib.providers.alpha_vantage import AlphaVantageClient
from stock_assets.lib.providers.base import (
    ProviderAuthError,
    ProviderClient,
    ProviderError,
    ProviderNotFound,
    ProviderResponseError,
    ProviderThrottled,
    ProviderUnavailable,
)
from stock_assets.lib.providers.fmp import FmpClient
from stock_assets.lib.providers.polygon import PolygonClient
from stock_assets.lib.providers.ratelimit import (
    RateBudgetExhausted,
    RateLimit,
    RateLimiter,
    RetryPolicy,
)
from stock_assets.lib.providers.twelve_data import TwelveDataClient
from stock_assets.lib.settings import ApiKeys

PROVIDERS: dict[str, type[ProviderClient]] = {
    cls.name: cls for cls in (AlphaVantageClient, FmpClient, PolygonClient, TwelveDataClient)
}


def make_client(name: str, keys: ApiKeys | None = None, **options: Any) -> ProviderClient:
    """A client for provider `name` with its key from ApiKeys (config/api_keys.json + env)."""
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    keys = keys if keys is not None else ApiKeys.load()
    return PROVIDERS[name](getattr(keys, name), **options)


__all__ = [
    "PROVIDERS",
    "AlphaVantageClient",
    "FmpClient",
    "PolygonClient",
    "ProviderAuthError",
    "ProviderClient",
    "ProviderError",
    "ProviderNotFound",
    "ProviderResponseError",
    "ProviderThrottled",
    "ProviderUnavailable",
    "RateBudgetExhausted",
    "RateLimit",
    "RateLimiter",
    "RetryPolicy",
    "TwelveDataClient",
    "make_client",
]
