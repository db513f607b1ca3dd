"""Analytics checks (blocking, scoped to the run's window): indicator ranges, signal references."""

import dagster as dg

from stock_assets.defs.kernel import INDICATORS, SIGNALS, session_partitions, window
from stock_assets.defs.resources import WarehouseResource

BAND_TOLERANCE = 1e-9  # TA-Lib's bands can differ from the middle in the last bits


@dg.asset_check(
    asset=INDICATORS,
    blocking=True,
    partitions_def=session_partitions,
    description="RSI within [0, 100]; Bollinger lower <= middle <= upper; ATR, SMA positive.",
)
def indicators_in_range(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    w = window(context)
    with warehouse.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE rsi_14 < 0 OR rsi_14 > 100),"
            " count(*) FILTER (WHERE bb_lower > bb_middle + %(tol)s * abs(bb_middle)"
            "   OR bb_middle > bb_upper + %(tol)s * abs(bb_middle)),"
            " count(*) FILTER (WHERE atr_14 < 0 OR sma_20 <= 0 OR sma_50 <= 0),"
            " count(*)"
            " FROM analytics.indicators WHERE session_date BETWEEN %(first)s AND %(last)s",
            {"tol": BAND_TOLERANCE, "first": w.first_date, "last": w.last_date},
        ).fetchone()
    rsi, bands, other, rows = row if row else (0, 0, 0, 0)
    return dg.AssetCheckResult(
        passed=rsi == 0 and bands == 0 and other == 0,
        metadata={
            "rows": rows,
            "rsi_out_of_range": rsi,
            "bands_out_of_order": bands,
            "negative_atr_or_sma": other,
        },
    )


@dg.asset_check(
    asset=SIGNALS,
    blocking=True,
    partitions_def=session_partitions,
    description="Every signal references an existing daily bar with the same close price.",
)
def signals_reference_bars(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    w = window(context)
    with warehouse.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE b.symbol IS NULL),"
            " count(*) FILTER (WHERE b.symbol IS NOT NULL AND b.close <> s.price), count(*)"
            " FROM analytics.signals s LEFT JOIN market.bars_daily b"
            "   ON b.symbol = s.symbol AND b.session_date = s.session_date"
            " WHERE s.session_date BETWEEN %s AND %s",
            (w.first_date, w.last_date),
        ).fetchone()
    orphans, price_mismatch, rows = row if row else (0, 0, 0)
    return dg.AssetCheckResult(
        passed=orphans == 0 and price_mismatch == 0,
        metadata={"signals": rows, "without_bar": orphans, "price_mismatch": price_mismatch},
    )


analytics_checks = [indicators_in_range, signals_reference_bars]
