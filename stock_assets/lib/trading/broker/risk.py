"""Risk limits checked before every order: pure functions, each an allow/deny with its reason.

An order that only reduces a position (toward flat) passes the exposure and daily-loss limits
(cutting risk is always allowed); the kill switch, the market hours and the daily order count
block every order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from stock_assets.lib.trading.broker.config import RiskLimits
from stock_assets.lib.trading.broker.lifecycle import Intent


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str


@dataclass(frozen=True)
class RiskState:
    """What the checks look at; `after(intent)` is the state once an order was sent."""

    positions: Mapping[str, float]  # signed shares, including open orders' unfilled rest
    prices: Mapping[str, float]
    equity: float
    last_equity: float
    orders_today: int
    market_open: bool
    kill_switch: bool
    kill_reason: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def after(self, intent: Intent) -> RiskState:
        positions = dict(self.positions)
        positions[intent.symbol] = positions.get(intent.symbol, 0.0) + intent.signed()
        return replace(self, positions=positions, orders_today=self.orders_today + 1)


def _reduces(intent: Intent, state: RiskState) -> bool:
    held = state.positions.get(intent.symbol, 0.0)
    return abs(held + intent.signed()) < abs(held) - 1e-9 and held * (held + intent.signed()) >= 0


def _ok(rule: str) -> Decision:
    return Decision(True, rule, "ok")


def kill_switch(intent: Intent, state: RiskState, limits: RiskLimits) -> Decision:
    if state.kill_switch:
        return Decision(False, "kill_switch", f"kill switch engaged: {state.kill_reason}")
    return _ok("kill_switch")


def market_hours(intent: Intent, state: RiskState, limits: RiskLimits) -> Decision:
    if limits.market_hours and not state.market_open:
        return Decision(False, "market_hours", "market closed (XNYS calendar)")
    return _ok("market_hours")


def max_orders_per_day(intent: Intent, state: RiskState, limits: RiskLimits) -> Decision:
    if state.orders_today >= limits.max_orders_per_day:
        return Decision(
            False,
            "max_orders_per_day",
            f"{state.orders_today} orders sent today, limit {limits.max_orders_per_day}",
        )
    return _ok("max_orders_per_day")


def max_position(intent: Intent, state: RiskState, limits: RiskLimits) -> Decision:
    if _reduces(intent, state):
        return _ok("max_position")
    price = state.prices.get(intent.symbol, 0.0)
    value = abs(state.positions.get(intent.symbol, 0.0) + intent.signed()) * price
    if value > limits.max_position_value:
        return Decision(
            False,
            "max_position",
            f"{intent.symbol} position would be {value:,.2f} > {limits.max_position_value:,.2f}",
        )
    return _ok("max_position")


def max_gross_exposure(intent: Intent, state: RiskState, limits: RiskLimits) -> Decision:
    if _reduces(intent, state):
        return _ok("max_gross_exposure")
    after = state.after(intent).positions
    gross = sum(abs(q) * state.prices.get(s, 0.0) for s, q in after.items())
    if gross > limits.max_gross_exposure:
        return Decision(
            False,
            "max_gross_exposure",
            f"gross exposure would be {gross:,.2f} > {limits.max_gross_exposure:,.2f}",
        )
    return _ok("max_gross_exposure")


def max_daily_loss(intent: Intent, state: RiskState, limits: RiskLimits) -> Decision:
    if _reduces(intent, state):
        return _ok("max_daily_loss")
    loss = state.last_equity - state.equity
    if loss >= limits.max_daily_loss:
        return Decision(
            False,
            "max_daily_loss",
            f"down {loss:,.2f} since the last close, limit {limits.max_daily_loss:,.2f}",
        )
    return _ok("max_daily_loss")


CHECKS: tuple[Callable[[Intent, RiskState, RiskLimits], Decision], ...] = (
    kill_switch,
    market_hours,
    max_orders_per_day,
    max_position,
    max_gross_exposure,
    max_daily_loss,
)


def evaluate(intent: Intent, state: RiskState, limits: RiskLimits) -> Decision:
    """The first denying check, else allowed."""
    for check in CHECKS:
        decision = check(intent, state, limits)
        if not decision.allowed:
            return decision
    return Decision(True, "all", "within every limit")


def market_open_at(now: datetime) -> bool:
    """Whether `now` (aware) falls inside an XNYS session (exchange calendar, half-days too)."""
    from stock_assets.lib import calendar

    local = now.astimezone(calendar.ZONE)
    table = calendar.sessions(local.date(), local.date())
    if table.is_empty():
        return False
    opens, closes = table["open"][0], table["close"][0]
    return bool(opens <= now < closes)
