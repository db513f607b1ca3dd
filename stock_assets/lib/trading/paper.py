"""A paper-trading account that turns new signals into orders, fills, positions and equity.

One account per strategy (so each symbol has one owner per account). Rules, per session in order:

1. Fills at the open: every pending order whose signal session is before today and whose symbol
   has a bar today fills at that bar's open, paying `commission` x traded value. A buy may not
   make cash negative beyond covering a short: the part opening/increasing a long is cut to what
   the cash buys (a partial fill; fully unaffordable = status "rejected"). Sells always fill
   (short proceeds are credited to cash; no margin model).
2. Mark at the close: positions are valued at each symbol's latest close (today's, or the last one
   seen); one equity point per session with cash + positions value == equity.
3. Signals of today's close become orders ("new"), sized on today's equity: a buy targets
   +fraction x equity / (close x (1 + commission)) shares, a sell the same short (long/short) or
   flat (long-only). A signal in the direction already held creates no order. A new order for a
   symbol cancels that symbol's still-pending one.

Idempotency: a session is processed once — the account's watermark is its last equity point,
and only sessions and signals after it are applied (later-arriving signals for already processed
sessions are stale and ignored). The warehouse's UNIQUE (account_id, symbol, session_date,
strategy) on orders backs this up. Stop-loss / take-profit are not applied here (backtests only).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import polars as pl

_EPS = 1e-9  # shares; below this an order or position is nothing


@dataclass
class Position:
    quantity: float = 0.0
    avg_price: float = 0.0


@dataclass
class PaperOrder:
    symbol: str
    session_date: date  # the signal's session
    strategy: str
    side: str
    quantity: float
    status: str = "new"


@dataclass(frozen=True)
class PaperFill:
    symbol: str
    signal_date: date
    strategy: str
    session_date: date  # the session whose open filled it
    price: float
    quantity: float
    commission: float


@dataclass(frozen=True)
class EquityPoint:
    session_date: date
    cash: float
    positions_value: float
    equity: float


@dataclass
class PaperRun:
    """What one `apply` changed: orders created or updated, fills, equity points."""

    orders: dict[tuple[str, date, str], PaperOrder] = field(default_factory=dict)  # latest state
    fills: list[PaperFill] = field(default_factory=list)
    equity: list[EquityPoint] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # symbols whose position changed

    def record(self, order: PaperOrder) -> None:
        self.orders[(order.symbol, order.session_date, order.strategy)] = order


@dataclass
class PaperAccount:
    account_id: str
    strategy: str
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    pending: list[PaperOrder] = field(default_factory=list)
    last_session: date | None = None
    last_close: dict[str, float] = field(default_factory=dict)

    def positions_value(self) -> float:
        # in symbol order: a float sum depends on its order, and an account reloaded from the
        # warehouse (load_account) holds its positions in another order than one that traded
        # them in this process; so a run resumed from the watermark equals one pass, bit for bit
        return sum(
            self.positions[s].quantity * self.last_close.get(s, self.positions[s].avg_price)
            for s in sorted(self.positions)
        )

    def equity(self) -> float:
        return self.cash + self.positions_value()

    def apply(
        self,
        bars: pl.DataFrame,
        signals: pl.DataFrame,
        *,
        commission: Mapping[str, float],
        fraction: float,
        long_only: Mapping[str, bool],
    ) -> PaperRun:
        """Process the sessions of `bars` after the watermark; `signals` are this strategy's.

        bars: symbol, session_date, open, close (rows up to the watermark only seed the last
        closes); signals: symbol, session_date, side.
        """
        run = PaperRun()
        seen = (
            bars
            if self.last_session is None
            else bars.filter(pl.col("session_date") <= self.last_session)
        )
        for sym, close in seen.sort("session_date").select("symbol", "close").iter_rows():
            self.last_close[sym] = close
        new_bars = (
            bars
            if self.last_session is None
            else bars.filter(pl.col("session_date") > self.last_session)
        )
        by_day: dict[date, list[tuple[str, float, float]]] = defaultdict(list)
        for sym, day, open_, close in (
            new_bars.sort("session_date", "symbol")
            .select("symbol", "session_date", "open", "close")
            .iter_rows()
        ):
            by_day[day].append((sym, open_, close))
        signals_by_day: dict[date, list[tuple[str, str]]] = defaultdict(list)
        for sym, day, side in (
            signals.sort("session_date", "symbol")
            .select("symbol", "session_date", "side")
            .iter_rows()
        ):
            signals_by_day[day].append((sym, side))

        for day in sorted(by_day):
            today = by_day[day]
            opens = {sym: open_ for sym, open_, _ in today}
            for order in [o for o in self.pending if o.symbol in opens and o.session_date < day]:
                self._fill(order, opens[order.symbol], day, commission.get(order.symbol, 0.0), run)
            self.pending = [o for o in self.pending if o.status == "new"]
            for sym, _, close in today:
                self.last_close[sym] = close
            pv = self.positions_value()
            point = EquityPoint(day, self.cash, pv, self.cash + pv)
            run.equity.append(point)
            closes = {sym: close for sym, _, close in today}
            for sym, side in signals_by_day.get(day, ()):
                if sym in closes:
                    self._order(
                        sym,
                        side,
                        day,
                        closes[sym],
                        point.equity,
                        commission.get(sym, 0.0),
                        fraction,
                        long_only.get(sym, True),
                        run,
                    )
            self.last_session = day
        return run

    def _order(
        self,
        sym: str,
        side: str,
        day: date,
        price: float,
        equity: float,
        commission: float,
        fraction: float,
        long_only: bool,
        run: PaperRun,
    ) -> None:
        held = self.positions.get(sym, Position()).quantity
        direction = 1 if side == "buy" else (0 if long_only else -1)
        if direction and held * direction > _EPS:
            return  # already positioned that way
        target = direction * fraction * max(equity, 0.0) / (price * (1 + commission))
        delta = target - held
        if abs(delta) < _EPS:
            return
        for stale in [o for o in self.pending if o.symbol == sym]:
            stale.status = "cancelled"
            run.record(stale)
        self.pending = [o for o in self.pending if o.symbol != sym]
        order = PaperOrder(sym, day, self.strategy, "buy" if delta > 0 else "sell", abs(delta))
        self.pending.append(order)
        run.record(order)

    def _fill(
        self, order: PaperOrder, price: float, day: date, commission: float, run: PaperRun
    ) -> None:
        pos = self.positions.setdefault(order.symbol, Position())
        held = pos.quantity
        unit_cost = price * (1 + commission)
        if order.side == "buy":
            cover = min(order.quantity, max(-held, 0.0))
            affordable = max(self.cash - cover * unit_cost, 0.0) / unit_cost
            quantity = cover + min(order.quantity - cover, affordable)
            if quantity < _EPS:
                order.status = "rejected"
                run.record(order)
                return
            self.cash -= quantity * unit_cost
            new = held + quantity
        else:
            quantity = order.quantity
            self.cash += quantity * price * (1 - commission)
            new = held - quantity
        if abs(new) < _EPS:
            pos.quantity, pos.avg_price = 0.0, 0.0
        elif abs(held) < _EPS or (new > 0) != (held > 0):
            pos.quantity, pos.avg_price = new, price
        elif abs(new) > abs(held):
            pos.avg_price = (abs(held) * pos.avg_price + quantity * price) / abs(new)
            pos.quantity = new
        else:
            pos.quantity = new
        order.status = "filled"
        run.record(order)
        run.fills.append(
            PaperFill(
                order.symbol,
                order.session_date,
                order.strategy,
                day,
                price,
                quantity,
                commission * quantity * price,
            )
        )
        run.touched.add(order.symbol)
