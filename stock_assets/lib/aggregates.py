"""1-minute bars → daily session aggregates: OHLCV, VWAP, return, realized volatility, trades."""

from __future__ import annotations

import polars as pl

from stock_assets.lib import tables

DAILY_COLUMNS = tables.BARS_DAILY.names


def daily_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """One row per (symbol, session_date) of split-adjusted 1-minute bars.

    return_1d is close over the previous session's close present in `bars` (pass a few sessions
    of lookback); realized_vol is sqrt(sum of squared 1-minute log returns) within the session,
    null with fewer than two bars.
    """
    log_return = (pl.col("close") / pl.col("close").shift(1)).log().over("symbol", "session_date")
    daily = (
        bars.sort("symbol", "ts")
        .with_columns(log_return.alias("_r"), (pl.col("vwap") * pl.col("volume")).alias("_pv"))
        .group_by("symbol", "session_date", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.col("_pv").sum().alias("_pv"),
            pl.col("vwap").mean().alias("_mean_vwap"),
            pl.col("trade_count").sum().cast(pl.Int32),
            pl.when(pl.col("_r").count() >= 1)
            .then((pl.col("_r") ** 2).sum().sqrt())
            .alias("realized_vol"),
        )
    )
    return (
        daily.with_columns(
            pl.when(pl.col("volume") > 0)
            .then(pl.col("_pv") / pl.col("volume"))
            .otherwise(pl.col("_mean_vwap"))
            .alias("vwap"),
            (pl.col("close") / pl.col("close").shift(1) - 1).over("symbol").alias("return_1d"),
        )
        .select(DAILY_COLUMNS)
        .sort("symbol", "session_date")
    )
