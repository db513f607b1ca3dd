"""Risk domain: cross-symbol analytics of the daily bars, computed on the Spark cluster."""

from datetime import timedelta

import dagster as dg

from stock_assets.defs.kernel import (
    BARS_DAILY,
    ROLLING_BETA,
    session_asset,
    window,
)
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.risk.resources import SparkClusterResource
from stock_assets.lib import tables


class RollingBetaConfig(dg.Config):
    window_days: int = 60  # trailing return observations per estimate


def lookback(window_days: int) -> timedelta:
    """Calendar days before a window that hold `window_days` + 1 sessions (weekends, holidays)."""
    return timedelta(days=window_days * 7 // 5 + 15)


@session_asset(
    key=ROLLING_BETA,
    deps=[BARS_DAILY],
    group_name="risk",
    kinds={"spark", "postgres"},
)
def rolling_beta(
    context: dg.AssetExecutionContext,
    config: RollingBetaConfig,
    pyspark: SparkClusterResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Rolling beta, correlation and volatility of each symbol vs the equal-weight market."""
    from pyspark.sql import functions as F

    from spark import risk
    from spark import warehouse as spark_warehouse

    w = window(context)
    settings = warehouse.settings()
    spark = pyspark.spark_session
    since = w.first_date - lookback(config.window_days)
    bars = (
        spark_warehouse.read_table(spark, settings, tables.BARS_DAILY)
        .where(F.col("session_date").between(since, w.last_date))
        .select("symbol", "session_date", "close")
    )
    returns = risk.daily_returns(bars).cache()
    betas = risk.rolling_beta(returns, risk.equal_weight_market(returns), config.window_days).where(
        F.col("session_date").between(w.first_date, w.last_date)
    )
    written = spark_warehouse.replace_rows(
        betas,
        settings,
        tables.ROLLING_BETA,
        w.first_date,
        w.end.date(),
        {"window_days": config.window_days},
    )
    returns.unpersist()
    with warehouse.connection() as conn:
        summary = conn.execute(
            "SELECT symbol, count(*), avg(beta), min(session_date), max(session_date)"
            " FROM analytics.rolling_beta"
            " WHERE session_date BETWEEN %s AND %s AND window_days = %s"
            " GROUP BY symbol ORDER BY symbol",
            (w.first_date, w.last_date, config.window_days),
        ).fetchall()
    context.log.info(
        f"rolling_beta {w.label()}: {written} rows on {spark.conf.get('spark.master')}"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "window": w.label(),
            "window_days": config.window_days,
            "symbols": [row[0] for row in summary],
            "mean_beta": {row[0]: round(float(row[2]), 4) for row in summary if row[2] is not None},
            "first_session": str(min((row[3] for row in summary), default="")),
            "last_session": str(max((row[4] for row in summary), default="")),
            "spark_master": str(spark.conf.get("spark.master")),
            "spark_app_id": spark.sparkContext.applicationId,
        }
    )
