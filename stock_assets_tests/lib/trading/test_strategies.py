"""Strategies: defaults reproduce the signals asset bar for bar; parameters and targets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import talib

from stock_assets.lib import indicators, signals
from stock_assets.lib.trading import strategies
from stock_assets_tests.lib.trading.data import real_daily_bars, symbol_bars


def test_default_events_equal_the_signals_asset_on_real_data() -> None:
    daily = real_daily_bars()
    expected = signals.generate_signals(indicators.compute_indicators(daily))
    assert expected.height > 500
    rows = []
    for df in daily.partition_by("symbol", maintain_order=True):
        for name in strategies.STRATEGY_NAMES:
            events = strategies.strategy_events(name, df["close"])
            fired = df.select("symbol", "session_date").with_columns(
                pl.lit(name).alias("strategy"), pl.Series("event", events)
            )
            rows.append(fired.filter(pl.col("event") != 0))
    ours = pl.concat(rows).select(
        "symbol",
        "session_date",
        "strategy",
        pl.when(pl.col("event") > 0).then(pl.lit("buy")).otherwise(pl.lit("sell")).alias("side"),
    )
    key = ["symbol", "session_date", "strategy"]
    assert ours.sort(key).equals(expected.select(*key, "side").sort(key))


def test_sma_crossover_by_hand() -> None:
    close = np.array([5, 4, 3, 2, 3, 4, 5, 6, 5, 4, 3, 2], dtype=float)
    params = strategies.SmaCrossoverParams(fast=2, slow=4)
    spread = talib.SMA(close, 2) - talib.SMA(close, 4)
    events = strategies.sma_crossover(close, params)
    # SMA4 exists from bar 3; spread > 0 first at bar 5 (a buy), < 0 first at bar 9 (a sell)
    assert spread[4] < 0 < spread[5] and spread[8] > 0 > spread[9]
    assert np.flatnonzero(events).tolist() == [5, 9]
    assert events[5] == 1 and events[9] == -1


def test_custom_parameters_change_the_events() -> None:
    close = symbol_bars("AAPL")["close"]
    default = strategies.strategy_events("sma_crossover", close)
    fast = strategies.strategy_events("sma_crossover", close, strategies.SmaCrossoverParams(5, 20))
    assert np.count_nonzero(fast) > np.count_nonzero(default) > 0
    wide = strategies.RsiMeanReversionParams(oversold=20, overbought=80)
    assert np.count_nonzero(strategies.rsi_mean_reversion(close, wide)) < np.count_nonzero(
        strategies.rsi_mean_reversion(close)
    )


@pytest.mark.parametrize(
    ("params_type", "bad"),
    [
        (strategies.SmaCrossoverParams, {"fast": 50, "slow": 20}),
        (strategies.RsiMeanReversionParams, {"oversold": 80, "overbought": 70}),
        (strategies.MacdCrossParams, {"fast": 1}),
        (strategies.BollingerBreakoutParams, {"nbdev": 0}),
    ],
)
def test_invalid_parameters_are_rejected(params_type, bad) -> None:
    with pytest.raises(ValueError):
        params_type(**bad)


def test_unknown_strategy_and_wrong_params_type() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        strategies.strategy_events("moon_phase", [1.0, 2.0])
    with pytest.raises(TypeError):
        strategies.strategy_events("macd_cross", [1.0, 2.0], strategies.SmaCrossoverParams())


def test_target_position_holds_the_last_event() -> None:
    events = np.array([0, 1, 0, 1, -1, 0, 0, 1, 0], dtype=np.int8)
    assert strategies.target_position(events, long_only=False).tolist() == [
        0, 1, 1, 1, -1, -1, -1, 1, 1,
    ]  # fmt: skip
    assert strategies.target_position(events, long_only=True).tolist() == [
        0, 1, 1, 1, 0, 0, 0, 1, 1,
    ]  # fmt: skip
