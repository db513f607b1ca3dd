"""The strategy engine: signal rows per parameters, rules checked independently, targets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import talib

from stock_assets.lib import indicators, signals
from stock_assets.lib.migrations import MIGRATIONS_DIR as MIGRATIONS
from stock_assets.lib.trading import strategies
from stock_assets.lib.trading.strategies import STRATEGY_NAMES
from stock_assets_tests.lib.trading.data import real_daily_bars, symbol_bars


def reference_default_signals(ind: pl.DataFrame) -> pl.DataFrame:
    """The default rules written independently over the stored indicator columns (polars)."""
    df = ind.sort("symbol", "session_date")

    def prev(c: str) -> pl.Expr:
        return pl.col(c).shift(1).over("symbol")

    spread, prev_spread = pl.col("sma_20") - pl.col("sma_50"), prev("sma_20") - prev("sma_50")
    rsi, prev_rsi = pl.col("rsi_14"), prev("rsi_14")
    hist, prev_hist = pl.col("macd_hist"), prev("macd_hist")
    close, prev_close = pl.col("close"), prev("close")
    rules = {
        "sma_crossover": ((spread > 0) & (prev_spread <= 0), (spread < 0) & (prev_spread >= 0)),
        "rsi_mean_reversion": ((rsi < 30) & (prev_rsi >= 30), (rsi > 70) & (prev_rsi <= 70)),
        "macd_cross": ((hist > 0) & (prev_hist <= 0), (hist < 0) & (prev_hist >= 0)),
        "bollinger_breakout": (
            (close > pl.col("bb_upper")) & (prev_close <= prev("bb_upper")),
            (close < pl.col("bb_lower")) & (prev_close >= prev("bb_lower")),
        ),
    }
    # flags first: a shift over the symbol must not see filtered rows
    flags = df.with_columns(
        pl.when(buy).then(pl.lit("buy")).when(sell).then(pl.lit("sell")).alias(name)
        for name, (buy, sell) in rules.items()
    )
    return pl.concat(
        flags.filter(pl.col(name).is_not_null()).select(
            "symbol", "session_date", pl.lit(name).alias("strategy"), pl.col(name).alias("side")
        )
        for name in rules
    )


def test_default_signals_equal_the_rules_over_the_stored_indicators() -> None:
    daily = real_daily_bars()
    ours = signals.generate_signals(daily)
    expected = reference_default_signals(indicators.compute_indicators(daily))
    assert expected.height > 500
    key = ["symbol", "session_date", "strategy"]
    assert ours.select(*key, "side").sort(key).equals(expected.sort(key))
    defaults = {n: strategies.params_key(strategies.default_params(n)) for n in STRATEGY_NAMES}
    assert ours.select(
        (pl.col("params") == pl.col("strategy").replace_strict(defaults)).all()
    ).item()


def test_signal_rows_carry_their_parameters_and_match_the_engine() -> None:
    msft = symbol_bars("MSFT")
    custom = strategies.SmaCrossoverParams(10, 30)
    book = [signals.Instance("MSFT", "sma_crossover", custom)]
    rows = signals.generate_signals(msft, book)
    events = strategies.strategy_events("sma_crossover", msft["close"], custom)
    fired = msft["session_date"].to_numpy()[np.flatnonzero(events)]
    assert rows["session_date"].to_numpy().tolist() == fired.tolist()
    assert rows["side"].to_list() == ["buy" if e > 0 else "sell" for e in events[events != 0]]
    assert set(rows["params"]) == {'{"fast":10,"slow":30}'}
    assert rows["reason"].str.starts_with("SMA10 crossed").all()
    assert rows["strength"].is_between(0, 1).all()
    default = signals.generate_signals(msft, signals.default_book(["MSFT"]))
    assert set(default.filter(pl.col("strategy") == "sma_crossover")["session_date"]) != set(
        rows["session_date"]
    )


def test_params_key_is_canonical_and_parses_back() -> None:
    params = strategies.RsiMeanReversionParams(period=9, oversold=25)
    key = strategies.params_key(params)
    assert key == '{"overbought":70.0,"oversold":25,"period":9}'
    assert strategies.parse_params("rsi_mean_reversion", key) == params
    with pytest.raises(TypeError):
        strategies.parse_params("macd_cross", '{"period":9}')


def test_the_migration_labels_old_rows_with_the_default_parameters() -> None:
    sql = (MIGRATIONS / "0012_signal_params.sql").read_text()
    for name in STRATEGY_NAMES:
        assert (
            f"WHEN '{name}' THEN '{strategies.params_key(strategies.default_params(name))}'" in sql
        )


def test_stored_indicators_hold_every_default_strategy_input() -> None:
    for strategy in strategies.STRATEGIES.values():
        for ind in strategy.inputs(strategy.default_params()):
            assert ind in indicators.STORED_INDICATORS
            assert set(ind.columns) <= set(indicators.INDICATOR_COLUMNS)


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
