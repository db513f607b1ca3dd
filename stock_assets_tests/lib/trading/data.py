"""Real daily bars for the trading tests: bokeh_sampledata (Quandl WIKI, public domain)."""

from __future__ import annotations

from functools import lru_cache

import polars as pl
from bokeh_sampledata import stocks

SYMBOLS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")


@lru_cache(maxsize=1)
def real_daily_bars() -> pl.DataFrame:
    """symbol, session_date, OHLC (split/dividend-adjusted with adj_close/close), volume."""
    frames = []
    for symbol in SYMBOLS:
        raw = pl.DataFrame(getattr(stocks, symbol))
        factor = pl.col("adj_close") / pl.col("close")
        frames.append(
            raw.select(
                pl.lit(symbol).alias("symbol"),
                pl.col("date").str.to_date().alias("session_date"),
                *(pl.col(c) * factor for c in ("open", "high", "low", "close")),
                (pl.col("volume") / factor).alias("volume"),
            )
        )
    return pl.concat(frames).sort("symbol", "session_date")


def symbol_bars(symbol: str) -> pl.DataFrame:
    return real_daily_bars().filter(pl.col("symbol") == symbol)
