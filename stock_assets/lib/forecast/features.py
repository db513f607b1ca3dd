"""Point-in-time features and forward-return labels from daily bars and stored indicators.

Every feature of session t is a function of bars and indicators at or before t (rolling windows
and lags only, never a negative shift); the label of horizon h is the log return from t's close to
the close h sessions later (a negative shift: it is the only forward-looking column, and the
walk-forward splits purge it). All features are scale-free (returns, ratios), so a later
split-adjustment of the history does not change them.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

FEATURE_COLUMNS = (
    "ret_1",
    "ret_5",
    "ret_20",
    "vol_20",
    "range_rel",
    "volume_z",
    "rsi",
    "macd_hist_rel",
    "sma20_gap",
    "sma50_gap",
    "bb_pos",
    "atr_rel",
    "dow",
    "month",
)
INDICATOR_INPUTS = (
    "rsi_14",
    "macd_hist",
    "sma_20",
    "sma_50",
    "bb_upper",
    "bb_lower",
    "atr_14",
)
DEFAULT_HORIZONS = (1, 5)


def target_column(horizon: int) -> str:
    return f"target_{horizon}"


def build_features(
    bars: pl.DataFrame, indicators: pl.DataFrame, horizons: Sequence[int] = DEFAULT_HORIZONS
) -> pl.DataFrame:
    """One row per (symbol, session_date): close, FEATURE_COLUMNS and target_<h> per horizon.

    `bars`: symbol, session_date, high, low, close, volume; `indicators`: symbol, session_date and
    INDICATOR_INPUTS (the analytics.indicators table). Rows whose features are incomplete (the
    warm-up of the longest window) are dropped; a target is null where its future is not yet known.
    """
    if any(h < 1 for h in horizons):
        raise ValueError("horizons must be >= 1")
    by = "symbol"
    log_c = pl.col("close").log()
    ind = indicators.select("symbol", "session_date", *INDICATOR_INPUTS)
    df = (
        bars.select("symbol", "session_date", "high", "low", "close", "volume")
        .sort("symbol", "session_date")
        .join(ind, on=["symbol", "session_date"], how="left")
    )
    ret_1 = (log_c - log_c.shift(1)).over(by)
    df = df.with_columns(ret_1.alias("ret_1")).with_columns(
        (log_c - log_c.shift(5)).over(by).alias("ret_5"),
        (log_c - log_c.shift(20)).over(by).alias("ret_20"),
        pl.col("ret_1").rolling_std(20).over(by).alias("vol_20"),
        ((pl.col("high") - pl.col("low")) / pl.col("close")).alias("range_rel"),
        (
            (pl.col("volume") + 1).log() - (pl.col("volume") + 1).log().rolling_mean(20).over(by)
        ).alias("volume_z"),
        (pl.col("rsi_14") / 100 - 0.5).alias("rsi"),
        (pl.col("macd_hist") / pl.col("close")).alias("macd_hist_rel"),
        (pl.col("close") / pl.col("sma_20") - 1).alias("sma20_gap"),
        (pl.col("close") / pl.col("sma_50") - 1).alias("sma50_gap"),
        (
            (pl.col("close") - pl.col("bb_lower")) / (pl.col("bb_upper") - pl.col("bb_lower")) - 0.5
        ).alias("bb_pos"),
        (pl.col("atr_14") / pl.col("close")).alias("atr_rel"),
        pl.col("session_date").dt.weekday().cast(pl.Float64).alias("dow"),
        pl.col("session_date").dt.month().cast(pl.Float64).alias("month"),
        *((log_c.shift(-h) - log_c).over(by).alias(target_column(h)) for h in horizons),
    )
    features = df.select(
        "symbol",
        "session_date",
        "close",
        *(pl.col(c).cast(pl.Float64).fill_nan(None) for c in FEATURE_COLUMNS),
        *(target_column(h) for h in horizons),
    )
    return features.drop_nulls(subset=list(FEATURE_COLUMNS))
