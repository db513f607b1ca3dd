"""Each risk limit denies with its reason; risk-reducing orders pass the exposure limits."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from stock_assets.lib.trading.broker import risk
from stock_assets.lib.trading.broker.config import RiskLimits
from stock_assets.lib.trading.broker.lifecycle import Intent

LIMITS = RiskLimits(
    max_position_value=10_000, max_gross_exposure=14_000, max_orders_per_day=3, max_daily_loss=500
)


def intent(side: str = "buy", qty: float = 10, symbol: str = "AAPL") -> Intent:
    return Intent(symbol, side, qty, "signal", date(2024, 1, 4), "fp", "sma")  # type: ignore[arg-type]


def state(**changes: object) -> risk.RiskState:
    base: dict[str, object] = {
        "positions": {"AAPL": 50.0, "MSFT": 20.0},
        "prices": {"AAPL": 100.0, "MSFT": 200.0},
        "equity": 100_000.0,
        "last_equity": 100_000.0,
        "orders_today": 0,
        "market_open": True,
        "kill_switch": False,
    }
    base.update(changes)
    return risk.RiskState(**base)  # type: ignore[arg-type]


def test_an_order_within_every_limit_is_allowed() -> None:
    assert risk.evaluate(intent(), state(), LIMITS) == risk.Decision(
        True, "all", "within every limit"
    )


@pytest.mark.parametrize(
    ("order", "st", "rule", "reason"),
    [
        (intent(), state(kill_switch=True, kill_reason="halt (dashboard)"), "kill_switch",
         "kill switch engaged: halt (dashboard)"),
        (intent(), state(market_open=False), "market_hours", "market closed (XNYS calendar)"),
        (intent(), state(orders_today=3), "max_orders_per_day",
         "3 orders sent today, limit 3"),
        (intent(qty=60), state(), "max_position",
         "AAPL position would be 11,000.00 > 10,000.00"),
        (intent(qty=30, symbol="MSFT"), state(), "max_gross_exposure",
         "gross exposure would be 15,000.00 > 14,000.00"),
        (intent(), state(equity=99_400.0), "max_daily_loss",
         "down 600.00 since the last close, limit 500.00"),
    ],
)  # fmt: skip
def test_each_limit_blocks_with_its_reason(order, st, rule, reason) -> None:
    assert risk.evaluate(order, st, LIMITS) == risk.Decision(False, rule, reason)


def test_reducing_a_position_passes_exposure_and_loss_limits_but_not_the_switch() -> None:
    bad_day = state(equity=90_000.0, positions={"AAPL": 200.0})  # over every exposure limit
    sell = intent("sell", 50)
    assert risk.evaluate(sell, bad_day, LIMITS).allowed
    flip = intent("sell", 250)  # through zero to short: not a reduction
    assert not risk.evaluate(flip, bad_day, LIMITS).allowed
    assert risk.evaluate(sell, state(kill_switch=True), LIMITS).rule == "kill_switch"


def test_the_state_after_an_order_counts_it() -> None:
    after = state().after(intent(qty=5))
    assert after.positions["AAPL"] == 55.0 and after.orders_today == 1


def test_market_hours_come_from_the_exchange_calendar() -> None:
    assert risk.market_open_at(datetime(2024, 1, 5, 15, 0, tzinfo=UTC))  # Fri 10:00 New York
    assert not risk.market_open_at(datetime(2024, 1, 5, 21, 30, tzinfo=UTC))  # after the close
    assert not risk.market_open_at(datetime(2024, 1, 6, 15, 0, tzinfo=UTC))  # Saturday
    assert not risk.market_open_at(datetime(2024, 12, 25, 15, 0, tzinfo=UTC))  # Christmas
    assert risk.market_open_at(datetime(2024, 11, 29, 17, 30, tzinfo=UTC))  # half-day, 12:30
    assert not risk.market_open_at(datetime(2024, 11, 29, 18, 30, tzinfo=UTC))  # after 13:00
