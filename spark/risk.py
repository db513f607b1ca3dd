"""Cross-symbol risk analytics as pure DataFrame → DataFrame transforms (batch, on the cluster).

Daily simple returns close/close_prev - 1 per symbol (consecutive rows of that symbol); the
market is the equal-weight mean of the returns of the symbols present that day; beta, correlation
and annualised volatility over the trailing `window_days` return observations of each symbol,
emitted only once the window is full.
"""

import math

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from stock_assets.lib import tables

TRADING_DAYS_PER_YEAR = 252
BETA_COLUMNS = tables.ROLLING_BETA.names


def daily_returns(bars: DataFrame) -> DataFrame:
    """(symbol, session_date, close) → (symbol, session_date, ret), from a symbol's 2nd day."""
    previous = F.lag("close").over(Window.partitionBy("symbol").orderBy("session_date"))
    return bars.select(
        "symbol", "session_date", (F.col("close") / previous - 1).alias("ret")
    ).where(F.col("ret").isNotNull())


def equal_weight_market(returns: DataFrame) -> DataFrame:
    """(session_date, market_return, n_symbols): the mean return of the symbols that traded."""
    return returns.groupBy("session_date").agg(
        F.avg("ret").alias("market_return"), F.count(F.lit(1)).alias("n_symbols")
    )


def rolling_beta(returns: DataFrame, market: DataFrame, window_days: int) -> DataFrame:
    """BETA_COLUMNS per (symbol, session_date) over the trailing `window_days` returns."""
    if window_days < 2:
        raise ValueError("window_days must be at least 2")
    trailing = (
        Window.partitionBy("symbol").orderBy("session_date").rowsBetween(-(window_days - 1), 0)
    )
    r, m = F.col("ret"), F.col("market_return")
    joined = returns.join(market.select("session_date", "market_return"), "session_date")
    return (
        joined.select(
            "symbol",
            "session_date",
            F.lit(window_days).alias("window_days"),
            (F.covar_samp(r, m).over(trailing) / F.var_samp(m).over(trailing)).alias("beta"),
            F.corr(r, m).over(trailing).alias("correlation"),
            (F.stddev_samp(r).over(trailing) * math.sqrt(TRADING_DAYS_PER_YEAR)).alias(
                "volatility"
            ),
            "market_return",
            F.count(r).over(trailing).cast("int").alias("n_obs"),
        )
        .where(F.col("n_obs") == window_days)
        .select(*BETA_COLUMNS)
    )
