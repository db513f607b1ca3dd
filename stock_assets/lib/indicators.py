"""The stored technical indicators (TA-Lib, driven from polars): one pass over per-symbol slices.

What is stored comes from the strategy engine (stock_assets/lib/trading/strategies.py): the inputs
of every strategy at its default parameters — so the dashboard's overlays are the lines the
default rules compare — plus display-only indicators (EMA of MACD's periods, ATR 14, OBV).

The frame is sorted once by (symbol, session_date); each symbol is a contiguous slice of the
numpy columns, so TA-Lib reads views (no copies) and writes into preallocated output columns that
become the result frame. TA-Lib's lookback NaNs become nulls. Every value at a bar depends only on
the symbol's bars up to it, so a caller that passes each symbol's whole history up to the last
day it stores gets values independent of how runs were batched (OBV is a running total from the
first bar given; EMA-family values depend on their seed).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from stock_assets.lib.trading import strategies as engine

_MACD = engine.MacdCrossParams()
DISPLAY_INDICATORS = (
    engine.EMA(_MACD.fast),
    engine.EMA(_MACD.slow),
    engine.ATR(14),
    engine.OBV,
)
STORED_INDICATORS = tuple(dict.fromkeys((*engine.default_inputs(), *DISPLAY_INDICATORS)))
INDICATOR_COLUMNS = tuple(c for ind in STORED_INDICATORS for c in ind.columns)
if len(set(INDICATOR_COLUMNS)) != len(INDICATOR_COLUMNS):  # e.g. two MACD parameter sets
    raise ValueError(f"stored indicator columns collide: {INDICATOR_COLUMNS}")


def compute_indicators(daily: pl.DataFrame) -> pl.DataFrame:
    """Indicators per (symbol, session_date) of a frame with high, low, close, volume columns."""
    df = daily.select("symbol", "session_date", "high", "low", "close", "volume").sort(
        "symbol", "session_date"
    )
    n = df.height
    out = {name: np.full(n, np.nan) for name in INDICATOR_COLUMNS}
    if n:
        high, low, close, volume = (
            np.ascontiguousarray(df[c].cast(pl.Float64).to_numpy())
            for c in ("high", "low", "close", "volume")
        )
        # run lengths of the sorted symbol column give each symbol's [start, stop) slice
        lengths = df["symbol"].rle().struct.field("len").to_numpy()
        stops = np.cumsum(lengths)
        for start, stop in zip(stops - lengths, stops, strict=True):
            s = slice(start, stop)
            for ind in STORED_INDICATORS:
                values = ind.compute(high[s], low[s], close[s], volume[s])
                for name, column in zip(ind.columns, values, strict=True):
                    out[name][s] = column
    return df.select("symbol", "session_date", "close").with_columns(
        pl.Series(name, out[name], dtype=pl.Float64, nan_to_null=True) for name in INDICATOR_COLUMNS
    )
