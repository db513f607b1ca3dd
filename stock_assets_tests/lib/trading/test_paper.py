"""Paper account: fills at the next open, sizing, idempotency, and cash + positions == equity."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import polars as pl
import pytest

from stock_assets.lib.trading import strategies
from stock_assets.lib.trading.paper import PaperAccount
from stock_assets_tests.lib.trading.data import SYMBOLS, real_daily_bars

D = [date(2024, 1, d) for d in (2, 3, 4, 5)]


def frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "symbol": pl.String,
            "session_date": pl.Date,
            "open": pl.Float64,
            "close": pl.Float64,
        },
        orient="row",
    )


def sigs(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"symbol": pl.String, "session_date": pl.Date, "side": pl.String}, orient="row"
    )


BARS = frame(
    [
        ("A", D[0], 10, 10), ("B", D[0], 20, 20),
        ("A", D[1], 11, 12), ("B", D[1], 20, 22),
        ("A", D[2], 12, 13), ("B", D[2], 21, 20),
        ("A", D[3], 13, 11), ("B", D[3], 19, 18),
    ]
)  # fmt: skip
SIGNALS = sigs([("A", D[0], "buy"), ("B", D[1], "sell"), ("A", D[2], "sell")])
RULES = {
    "commission": {"A": 0.01, "B": 0.01},
    "fraction": 0.5,
    "long_only": {"A": True, "B": False},
}


def test_orders_fill_at_the_next_open_by_hand() -> None:
    acct = PaperAccount("paper-x", "x", cash=1000.0)
    run = acct.apply(BARS, SIGNALS, **RULES)
    qa = 0.5 * 1000 / (10 * 1.01)  # sized on day 1's equity and close
    cash = 1000 - qa * 11 * 1.01  # filled at day 2's open
    eq2 = cash + qa * 12
    qb = 0.5 * eq2 / (22 * 1.01)  # short B on day 2's close
    cash += qb * 21 * 0.99  # filled at day 3's open
    eq3 = cash + qa * 13 - qb * 20
    cash += qa * 13 * 0.99  # A sold at day 4's open
    eq4 = cash - qb * 18
    assert [p.equity for p in run.equity] == pytest.approx([1000, eq2, eq3, eq4], rel=1e-12)
    fills = [(f.symbol, f.signal_date, f.session_date, f.price) for f in run.fills]
    assert fills == [("A", D[0], D[1], 11), ("B", D[1], D[2], 21), ("A", D[2], D[3], 13)]
    assert [f.quantity for f in run.fills] == pytest.approx([qa, qb, qa], rel=1e-12)
    assert run.fills[0].commission == pytest.approx(0.01 * qa * 11)
    assert acct.positions["A"].quantity == 0 and acct.positions["B"].quantity == pytest.approx(-qb)
    assert acct.positions["B"].avg_price == 21
    assert {o.status for o in run.orders.values()} == {"filled"}
    assert acct.cash == pytest.approx(cash, rel=1e-12) and acct.last_session == D[3]


def test_cash_plus_positions_is_equity_at_every_step() -> None:
    run = PaperAccount("paper-x", "x", cash=1000.0).apply(BARS, SIGNALS, **RULES)
    for p in run.equity:
        assert p.cash + p.positions_value == p.equity


def test_reapplying_is_a_no_op_and_split_runs_equal_one_run() -> None:
    whole = PaperAccount("paper-x", "x", cash=1000.0)
    one = whole.apply(BARS, SIGNALS, **RULES)
    again = whole.apply(BARS, SIGNALS, **RULES)
    assert (again.orders, again.fills, again.equity) == ({}, [], [])

    split = PaperAccount("paper-x", "x", cash=1000.0)
    first = split.apply(BARS.filter(pl.col("session_date") <= D[1]), SIGNALS, **RULES)
    pending = [o for o in first.orders.values() if o.status == "new"]
    assert [(o.symbol, o.side) for o in pending] == [("B", "sell")]  # waits for day 3's open
    second = split.apply(BARS, SIGNALS, **RULES)
    assert first.equity + second.equity == one.equity
    assert first.fills + second.fills == one.fills
    assert split.cash == whole.cash and split.positions == whole.positions


def test_stale_signals_before_the_watermark_are_ignored() -> None:
    acct = PaperAccount("paper-x", "x", cash=1000.0)
    acct.apply(BARS.filter(pl.col("session_date") <= D[1]), sigs([]), **RULES)
    run = acct.apply(BARS, SIGNALS, **RULES)  # the day-1 and day-2 signals arrived too late
    # A's day-3 sell finds A flat (long-only): nothing to do either
    assert (run.orders, run.fills) == ({}, [])
    assert [p.session_date for p in run.equity] == D[2:]


def test_buys_are_cut_to_the_cash_and_rejected_without_it() -> None:
    bars = frame(
        [("A", D[0], 10, 10), ("B", D[0], 10, 10), ("A", D[1], 12.5, 12), ("B", D[1], 10, 10)]
    )
    acct = PaperAccount("paper-x", "x", cash=100.0)
    run = acct.apply(
        bars,
        sigs([("A", D[0], "buy"), ("B", D[0], "buy")]),
        commission={},
        fraction=1.0,
        long_only={},
    )
    orders = {o.symbol: o for o in run.orders.values()}
    assert orders["A"].quantity == pytest.approx(10) and orders["A"].status == "filled"
    assert run.fills[0].quantity == pytest.approx(8)  # 100 cash buys 8 at 12.5: partial fill
    assert orders["B"].status == "rejected"  # A took all the cash
    assert acct.cash == pytest.approx(0.0)


def test_a_signal_in_the_held_direction_creates_no_order() -> None:
    acct = PaperAccount("paper-x", "x", cash=1000.0)
    run = acct.apply(BARS, sigs([("A", D[0], "buy"), ("A", D[1], "buy")]), **RULES)
    assert [o.session_date for o in run.orders.values()] == [D[0]]


def test_equity_reconciles_with_the_fill_ledger_on_real_data() -> None:
    """Four accounts over 13 years of real bars; cash and positions rebuilt from fills alone."""
    daily = real_daily_bars()
    for name in strategies.STRATEGY_NAMES:
        rows = []
        for (symbol,), df in daily.partition_by("symbol", as_dict=True).items():
            events = strategies.strategy_events(name, df["close"])
            rows += [
                (symbol, d, "buy" if e > 0 else "sell")
                for d, e in zip(df["session_date"], events, strict=True)
                if e
            ]
        acct = PaperAccount(f"paper-{name}", name, cash=100_000.0)
        run = acct.apply(
            daily,
            sigs(rows),
            commission=dict.fromkeys(SYMBOLS, 0.0005),
            fraction=0.2,
            long_only={s: s != "MSFT" for s in SYMBOLS},
        )
        assert len(run.fills) > 50
        by_day = defaultdict(list)
        for f in run.fills:
            by_day[f.session_date].append(f)
        closes = {
            (s, d): c for s, d, c in daily.select("symbol", "session_date", "close").iter_rows()
        }
        cash, qty, last = 100_000.0, defaultdict(float), {}
        for point in run.equity:
            for f in by_day[point.session_date]:
                order = run.orders[(f.symbol, f.signal_date, f.strategy)]
                side = 1 if order.side == "buy" else -1
                cash -= side * f.quantity * f.price + f.commission
                qty[f.symbol] += side * f.quantity
            for s in SYMBOLS:
                if (s, point.session_date) in closes:
                    last[s] = closes[(s, point.session_date)]
            value = sum(q * last[s] for s, q in qty.items())
            assert point.cash + point.positions_value == point.equity
            assert point.cash == pytest.approx(cash, rel=1e-9, abs=1e-6)
            assert point.equity == pytest.approx(cash + value, rel=1e-9, abs=1e-6)
        assert sum(1 for o in run.orders.values() if o.status == "filled") == len(run.fills)
