"""Stock splits: derived from a reference series' adjusted/unadjusted close ratio, applied to bars.

A split shows up as a step in adj_close/close between two sessions by a "nice" ratio (2, 3, 3/2,
...). Price gaps are not used: AAPL's -47 % on 2000-09-29 is a crash, not a split. Cash dividends
also step the ratio but by a few percent (MSFT's $3 special dividend on 2004-11-15 is x1.11),
hence the minimum step and the nice-ratio tolerance below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

import polars as pl

MIN_STEP = 1.2  # smallest adj/close ratio step treated as a split (or 1/MIN_STEP for reverse)
RATIO_TOLERANCE = 0.02  # relative distance to the nearest p/q ratio with q <= 4
REFERENCE_SOURCE = "bokeh_sampledata:adj_close/close"

SPLITS_SCHEMA = {"symbol": pl.String, "ex_date": pl.Date, "ratio": pl.Float64}


@dataclass(frozen=True)
class Split:
    symbol: str
    ex_date: date  # first session trading on the new basis
    ratio: float  # new shares per old share (2.0 for a 2-for-1)


def derive_splits(
    symbol: str, dates: Sequence[date], close: Sequence[float], adj_close: Sequence[float]
) -> list[Split]:
    """Splits implied by steps in adj_close/close between consecutive sessions."""
    found = []
    for i in range(1, len(dates)):
        step = (adj_close[i] / close[i]) / (adj_close[i - 1] / close[i - 1])
        if 1 / MIN_STEP < step < MIN_STEP:
            continue
        nice = Fraction(step).limit_denominator(4)
        if abs(float(nice) / step - 1) <= RATIO_TOLERANCE:
            found.append(Split(symbol, dates[i], float(nice)))
    return found


def reference_splits() -> list[Split]:
    """Splits in the bundled real history (bokeh_sampledata, Quandl WIKI, 2000-2013)."""
    from bokeh_sampledata import stocks

    from stock_assets.lib.sources.replay import DAILY_SYMBOLS  # the dataset's symbols

    found: list[Split] = []
    for symbol in DAILY_SYMBOLS:
        data = getattr(stocks, symbol)
        dates = [date.fromisoformat(d) for d in data["date"]]
        found += derive_splits(symbol, dates, data["close"], data["adj_close"])
    return found


def frame(splits: Sequence[Split]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [s.symbol for s in splits],
            "ex_date": [s.ex_date for s in splits],
            "ratio": [s.ratio for s in splits],
        },
        schema=SPLITS_SCHEMA,
    )


def adjustment_factors(keys: pl.DataFrame, splits: pl.DataFrame) -> pl.Series:
    """Per row of keys (symbol, session_date): product of ratios of splits with ex_date > date.

    Dividing prices (and multiplying volumes) by it puts history on today's share basis.
    """
    if splits.is_empty() or keys.is_empty():
        return pl.Series("factor", [1.0] * keys.height, dtype=pl.Float64)
    # suffix product per symbol: factor for any date before ex_date[i] = prod(ratio[i:])
    cumulative = (
        splits.sort("symbol", "ex_date", descending=[False, True])
        .with_columns(pl.col("ratio").cum_prod().over("symbol").alias("factor"))
        .select("symbol", "ex_date", "factor")
        .sort("ex_date")
    )
    probe = keys.select(
        pl.int_range(pl.len()).alias("_row"),
        pl.col("symbol"),
        (pl.col("session_date") + pl.duration(days=1)).alias("_next"),
    ).sort("_next")
    joined = probe.join_asof(
        cumulative,
        left_on="_next",
        right_on="ex_date",
        by="symbol",
        strategy="forward",
        check_sortedness=False,  # both sides are sorted by the key globally, hence per symbol
    )
    return joined.sort("_row")["factor"].fill_null(1.0)
