"""Analytics domain: TA-Lib indicators and trading signals over daily bars, per NY-day partition."""

import dagster as dg
import polars as pl

from stock_assets.defs.kernel import (
    BARS_DAILY,
    INDICATORS,
    SIGNALS,
    session_asset,
    window,
)
from stock_assets.defs.market.assets import END_OF_DAY_FRESHNESS
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import frames, indicators, signals, tables
from stock_assets.lib.trading import strategies

# Indicators and signals of a window are computed from each symbol's whole history up to the
# window's last day: a value then depends only on the bars up to its day, never on how runs were
# batched (OBV is a running total from the symbol's first bar; the EMA family's seed is its
# first bars). Reading the history costs O(universe x history) rows per run: measured in
# bench/indicators.py.
DAILY_COLUMNS = ("symbol", "session_date", "high", "low", "close", "volume")  # indicator inputs
CLOSE_COLUMNS = ("symbol", "session_date", "close")  # signal inputs


@session_asset(
    key=INDICATORS,
    deps=[BARS_DAILY],
    group_name="analytics",
    kinds={"talib", "polars", "timescaledb"},
)
def indicators_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """SMA 20/50, EMA 12/26, RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14, OBV per symbol."""
    w = window(context)
    with warehouse.connection() as conn:
        daily = frames.read_window(conn, tables.BARS_DAILY, end=w.end, columns=DAILY_COLUMNS)
        result = indicators.compute_indicators(daily).filter(
            pl.col("session_date").is_between(w.first_date, w.last_date)
        )
        frames.replace_window(conn, tables.INDICATORS, result, w.start, w.end)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.height,
            "window": w.label(),
            "symbols": sorted(result["symbol"].unique().to_list()),
            "history_rows_read": daily.height,
            "rows_with_sma_50": result.height - result["sma_50"].null_count(),
        }
    )


@session_asset(
    key=SIGNALS,
    deps=[BARS_DAILY],
    group_name="analytics",
    kinds={"talib", "polars", "timescaledb"},
    freshness_policy=END_OF_DAY_FRESHNESS,
)
def signals_asset(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trading_config: TradingConfigResource,
) -> dg.MaterializeResult:
    """Signals of every configured (symbol, strategy, parameters) (config/trading.json)."""
    w = window(context)
    book = trading_config.book(trading_config.settings())
    symbols = sorted({e.symbol for e in book})
    with warehouse.connection() as conn:
        closes = frames.read_window(
            conn, tables.BARS_DAILY, end=w.end, symbols=symbols, columns=CLOSE_COLUMNS
        )
        result = signals.generate_signals(closes, book).filter(
            pl.col("session_date").is_between(w.first_date, w.last_date)
        )
        frames.replace_window(conn, tables.SIGNALS, result, w.start, w.end)
    by_strategy = result.group_by("strategy", "side").len().sort("strategy", "side")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.height,
            "window": w.label(),
            "symbols": sorted(result["symbol"].unique().to_list()),
            "configured": [
                f"{e.symbol} {e.strategy} {strategies.params_key(e.params)}" for e in book
            ],
            "history_rows_read": closes.height,
            "by_strategy": {
                f"{r['strategy']}/{r['side']}": r["len"] for r in by_strategy.to_dicts()
            },
            "latest": result.sort("session_date").tail(5)["reason"].to_list(),
        }
    )
