"""The internal broker: the paper portfolio's fill rules behind the `Broker` interface.

A market order fills at once at the symbol's latest known price (`prices`) with the paper
account's rules (`paper.PaperAccount`): commission x traded value, a buy cut to what the cash buys
(a partial fill, then the rest is cancelled; nothing affordable = rejected), sells always fill.
Its state is rebuilt on every run from its own fills ledger (`from_ledger`), so the simulator needs
no storage of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime

from stock_assets.lib.trading import paper
from stock_assets.lib.trading.broker.base import (
    BrokerAccount,
    BrokerOrder,
    BrokerPosition,
    OrderRejected,
    OrderRequest,
    TradeUpdate,
)

SOURCE = "simulator"


class SimulatorBroker:
    source = SOURCE

    def __init__(
        self,
        cash: float,
        prices: Mapping[str, float],
        *,
        commission: float = 0.0,
        today: date | None = None,
    ) -> None:
        self._account = paper.PaperAccount(account_id=SOURCE, strategy="broker", cash=cash)
        self._start_equity = cash
        self.prices = dict(prices)
        self.commission = commission
        self.today = today or datetime.now(UTC).date()
        self._orders: dict[str, BrokerOrder] = {}
        self._updates: list[TradeUpdate] = []

    @classmethod
    def from_ledger(
        cls,
        initial_cash: float,
        fills: Iterable[tuple[str, str, float, float]],
        prices: Mapping[str, float],
        *,
        commission: float = 0.0,
        start_of_day_equity: float | None = None,
    ) -> SimulatorBroker:
        """Replay stored fills (symbol, side, quantity, price) in order onto the initial cash."""
        sim = cls(initial_cash, prices, commission=commission)
        for symbol, side, qty, price in fills:
            order = paper.PaperOrder(symbol, sim.today, "broker", side, qty)
            sim._account._fill(order, price, sim.today, commission, paper.PaperRun())
        sim._account.last_close.update(prices)
        sim._start_equity = (
            start_of_day_equity if start_of_day_equity is not None else sim._account.equity()
        )
        return sim

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        if request.client_order_id in self._orders:
            return self._orders[request.client_order_id]
        price = self.prices.get(request.symbol)
        if price is None:
            raise OrderRejected(f"simulator: no price for {request.symbol}", status=422)
        order = paper.PaperOrder(
            request.symbol, self.today, "broker", request.side, request.quantity
        )
        run = paper.PaperRun()
        self._account._fill(order, price, self.today, self.commission, run)
        now = datetime.now(UTC)
        filled = run.fills[0].quantity if run.fills else 0.0
        if order.status == "rejected":
            status = "rejected"
        elif filled < request.quantity - 1e-9:
            status = "canceled"  # the unaffordable rest of a buy
        else:
            status = "filled"
        result = BrokerOrder(
            request.client_order_id,
            f"sim-{uuid.uuid4()}",
            request.symbol,
            request.side,
            request.quantity,
            status,
            filled,
            price if filled else None,
        )
        self._orders[request.client_order_id] = result
        pos = self._account.positions.get(request.symbol, paper.Position()).quantity
        self._updates.append(TradeUpdate("new", result, now))
        if filled:
            event = "fill" if status == "filled" else "partial_fill"
            self._updates.append(
                TradeUpdate(event, result, now, f"sim-{uuid.uuid4()}", price, filled, pos)
            )
        if status in ("rejected", "canceled"):
            self._updates.append(TradeUpdate(status, result, now))
        return result

    def cancel_order(self, order: BrokerOrder) -> None:
        return None  # simulator orders fill or end at once: nothing stays open

    def open_orders(self) -> list[BrokerOrder]:
        return [o for o in self._orders.values() if o.is_open]

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self._orders.get(client_order_id)

    def positions(self) -> list[BrokerPosition]:
        return [
            BrokerPosition(s, p.quantity, p.avg_price, p.quantity * self.prices.get(s, p.avg_price))
            for s, p in sorted(self._account.positions.items())
            if abs(p.quantity) > 1e-9
        ]

    def account(self) -> BrokerAccount:
        self._account.last_close.update(self.prices)
        return BrokerAccount(self._account.cash, self._account.equity(), self._start_equity)

    def trade_updates(
        self, *, max_wait_s: float, until: Callable[[list[TradeUpdate]], bool] | None = None
    ) -> list[TradeUpdate]:
        updates, self._updates = self._updates, []
        return updates
