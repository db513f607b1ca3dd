"""Indicators: 1000 symbols x 2500 sessions through the indicators asset's code vs TA-Lib direct.

The frame is built from real daily closes (bokeh_sampledata AAPL/IBM/MSFT, 3270 sessions each):
symbol i takes a 2500-session window of one of them at its own offset and scale. "direct" is
TA-Lib called on each symbol's numpy arrays from the same frame (partition_by), its outputs
assembled into a frame: the floor any polars-driven implementation pays. Best of 3 runs each.
Writes bench/results/indicators.json; target ratio (asset rows/s over direct rows/s) >= 0.6.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import talib
from bokeh_sampledata import stocks

from stock_assets.lib.indicators import INDICATOR_COLUMNS, compute_indicators

SYMBOLS, SESSIONS, REPEATS = 1000, 2500, 3
RESULTS = Path(__file__).parent / "results" / "indicators.json"


def build_frame() -> pl.DataFrame:
    sources = [getattr(stocks, s) for s in ("AAPL", "IBM", "MSFT")]
    dates = [date.fromisoformat(d) for d in sources[0]["date"]]
    rng = np.random.default_rng(42)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("high", "low", "close", "volume")}
    names, days = [], []
    for i in range(SYMBOLS):
        src = sources[i % len(sources)]
        offset = int(rng.integers(0, len(src["close"]) - SESSIONS))
        scale = float(rng.uniform(0.2, 5.0))
        window = slice(offset, offset + SESSIONS)
        for k in ("high", "low", "close"):
            columns[k].append(np.asarray(src[k][window], dtype=np.float64) * scale)
        columns["volume"].append(np.asarray(src["volume"][window], dtype=np.float64))
        names.append(np.full(SESSIONS, f"S{i:04d}"))
        days.append(np.asarray(dates[:SESSIONS], dtype="datetime64[D]"))
    frame = pl.DataFrame(
        {
            "symbol": np.concatenate(names),
            "session_date": np.concatenate(days),
            **{k: np.concatenate(v) for k, v in columns.items()},
        }
    )
    return frame.sample(fraction=1.0, shuffle=True, seed=1)  # as read from a table: unordered


def direct(frame: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for part in frame.sort("symbol", "session_date").partition_by("symbol", maintain_order=True):
        h, lo, c, v = (part[k].to_numpy() for k in ("high", "low", "close", "volume"))
        macd, signal, hist = talib.MACD(c, 12, 26, 9)
        upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, talib.MA_Type.SMA)
        values = [
            talib.SMA(c, 20), talib.SMA(c, 50), talib.EMA(c, 12), talib.EMA(c, 26),
            talib.RSI(c, 14), macd, signal, hist, upper, middle, lower,
            talib.ATR(h, lo, c, 14), talib.OBV(c, v),
        ]  # fmt: skip
        parts.append(
            part.select("symbol", "session_date", "close").with_columns(
                pl.Series(n, x, nan_to_null=True)
                for n, x in zip(INDICATOR_COLUMNS, values, strict=True)
            )
        )
    return pl.concat(parts)


def best_of(
    fn: Callable[[pl.DataFrame], pl.DataFrame], frame: pl.DataFrame
) -> tuple[float, pl.DataFrame]:
    best, out = float("inf"), None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fn(frame)
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def main() -> None:
    frame = build_frame()
    rows = frame.height
    asset_s, ours = best_of(compute_indicators, frame)
    direct_s, theirs = best_of(direct, frame)
    ours, theirs = ours.sort("symbol", "session_date"), theirs.sort("symbol", "session_date")
    assert ours.equals(theirs), "the asset's indicators differ from TA-Lib's"
    result = {
        "symbols": SYMBOLS,
        "sessions": SESSIONS,
        "rows": rows,
        "asset_seconds": round(asset_s, 4),
        "direct_talib_seconds": round(direct_s, 4),
        "asset_rows_per_s": round(rows / asset_s),
        "direct_talib_rows_per_s": round(rows / direct_s),
        "ratio": round(direct_s / asset_s, 3),
        "target": 0.6,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"indicators: asset {result['asset_rows_per_s']:,} rows/s, TA-Lib direct "
        f"{result['direct_talib_rows_per_s']:,} rows/s, ratio {result['ratio']} (target >= 0.6)"
    )


if __name__ == "__main__":
    main()
