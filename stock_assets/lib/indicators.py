"""Technical indicators with TA-Lib, driven from polars: one pass over contiguous per-symbol slices.

The frame is sorted once by (symbol, session_date); each symbol is a contiguous slice of the
numpy columns, so TA-Lib reads views (no copies) and writes into preallocated output columns that
become the result frame. TA-Lib's lookback NaNs become nulls.
"""

from __future__ import annotations

import numpy as np
import polars as pl

INDICATOR_COLUMNS = (
    "sma_20",
    "sma_50",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "obv",
)


def _compute_slice(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> dict[str, np.ndarray]:
    import talib

    macd, macd_signal, macd_hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    bb_upper, bb_middle, bb_lower = talib.BBANDS(
        close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA
    )
    return {
        "sma_20": talib.SMA(close, timeperiod=20),
        "sma_50": talib.SMA(close, timeperiod=50),
        "ema_12": talib.EMA(close, timeperiod=12),
        "ema_26": talib.EMA(close, timeperiod=26),
        "rsi_14": talib.RSI(close, timeperiod=14),
        "macd": macd,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
        "atr_14": talib.ATR(high, low, close, timeperiod=14),
        "obv": talib.OBV(close, volume),
    }


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
            values = _compute_slice(
                high[start:stop], low[start:stop], close[start:stop], volume[start:stop]
            )
            for name, column in values.items():
                out[name][start:stop] = column
    return df.select("symbol", "session_date", "close").with_columns(
        pl.Series(name, out[name], dtype=pl.Float64, nan_to_null=True) for name in INDICATOR_COLUMNS
    )
