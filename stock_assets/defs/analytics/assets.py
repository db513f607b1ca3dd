"""Analytics domain: TA-Lib indicators and trading signals over daily bars, per NY-day partition."""

from datetime import timedelta

import dagster as dg
import polars as pl

from stock_assets.defs.market.assets import BARS_DAILY, END_OF_DAY_FRESHNESS
from stock_assets.defs.market.partitions import session_partitions, window
from stock_assets.defs.resources import WarehouseResource
from stock_assets.lib import frames, indicators, signals

INDICATORS = dg.AssetKey(["analytics", "indicators"])
SIGNALS = dg.AssetKey(["analytics", "signals"])

# Indicators of a window are computed from 450 calendar days (~310 sessions) before it: SMA50
# needs 50 sessions; EMA/RSI/ATR/MACD are recursive and their seed's weight after 300 sessions
# is < 1e-8 relative, so a window's values do not depend on how partitions were batched.
INDICATOR_LOOKBACK = timedelta(days=450)
SIGNAL_LOOKBACK = timedelta(days=10)  # the previous session of each symbol

DAILY_SCHEMA = {
    "symbol": pl.String,
    "session_date": pl.Date,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}
INDICATOR_SCHEMA = {
    "symbol": pl.String,
    "session_date": pl.Date,
    "close": pl.Float64,
    **dict.fromkeys(indicators.INDICATOR_COLUMNS, pl.Float64),
}


@dg.asset(
    key=INDICATORS,
    deps=[BARS_DAILY],
    partitions_def=session_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"talib", "polars", "timescaledb"},
)
def indicators_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """SMA 20/50, EMA 12/26, RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14, OBV per symbol."""
    w = window(context)
    with warehouse.connection() as conn:
        daily = frames.read_frame(
            conn,
            "SELECT symbol, session_date, high, low, close, volume FROM market.bars_daily"
            " WHERE session_date BETWEEN %s AND %s",
            (w.first_date - INDICATOR_LOOKBACK, w.last_date),
            DAILY_SCHEMA,
        )
        result = indicators.compute_indicators(daily).filter(
            pl.col("session_date").is_between(w.first_date, w.last_date)
        )
        with conn.transaction():
            frames.lock_table(conn, "analytics.indicators")
            conn.execute(
                "DELETE FROM analytics.indicators WHERE session_date BETWEEN %s AND %s",
                (w.first_date, w.last_date),
            )
            frames.copy_frame(conn, "analytics.indicators", result)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.height,
            "window": w.label(),
            "symbols": sorted(result["symbol"].unique().to_list()),
            "history_rows_read": daily.height,
            "rows_with_sma_50": result.height - result["sma_50"].null_count(),
        }
    )


@dg.asset(
    key=SIGNALS,
    deps=[INDICATORS],
    partitions_def=session_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"polars", "timescaledb"},
    freshness_policy=END_OF_DAY_FRESHNESS,
)
def signals_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """SMA crossover, RSI mean-reversion, MACD cross and Bollinger breakout signals."""
    w = window(context)
    with warehouse.connection() as conn:
        ind = frames.read_frame(
            conn,
            "SELECT symbol, session_date, close, "
            + ", ".join(indicators.INDICATOR_COLUMNS)
            + " FROM analytics.indicators WHERE session_date BETWEEN %s AND %s",
            (w.first_date - SIGNAL_LOOKBACK, w.last_date),
            INDICATOR_SCHEMA,
        )
        result = signals.generate_signals(ind).filter(
            pl.col("session_date").is_between(w.first_date, w.last_date)
        )
        with conn.transaction():
            frames.lock_table(conn, "analytics.signals")
            conn.execute(
                "DELETE FROM analytics.signals WHERE session_date BETWEEN %s AND %s",
                (w.first_date, w.last_date),
            )
            frames.copy_frame(conn, "analytics.signals", result)
    by_strategy = result.group_by("strategy", "side").len().sort("strategy", "side")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.height,
            "window": w.label(),
            "symbols": sorted(result["symbol"].unique().to_list()),
            "by_strategy": {
                f"{r['strategy']}/{r['side']}": r["len"] for r in by_strategy.to_dicts()
            },
            "latest": result.sort("session_date").tail(5)["reason"].to_list(),
        }
    )
