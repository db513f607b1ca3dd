"""Signals -> target positions -> order intents, with deterministic client order ids (pure).

- Target: each configured (symbol, strategy, params) holds the direction of its latest stored
  signal (buy = long; sell = flat when long-only, else short), sized `position_fraction` x equity
  / price; a symbol's target is the sum over its strategies (whole shares by default).
- Live stop-loss / take-profit, the backtest's levels (`BacktestConfig.stop_loss/take_profit`,
  fractions of the entry price) checked on every run against the latest close and the broker's
  average entry price: beyond a level, an exit intent flattens the symbol. As in the backtest, the
  symbol then stays flat until a newer signal than the one the exit saw (no re-entry on the same
  signal).
- Intents: target minus (position + the unfilled rest of open orders), so an order still working
  at the broker is never doubled; a position already on the target's side within
  `rebalance_band` x target is left alone (equity moves alone do not churn orders).
- Client order id: a hash of (source, symbol, reason, the signals that produced the target, side,
  quantity): the same signals and positions produce the same id on a restarted run, which the
  broker refuses twice (Alpaca: HTTP 422) and the orders table finds first. An intent whose order
  ended unfilled (cancelled by the kill switch, expired) is re-issued with the next `attempt`.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from stock_assets.lib.trading.broker.base import BrokerOrder, BrokerPosition

Reason = Literal["signal", "stop_loss", "take_profit"]
_EPS = 1e-9


@dataclass(frozen=True)
class SignalState:
    """The latest stored signal of one configured (symbol, strategy, params)."""

    symbol: str
    strategy_key: str  # strategy + canonical params, e.g. 'sma_crossover{"fast":10,"slow":30}'
    side: str  # 'buy' | 'sell'
    session_date: date
    long_only: bool


@dataclass(frozen=True)
class Target:
    symbol: str
    quantity: float  # signed shares wanted
    fingerprint: str  # the signals behind it (part of the client order id)
    signal_date: date  # the newest of those signals
    strategies: str  # their strategy names, comma-separated


@dataclass(frozen=True)
class Intent:
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    reason: Reason
    signal_date: date
    fingerprint: str
    strategy: str  # what produced it: the strategy keys, or the exit rule

    def signed(self) -> float:
        return self.quantity if self.side == "buy" else -self.quantity


@dataclass(frozen=True)
class ExitRule:
    stop_loss: float | None
    take_profit: float | None


def client_order_id(source: str, intent: Intent, attempt: int = 0) -> str:
    """Deterministic, <= 48 chars (Alpaca allows 128): same intent -> same id.

    `attempt` > 0 re-issues an intent whose earlier order ended unfilled (cancelled, expired).
    """
    payload = "|".join(
        (
            source,
            intent.symbol,
            intent.reason,
            intent.fingerprint,
            intent.signal_date.isoformat(),
            intent.side,
            f"{intent.quantity:.6f}",
            *([f"attempt={attempt}"] if attempt else []),
        )
    )
    return f"sab-{hashlib.sha256(payload.encode()).hexdigest()[:40]}"


def targets(
    signals: Iterable[SignalState],
    prices: Mapping[str, float],
    equity: float,
    fraction: float,
    *,
    whole_shares: bool = True,
) -> dict[str, Target]:
    """Each symbol's signed target from its strategies' latest signals (no price -> skipped)."""
    by_symbol: dict[str, list[SignalState]] = defaultdict(list)
    for s in signals:
        by_symbol[s.symbol].append(s)
    out: dict[str, Target] = {}
    for symbol, states in sorted(by_symbol.items()):
        price = prices.get(symbol)
        if not price or price <= 0:
            continue
        total = 0.0
        for s in states:
            direction = 1 if s.side == "buy" else (0 if s.long_only else -1)
            total += direction * fraction * max(equity, 0.0) / price
        if whole_shares:
            total = float(math.trunc(total))
        states = sorted(states, key=lambda s: s.strategy_key)
        fingerprint = ";".join(f"{s.strategy_key}:{s.side}:{s.session_date}" for s in states)
        names = ",".join(sorted({s.strategy_key.split("{", 1)[0] for s in states}))
        out[symbol] = Target(symbol, total, fingerprint, max(s.session_date for s in states), names)
    return out


def exit_reason(position: BrokerPosition, price: float, rule: ExitRule) -> Reason | None:
    """Stop first (as the backtest assumes the worst), then take-profit, on the latest close."""
    q, entry = position.quantity, position.avg_entry_price
    if abs(q) < _EPS or entry <= 0:
        return None
    d = 1.0 if q > 0 else -1.0
    if rule.stop_loss is not None and d * (price - entry * (1 - d * rule.stop_loss)) <= 0:
        return "stop_loss"
    if rule.take_profit is not None and d * (price - entry * (1 + d * rule.take_profit)) >= 0:
        return "take_profit"
    return None


def pending_quantity(orders: Iterable[BrokerOrder]) -> dict[str, float]:
    """Signed unfilled shares of open orders per symbol."""
    out: dict[str, float] = defaultdict(float)
    for o in orders:
        if o.is_open:
            rest = max(o.quantity - o.filled_qty, 0.0)
            out[o.symbol] += rest if o.side == "buy" else -rest
    return dict(out)


def intents(
    wanted: Mapping[str, Target],
    positions: Mapping[str, BrokerPosition],
    open_orders: Iterable[BrokerOrder],
    prices: Mapping[str, float],
    exit_rules: Mapping[str, ExitRule],
    exited_on: Mapping[str, date],
    rebalance_band: float = 0.1,
) -> list[Intent]:
    """Exit intents for stop/target hits, then the orders that move positions to their targets.

    `exited_on`: per symbol, the signal date a previous stop/target exit saw; the symbol stays
    flat while its newest signal is not newer.
    """
    pending = pending_quantity(open_orders)
    out: list[Intent] = []
    exiting: set[str] = set()
    for symbol, pos in sorted(positions.items()):
        rule, price = exit_rules.get(symbol), prices.get(symbol)
        if rule is None or price is None or abs(pending.get(symbol, 0.0)) > _EPS:
            continue
        reason = exit_reason(pos, price, rule)
        if reason is None:
            continue
        target = wanted.get(symbol)
        seen = target.signal_date if target else date(1900, 1, 1)
        out.append(
            Intent(
                symbol,
                "sell" if pos.quantity > 0 else "buy",
                abs(pos.quantity),
                reason,
                seen,
                target.fingerprint if target else "",
                reason,
            )
        )
        exiting.add(symbol)
    for symbol in sorted(set(wanted) | set(positions)):
        if symbol in exiting:
            continue
        target = wanted.get(symbol)
        if target is None:
            continue  # a position in a symbol no strategy trades: left alone
        goal = target.quantity
        stopped = exited_on.get(symbol)
        if stopped is not None and target.signal_date <= stopped:
            goal = 0.0  # flat after a stop/target exit until a newer signal
        held = positions[symbol].quantity if symbol in positions else 0.0
        delta = goal - held - pending.get(symbol, 0.0)
        if abs(delta) < 1e-6:
            continue
        have = held + pending.get(symbol, 0.0)
        if goal * have > 0 and abs(delta) <= rebalance_band * abs(goal):
            continue  # same direction, size within the band: no churn on equity moves
        out.append(
            Intent(
                symbol,
                "buy" if delta > 0 else "sell",
                abs(delta),
                "signal",
                target.signal_date,
                target.fingerprint,
                target.strategies,
            )
        )
    return out
