"""Real daily bars for the tests: bokeh_sampledata (Quandl WIKI, public domain), and the one
helper that inserts daily bars into a test warehouse."""

from __future__ import annotations

from functools import lru_cache

import polars as pl
import psycopg
from bokeh_sampledata import stocks

from stock_assets.lib import frames, tables
from stock_assets.lib.sources.replay import DAILY_SYMBOLS as SYMBOLS


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


def insert_daily_bars(conn: psycopg.Connection, bars: pl.DataFrame, trade_count: int = 0) -> int:
    """COPY daily bars (symbol, session_date, OHLC, volume at least) into market.bars_daily.

    Columns the frame lacks are filled per the table spec: `trade_count` with the given value,
    the nullable ones (vwap, return_1d, realized_vol) with NULL. Runs in the caller's transaction.
    """
    spec = tables.BARS_DAILY
    missing = [c for c in spec.written if c not in bars.columns]
    fill = [
        pl.lit(trade_count if c == "trade_count" else None, dtype=spec.column(c).dtype).alias(c)
        for c in missing
    ]
    required = [c for c in missing if c != "trade_count" and not spec.column(c).nullable]
    if required:
        raise ValueError(f"daily bars need {required}")
    return frames.copy_frame(conn, spec.name, spec.conform(bars.with_columns(fill)))
