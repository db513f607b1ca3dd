"""Market domain: splits, cleaned 1-minute bars and daily aggregates, partitioned by NY day."""

from datetime import timedelta

import dagster as dg
import polars as pl
import psycopg

from stock_assets.defs.kernel import (
    BARS_1M,
    BARS_DAILY,
    RAW_TICKS,
    SPLITS,
    session_asset,
    window,
)
from stock_assets.defs.resources import WarehouseResource
from stock_assets.lib import aggregates, calendar, cleaning, frames, retention, tables, universe
from stock_assets.lib import splits as splits_lib

# Freshness is measured in the stream's event time by defs/monitoring/checks.py: a wall-clock
# policy calls replayed data stale forever and any recent run fresh. None = no FreshnessPolicy
# (kept as a name for the analytics assets' freshness_policy= lines).
END_OF_DAY_FRESHNESS = None

# bars_daily reads a few days before its window for each symbol's previous close
RETURN_LOOKBACK = timedelta(days=10)


def read_splits(conn: psycopg.Connection) -> pl.DataFrame:
    return frames.read_window(conn, tables.SPLITS, columns=list(splits_lib.SPLITS_SCHEMA))


@dg.asset(
    key=SPLITS,
    group_name="market",
    kinds={"python", "timescaledb"},
    automation_condition=dg.AutomationCondition.on_missing(),
)
def splits(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Stock splits derived from the reference history's adjusted/unadjusted close ratio."""
    found = splits_lib.reference_splits()
    with warehouse.connection() as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.splits (symbol, ex_date, ratio, source) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (symbol, ex_date) DO UPDATE"
            " SET ratio = EXCLUDED.ratio, source = EXCLUDED.source, updated_at = now()",
            [(s.symbol, s.ex_date, s.ratio, splits_lib.REFERENCE_SOURCE) for s in found],
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(found),
            "splits": [f"{s.symbol} {s.ratio:g}:1 on {s.ex_date}" for s in found],
        }
    )


@session_asset(
    key=BARS_1M,
    deps=[RAW_TICKS, SPLITS],
    group_name="market",
    kinds={"polars", "timescaledb"},
)
def bars_1m(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Cleaned, split-adjusted 1-minute bars of the configured symbols inside NYSE sessions."""
    w = window(context)
    symbols = universe.load_symbols()
    with warehouse.connection() as conn:
        # bars older than the retained raw ticks stay: their ticks are gone, not empty
        retained = retention.raw_ticks_retained_from(conn)
        start = w.end if retained is None else min(max(w.start, retained), w.end)
        ticks = frames.read_window(conn, tables.RAW_TICKS, start, w.end)
        split_table = read_splits(conn)
        sessions = calendar.sessions(w.first_date, w.last_date)
        result = cleaning.clean_ticks(ticks, sessions, split_table, symbols=symbols)
        bars = result.bars
        frames.replace_window(conn, tables.BARS_1M, bars, start, w.end)
    counts = result.counts
    context.log.info(f"bars_1m {w.label()}: {counts}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": bars.height,
            "window": w.label(),
            "kept_before": "" if start == w.start else start.isoformat(),
            "sessions": sessions.height,
            "half_days": int(sessions["half_day"].sum()),
            "ticks_in": counts["input"],
            "ticks_accepted": counts["accepted"],
            "rejected_total": result.rejected,
            **{
                f"rejected_{k}": counts[k]
                for k in (
                    "duplicates",
                    "unknown_symbol",
                    "non_positive",
                    "outside_session",
                    "bad_jump",
                )
            },
            "out_of_order": counts["out_of_order"],
            "symbols": sorted(bars["symbol"].unique().to_list()),
            "first_bar": str(bars["ts"].min()) if bars.height else "",
            "last_bar": str(bars["ts"].max()) if bars.height else "",
        }
    )


@session_asset(
    key=BARS_DAILY,
    deps=[BARS_1M],
    group_name="market",
    kinds={"polars", "timescaledb"},
)
def bars_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Daily session aggregates: OHLCV, VWAP, 1-day return, realized volatility, trade count."""
    w = window(context)
    with warehouse.connection() as conn:
        bars = frames.read_window(conn, tables.BARS_1M, w.start - RETURN_LOOKBACK, w.end)
        bars = bars.with_columns(
            pl.col("ts").dt.convert_time_zone(calendar.TIMEZONE).dt.date().alias("session_date")
        )
        daily = aggregates.daily_bars(bars).filter(
            pl.col("session_date").is_between(w.first_date, w.last_date)
        )
        frames.replace_window(conn, tables.BARS_DAILY, daily, w.start, w.end)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": daily.height,
            "window": w.label(),
            "symbols": sorted(daily["symbol"].unique().to_list()),
            "sessions": daily["session_date"].n_unique(),
            "first_session": str(daily["session_date"].min()) if daily.height else "",
            "last_session": str(daily["session_date"].max()) if daily.height else "",
            "trades": int(daily["trade_count"].sum()) if daily.height else 0,
        }
    )
