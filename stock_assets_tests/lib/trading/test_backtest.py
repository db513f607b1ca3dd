"""The backtester's conventions by hand-computed cases, an independent loop, and metric formulas."""

from __future__ import annotations

import math
import statistics

import numpy as np
import polars as pl
import pytest

from stock_assets.lib.trading import strategies
from stock_assets.lib.trading.backtest import (
    BacktestConfig,
    BacktestResult,
    Bars,
    backtest_strategy,
    run_backtest,
)
from stock_assets_tests.lib.trading.data import symbol_bars

E0 = 100_000.0


def bars(o, h=None, lo=None, c=None) -> Bars:
    o = np.asarray(o, dtype=float)
    h = o if h is None else np.asarray(h, dtype=float)
    lo = o if lo is None else np.asarray(lo, dtype=float)
    c = o if c is None else np.asarray(c, dtype=float)
    return Bars(o, np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c)), c)


def run(b: Bars, target, **cfg) -> BacktestResult:
    return run_backtest(b, np.asarray(target, dtype=np.int8), BacktestConfig(**cfg))


def only_trade(r: BacktestResult) -> dict:
    assert r.trades.height == 1, r.trades
    return r.trades.row(0, named=True)


# --- conventions, by hand -------------------------------------------------------------------


def test_signal_on_close_fills_at_next_open() -> None:
    r = run(bars([10, 11, 12, 13], c=[10.5, 11.5, 12.5, 13.5]), [1, 0, 0, 0])
    t = only_trade(r)
    qty = E0 / 11
    assert (t["entry_index"], t["entry_price"], t["quantity"]) == (1, 11.0, pytest.approx(qty))
    assert (t["exit_index"], t["exit_price"], t["exit_reason"]) == (2, 12.0, "signal")
    # bar 0: flat; bar 1: long, marked at 11.5; bar 2: sold at the open, flat at the close
    np.testing.assert_allclose(r.equity, [E0, qty * 11.5, qty * 12, qty * 12], rtol=1e-15)
    np.testing.assert_allclose(r.quantity, [0, qty, 0, 0])


def test_last_bar_signal_is_never_executed() -> None:
    r = run(bars([10, 11, 12]), [0, 0, 1])
    assert r.trades.height == 0
    np.testing.assert_array_equal(r.equity, [E0] * 3)


def test_commission_is_a_fraction_of_traded_value_on_both_fills() -> None:
    r = run(bars([10, 11, 12, 13]), [1, 0, 0, 0], commission=0.01)
    t = only_trade(r)
    qty = E0 / (11 * 1.01)  # entry outlay incl. commission = all the cash
    assert t["quantity"] == pytest.approx(qty, rel=1e-15)
    assert r.cash[1] == pytest.approx(0.0, abs=1e-9)
    final = qty * 12 * 0.99
    assert r.equity[-1] == pytest.approx(final, rel=1e-15)
    assert t["commission"] == pytest.approx(0.01 * qty * (11 + 12), rel=1e-15)
    assert t["pnl"] == pytest.approx(final - E0, rel=1e-12)
    assert t["pnl"] == pytest.approx(qty * (12 - 11) - t["commission"], rel=1e-12)


def test_fixed_fraction_sizing() -> None:
    r = run(
        bars([10, 20, 30, 30]),
        [1, 0, 0, 0],
        sizing="fixed_fraction",
        fraction=0.25,
        commission=0.001,
    )
    qty = 0.25 * E0 / (20 * 1.001)
    assert only_trade(r)["quantity"] == pytest.approx(qty, rel=1e-15)
    assert r.cash[1] == pytest.approx(0.75 * E0, rel=1e-15)
    assert r.equity[-1] == pytest.approx(0.75 * E0 + qty * 30 * 0.999, rel=1e-15)


def test_all_in_ignores_fraction() -> None:
    r = run(bars([10, 20, 30]), [1, 0, 0], sizing="all_in", fraction=0.25)
    assert only_trade(r)["quantity"] == pytest.approx(E0 / 20)


def test_short_pnl_and_its_commission() -> None:
    r = run(bars([100, 100, 90, 80]), [-1, 0, 0, 0], long_only=False, commission=0.001)
    t = only_trade(r)
    qty = E0 / (100 * 1.001)
    assert t["direction"] == "short" and t["quantity"] == pytest.approx(qty, rel=1e-15)
    # proceeds credited at entry, the buy-back paid at bar 2's open
    assert r.cash[1] == pytest.approx(E0 + qty * 100 * 0.999, rel=1e-15)
    assert r.equity[1] == pytest.approx(E0 + qty * (100 * 0.999 - 100), rel=1e-12)
    final = E0 + qty * 100 * 0.999 - qty * 90 * 1.001
    assert r.equity[-1] == pytest.approx(final, rel=1e-15)
    assert t["pnl"] == pytest.approx(qty * (100 - 90) - 0.001 * qty * 190, rel=1e-12)


def test_long_only_ignores_short_targets() -> None:
    r = run(bars([100, 100, 90, 80]), [-1, -1, 0, 0], long_only=True)
    assert r.trades.height == 0


def test_reversal_is_an_exit_and_an_entry_at_the_same_open() -> None:
    r = run(bars([10, 10, 12, 9, 9]), [1, -1, -1, 0, 0], long_only=False, commission=0.01)
    assert r.trades["direction"].to_list() == ["long", "short"]
    long_qty = E0 / (10 * 1.01)
    cash_after = long_qty * 12 * 0.99
    short_qty = cash_after / (12 * 1.01)
    assert r.trades["exit_index"][0] == r.trades["entry_index"][1] == 2
    assert r.trades["quantity"][1] == pytest.approx(short_qty, rel=1e-15)
    final = cash_after + short_qty * 12 * 0.99 - short_qty * 9 * 1.01
    assert r.equity[-1] == pytest.approx(final, rel=1e-14)


def test_stop_loss_on_the_entry_bar_fills_at_the_stop() -> None:
    r = run(bars([100, 100, 100], lo=[100, 94, 100], c=[100, 97, 100]), [1, 1, 1], stop_loss=0.05)
    t = only_trade(r)
    assert (t["exit_index"], t["exit_price"], t["exit_reason"]) == (
        1,
        pytest.approx(95.0),
        "stop_loss",
    )
    assert r.equity[1] == pytest.approx(E0 * 0.95) and r.quantity[1] == 0
    # the target stays long: no re-entry until the direction changes
    assert r.equity[2] == r.equity[1]


def test_take_profit_fills_at_the_target() -> None:
    r = run(bars([100, 100, 105, 105], h=[100, 104, 111, 105]), [1, 1, 1, 1], take_profit=0.1)
    t = only_trade(r)
    assert (t["exit_index"], t["exit_price"], t["exit_reason"]) == (
        2,
        pytest.approx(110.0),
        "take_profit",
    )
    assert r.equity[-1] == pytest.approx(E0 * 1.1)


def test_stop_and_target_on_the_same_bar_takes_the_stop() -> None:
    b = bars([100, 100, 100], h=[100, 100, 120], lo=[100, 100, 90])
    t = only_trade(run(b, [1, 1, 1], stop_loss=0.05, take_profit=0.1))
    assert (t["exit_index"], t["exit_price"], t["exit_reason"]) == (
        2,
        pytest.approx(95.0),
        "stop_loss",
    )


def test_gap_through_the_stop_fills_at_the_open() -> None:
    b = bars([100, 100, 90, 90], lo=[100, 99, 85, 90])
    t = only_trade(run(b, [1, 1, 1, 1], stop_loss=0.05, commission=0.001))
    assert (t["exit_index"], t["exit_price"], t["exit_reason"]) == (
        2,
        pytest.approx(90.0),
        "stop_loss",
    )


def test_gap_through_the_target_fills_at_the_open() -> None:
    b = bars([100, 100, 115, 115], h=[100, 101, 120, 115])
    t = only_trade(run(b, [1, 1, 1, 1], take_profit=0.1, stop_loss=0.05))
    assert (t["exit_price"], t["exit_reason"]) == (pytest.approx(115.0), "take_profit")


def test_short_stop_and_target_are_mirrored() -> None:
    stop = bars([100, 100, 100], h=[100, 106, 100])
    t = only_trade(run(stop, [-1, -1, -1], long_only=False, stop_loss=0.05))
    assert (t["exit_price"], t["exit_reason"]) == (pytest.approx(105.0), "stop_loss")
    assert t["pnl"] == pytest.approx(-E0 * 0.05)
    take = bars([100, 100, 100], lo=[100, 89, 100])
    t = only_trade(run(take, [-1, -1, -1], long_only=False, take_profit=0.1))
    assert (t["exit_price"], t["exit_reason"]) == (pytest.approx(90.0), "take_profit")
    assert t["pnl"] == pytest.approx(E0 * 0.1)


def test_re_entry_after_a_stop_needs_a_direction_change() -> None:
    b = bars([100, 100, 100, 100, 100, 100], lo=[100, 90, 100, 100, 100, 100])
    r = run(b, [1, 1, 0, 1, 1, 1], stop_loss=0.05)
    assert r.trades["entry_index"].to_list() == [1, 4]
    assert r.trades["exit_reason"].to_list() == ["stop_loss", "end"]


def test_open_position_at_the_end_is_marked_without_commission() -> None:
    r = run(bars([10, 10, 12], c=[10, 10, 13]), [1, 1, 1], commission=0.01)
    t = only_trade(r)
    qty = E0 / (10 * 1.01)
    assert (t["exit_reason"], t["exit_index"], t["exit_price"]) == ("end", 2, 13.0)
    assert t["commission"] == pytest.approx(0.01 * qty * 10)
    assert r.equity[-1] == pytest.approx(qty * 13, rel=1e-15)
    assert t["pnl"] == pytest.approx(r.equity[-1] - E0, rel=1e-12)


def test_a_wiped_out_short_stops_trading() -> None:
    r = run(bars([10, 10, 30, 30, 30, 30]), [-1, 0, 0, -1, 0, 0], long_only=False)
    assert r.trades.height == 1
    assert r.equity[-1] == pytest.approx(E0 + E0 / 10 * (10 - 30))


def test_config_is_validated() -> None:
    for bad in (
        {"commission": -0.1},
        {"fraction": 0.0},
        {"stop_loss": 1.5},
        {"take_profit": 0.0},
        {"initial_cash": 0.0},
    ):
        with pytest.raises(ValueError):
            BacktestConfig(**bad)


# --- an independent per-bar loop with the same conventions ------------------------------------


def loop_backtest(b: Bars, target: np.ndarray, cfg: BacktestConfig) -> tuple[list, list]:
    """The documented rules, one bar at a time: returns (equity per close, trades)."""
    fee, frac = cfg.commission, cfg.position_fraction
    cash, qty, side, entry, entry_bar = cfg.initial_cash, 0.0, 0, 0.0, -1
    equity, trades = [], []
    prev_want = 0

    def close_out(price: float, bar: int, reason: str, exit_fee: float) -> None:
        nonlocal cash, qty, side
        cash += side * qty * price - qty * price * exit_fee
        trades.append((side, entry_bar, entry, qty, bar, price, reason))
        qty, side = 0.0, 0

    for t in range(len(b)):
        want = int(target[t - 1]) if t else 0
        if cfg.long_only:
            want = max(want, 0)
        if want != prev_want:  # a new holding period: exit, then enter
            if side:
                close_out(b.open[t], t, "signal", fee)
            if want and cash > 0:
                side, entry, entry_bar = want, b.open[t], t
                qty = frac * cash / (entry * (1 + fee))
                cash -= side * qty * entry + qty * entry * fee
        prev_want = want
        if side:
            stop = entry * (1 - side * cfg.stop_loss) if cfg.stop_loss else None
            take = entry * (1 + side * cfg.take_profit) if cfg.take_profit else None
            worst, best = (b.low[t], b.high[t]) if side > 0 else (b.high[t], b.low[t])
            beyond = (lambda x, lvl: x <= lvl) if side > 0 else (lambda x, lvl: x >= lvl)
            better = (lambda x, lvl: x >= lvl) if side > 0 else (lambda x, lvl: x <= lvl)
            if stop is not None and beyond(b.open[t], stop):
                close_out(b.open[t], t, "stop_loss", fee)
            elif take is not None and better(b.open[t], take):
                close_out(b.open[t], t, "take_profit", fee)
            elif stop is not None and beyond(worst, stop):
                close_out(stop, t, "stop_loss", fee)
            elif take is not None and better(best, take):
                close_out(take, t, "take_profit", fee)
        equity.append(cash + side * qty * b.close[t])
    if side:
        close_out(b.close[-1], len(b) - 1, "end", 0.0)
    return equity, trades


CASES = [
    ("sma_crossover", BacktestConfig(commission=0.0005)),
    ("rsi_mean_reversion", BacktestConfig(commission=0.001, stop_loss=0.08, take_profit=0.15)),
    ("macd_cross", BacktestConfig(long_only=False, sizing="fixed_fraction", fraction=0.5)),
    (
        "bollinger_breakout",
        BacktestConfig(long_only=False, commission=0.002, stop_loss=0.03, take_profit=0.05),
    ),
    ("sma_crossover", BacktestConfig(long_only=False, stop_loss=0.02, take_profit=0.02)),
]


@pytest.mark.parametrize("symbol", ["AAPL", "IBM", "MSFT", "GOOG"])
@pytest.mark.parametrize(("strategy", "cfg"), CASES)
def test_matches_a_per_bar_loop_on_real_data(symbol: str, strategy: str, cfg) -> None:
    b = Bars.from_frame(symbol_bars(symbol))
    events = strategies.strategy_events(strategy, b.close)
    target = strategies.target_position(events, long_only=cfg.long_only)
    result = run_backtest(b, target, cfg)
    equity, trades = loop_backtest(b, target, cfg)
    assert len(trades) == result.trades.height > 3
    np.testing.assert_allclose(result.equity, equity, rtol=1e-9)
    got = result.trades.select(
        "entry_index", "exit_index", "exit_reason", "entry_price", "exit_price", "quantity"
    ).rows()
    for (_side, e_bar, e_px, qty, x_bar, x_px, why), row in zip(trades, got, strict=True):
        assert row[:3] == (e_bar, x_bar, why)
        assert row[3:] == pytest.approx((e_px, x_px, qty), rel=1e-9)


# --- metrics against independent formulas -----------------------------------------------------


def test_metrics_against_independent_formulas() -> None:
    b = Bars.from_frame(symbol_bars("AAPL"))
    cfg = BacktestConfig(commission=0.001, long_only=False, stop_loss=0.1)
    r = backtest_strategy(b, "macd_cross", None, cfg)
    m = r.metrics
    eq = [E0, *r.equity.tolist()]
    rets = [eq[i] / eq[i - 1] - 1 for i in range(1, len(eq))]
    n = len(rets)
    assert m.bars == n == 3270
    assert m.total_return == pytest.approx(eq[-1] / E0 - 1, rel=1e-12)
    assert m.cagr == pytest.approx((eq[-1] / E0) ** (252 / n) - 1, rel=1e-9)
    mean = math.fsum(rets) / n
    assert m.sharpe == pytest.approx(mean / statistics.stdev(rets) * math.sqrt(252), rel=1e-9)
    downside = math.sqrt(math.fsum(min(x, 0.0) ** 2 for x in rets) / n)
    assert m.sortino == pytest.approx(mean / downside * math.sqrt(252), rel=1e-9)
    peak, worst, run_len, longest = E0, 0.0, 0, 0
    for v in eq[1:]:
        peak = max(peak, v)
        worst = max(worst, 1 - v / peak)
        run_len = run_len + 1 if v < peak else 0
        longest = max(longest, run_len)
    assert m.max_drawdown == pytest.approx(worst, rel=1e-12)
    assert m.max_drawdown_duration == longest > 0
    pnl = r.trades["pnl"].to_list()
    assert m.trades == len(pnl) and m.win_rate == sum(p > 0 for p in pnl) / len(pnl)
    held = sum(
        (x - e) + (why in ("stop_loss", "take_profit")) + (why == "end")
        for e, x, why in r.trades.select("entry_index", "exit_index", "exit_reason").rows()
    )
    assert m.exposure == pytest.approx(held / n)


def test_drawdown_duration_by_hand() -> None:
    # closes while long all-in from bar 1: equity ∝ close; peak at bar 2, below it for bars 3..5
    r = run(bars([10, 10, 10, 10, 10, 10, 10], c=[10, 11, 12, 9, 10, 11, 12]), [1] * 7)
    m = r.metrics
    assert m.max_drawdown == pytest.approx(1 - 9 / 12)
    assert m.max_drawdown_duration == 3
    assert m.exposure == pytest.approx(6 / 7)


def test_flat_run_has_zero_ratios() -> None:
    m = run(bars([10, 11, 12]), [0, 0, 0]).metrics
    assert (m.total_return, m.sharpe, m.sortino, m.max_drawdown, m.trades) == (0, 0, 0, 0, 0)


def test_same_inputs_same_bytes() -> None:
    b = Bars.from_frame(symbol_bars("MSFT"))
    cfg = BacktestConfig(commission=0.0005, long_only=False, stop_loss=0.05, take_profit=0.1)
    first, second = (backtest_strategy(b, "rsi_mean_reversion", None, cfg) for _ in range(2))
    for name in ("cash", "quantity", "equity"):
        assert getattr(first, name).tobytes() == getattr(second, name).tobytes()
    assert first.metrics == second.metrics
    assert first.trades.write_ipc(None).getvalue() == second.trades.write_ipc(None).getvalue()
    assert first.trades.equals(second.trades)


def test_trade_dates_come_from_the_bars() -> None:
    df = symbol_bars("IBM")
    r = backtest_strategy(Bars.from_frame(df), "sma_crossover", None, BacktestConfig())
    first = r.trades.row(0, named=True)
    assert first["entry_date"] == df["session_date"][first["entry_index"]]
    assert r.trades.schema["exit_date"] == pl.Date
