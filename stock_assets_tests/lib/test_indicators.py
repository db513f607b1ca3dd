"""Indicators equal TA-Lib's own output on the same real series; signals are well-formed."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import psycopg
import pytest
import talib
from bokeh_sampledata import stocks

from stock_assets.lib import aggregates, indicators, signals

SYMBOLS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    frames = []
    for symbol in SYMBOLS:
        d = getattr(stocks, symbol)
        frames.append(
            pl.DataFrame(
                {
                    "symbol": symbol,
                    "session_date": [date.fromisoformat(x) for x in d["date"]],
                    "high": d["high"],
                    "low": d["low"],
                    "close": d["close"],
                    "volume": [float(v) for v in d["volume"]],
                }
            )
        )
    # shuffled: the computation must not depend on input order
    return pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=3)


def test_indicators_equal_talib_per_symbol(daily: pl.DataFrame) -> None:
    result = indicators.compute_indicators(daily)
    for symbol in SYMBOLS:
        src = daily.filter(pl.col("symbol") == symbol).sort("session_date")
        got = result.filter(pl.col("symbol") == symbol).sort("session_date")
        h, lo, c, v = (src[col].to_numpy() for col in ("high", "low", "close", "volume"))
        macd, signal, hist = talib.MACD(c, 12, 26, 9)
        upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
        expected = {
            "sma_20": talib.SMA(c, 20),
            "sma_50": talib.SMA(c, 50),
            "ema_12": talib.EMA(c, 12),
            "ema_26": talib.EMA(c, 26),
            "rsi_14": talib.RSI(c, 14),
            "macd": macd,
            "macd_signal": signal,
            "macd_hist": hist,
            "bb_upper": upper,
            "bb_middle": middle,
            "bb_lower": lower,
            "atr_14": talib.ATR(h, lo, c, 14),
            "obv": talib.OBV(c, v),
        }
        for name, values in expected.items():
            column = got[name].fill_null(np.nan).to_numpy()
            np.testing.assert_array_equal(column, values, err_msg=f"{symbol} {name}")


def test_signals_are_well_formed(daily: pl.DataFrame) -> None:
    result = signals.generate_signals(indicators.compute_indicators(daily))
    assert set(result["strategy"].unique()) == {
        "sma_crossover",
        "rsi_mean_reversion",
        "macd_cross",
        "bollinger_breakout",
    }
    assert result["strength"].is_between(0, 1).all()
    assert result.select(pl.struct("symbol", "session_date", "strategy").is_unique().all()).item()
    sma_up = result.filter((pl.col("strategy") == "sma_crossover") & (pl.col("side") == "buy"))[
        "reason"
    ][0]
    assert sma_up.startswith("SMA20 crossed above SMA50 (")
    left, right = sma_up[sma_up.index("(") + 1 : -1].split(" > ")
    assert float(left) > float(right) or float(left) == float(right)


def test_daily_aggregates_from_minute_bars() -> None:
    ts = pl.datetime_range(
        pl.datetime(2026, 7, 29, 13, 30, time_zone="UTC"),
        pl.datetime(2026, 7, 29, 13, 32, time_zone="UTC"),
        "1m",
        eager=True,
    )
    bars = pl.DataFrame(
        {
            "symbol": "AAPL",
            "ts": ts,
            "open": [10.0, 11.0, 12.0],
            "high": [11.0, 12.5, 12.0],
            "low": [9.5, 11.0, 11.0],
            "close": [11.0, 12.0, 11.0],
            "volume": [100.0, 300.0, 0.0],
            "vwap": [10.5, 11.5, 11.0],
            "trade_count": [2, 3, 1],
            "session_date": date(2026, 7, 29),
        }
    )
    row = aggregates.daily_bars(bars).row(0, named=True)
    assert (row["open"], row["high"], row["low"], row["close"]) == (10.0, 12.5, 9.5, 11.0)
    assert row["volume"] == 400.0 and row["trade_count"] == 6
    assert row["vwap"] == pytest.approx((10.5 * 100 + 11.5 * 300) / 400)
    r1, r2 = np.log(12 / 11), np.log(11 / 12)
    assert row["realized_vol"] == pytest.approx(np.sqrt(r1**2 + r2**2))
    assert row["return_1d"] is None


def test_the_stored_columns_are_the_tables(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'analytics' AND table_name = 'indicators'"
    ).fetchall()
    table = {r[0] for r in rows} - {"symbol", "session_date", "close"}
    assert table == set(indicators.INDICATOR_COLUMNS)
    assert len(indicators.INDICATOR_COLUMNS) == len(table)
