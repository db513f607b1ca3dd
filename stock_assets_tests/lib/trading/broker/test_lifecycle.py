"""Signals -> targets -> intents and deterministic client order ids (pure)."""

from __future__ import annotations

from datetime import date

from stock_assets.lib.trading.broker import lifecycle as lc
from stock_assets.lib.trading.broker.base import BrokerOrder, BrokerPosition

D1, D2 = date(2024, 1, 4), date(2024, 1, 5)
NO_EXIT = lc.ExitRule(None, None)


def sig(symbol: str, key: str, side: str, day: date = D1, long_only: bool = True) -> lc.SignalState:
    return lc.SignalState(symbol, key, side, day, long_only)


def test_targets_sum_strategies_and_respect_long_only() -> None:
    wanted = lc.targets(
        [
            sig("AAPL", "sma{}", "buy"),
            sig("AAPL", "macd{}", "buy", D2),
            sig("MSFT", "sma{}", "sell", long_only=False),
            sig("IBM", "sma{}", "sell"),
        ],
        {"AAPL": 100.0, "MSFT": 30.0, "IBM": 80.0},
        equity=10_000,
        fraction=0.1,
    )
    assert {s: t.quantity for s, t in wanted.items()} == {"AAPL": 20.0, "IBM": 0.0, "MSFT": -33.0}
    assert wanted["AAPL"].signal_date == D2 and wanted["AAPL"].strategies == "macd,sma"


def test_intents_net_positions_and_open_orders() -> None:
    wanted = lc.targets([sig("AAPL", "s{}", "buy")], {"AAPL": 100.0}, 100_000, 0.1)  # 100 shares
    working = BrokerOrder("x", "b", "AAPL", "buy", 30, "partially_filled", 10)
    held = {"AAPL": BrokerPosition("AAPL", 40, 100.0)}
    (only,) = lc.intents(wanted, held, [working], {"AAPL": 100.0}, {}, {})
    assert (only.side, only.quantity, only.reason) == ("buy", 40.0, "signal")  # 100 - 40 - 20


def test_equity_drift_within_the_band_does_not_churn() -> None:
    wanted = lc.targets([sig("AAPL", "s{}", "buy")], {"AAPL": 100.0}, 99_000, 0.1)  # 99 shares
    held = {"AAPL": BrokerPosition("AAPL", 100, 100.0)}
    assert lc.intents(wanted, held, [], {"AAPL": 100.0}, {}, {}) == []


def test_stop_loss_and_take_profit_exit_then_stay_flat_until_a_newer_signal() -> None:
    rule = {"AAPL": lc.ExitRule(stop_loss=0.08, take_profit=0.25)}
    wanted = lc.targets([sig("AAPL", "s{}", "buy")], {"AAPL": 91.0}, 100_000, 0.1)
    held = {"AAPL": BrokerPosition("AAPL", 100, 100.0)}
    (stop,) = lc.intents(wanted, held, [], {"AAPL": 91.0}, rule, {})
    assert (stop.side, stop.quantity, stop.reason, stop.signal_date) == (
        "sell",
        100,
        "stop_loss",
        D1,
    )
    (take,) = lc.intents(wanted, held, [], {"AAPL": 125.0}, rule, {})
    assert take.reason == "take_profit"
    assert lc.intents(wanted, held, [], {"AAPL": 95.0}, rule, {}) == []  # inside both levels
    assert lc.intents(wanted, {}, [], {"AAPL": 91.0}, rule, {"AAPL": D1}) == []  # exited on D1
    newer = lc.targets([sig("AAPL", "s{}", "buy", D2)], {"AAPL": 91.0}, 100_000, 0.1)
    (again,) = lc.intents(newer, {}, [], {"AAPL": 91.0}, rule, {"AAPL": D1})
    assert again.side == "buy" and again.reason == "signal"


def test_short_stop_is_above_the_entry() -> None:
    short = BrokerPosition("MSFT", -10, 50.0)
    rule = lc.ExitRule(stop_loss=0.1, take_profit=0.2)
    assert lc.exit_reason(short, 56.0, rule) == "stop_loss"
    assert lc.exit_reason(short, 39.0, rule) == "take_profit"
    assert lc.exit_reason(short, 50.0, rule) is None


def test_client_order_id_is_deterministic_and_changes_with_any_field() -> None:
    base = lc.Intent("AAPL", "buy", 10, "signal", D1, "s{}:buy:2024-01-04", "s")
    cid = lc.client_order_id("alpaca", base)
    assert cid == lc.client_order_id("alpaca", base) and cid.startswith("sab-") and len(cid) == 44
    variants = [
        lc.client_order_id("simulator", base),
        lc.client_order_id("alpaca", base, attempt=1),
        lc.client_order_id(
            "alpaca", lc.Intent("AAPL", "buy", 11, "signal", D1, base.fingerprint, "s")
        ),
        lc.client_order_id(
            "alpaca", lc.Intent("AAPL", "sell", 10, "signal", D1, base.fingerprint, "s")
        ),
        lc.client_order_id(
            "alpaca", lc.Intent("AAPL", "buy", 10, "signal", D2, base.fingerprint, "s")
        ),
    ]
    assert len({cid, *variants}) == 6
