"""The broker interface: orders by client order id, positions, account and trade updates.

Two implementations: `SimulatorBroker` (the internal paper simulator, the default) and
`AlpacaBroker` (Alpaca's official SDK). Errors are split by what the caller should do:
`BrokerTransientError` (429, 5xx, timeout: back off and retry, the order state is unknown until
looked up by client id) and `OrderRejected` (a 4xx answer: terminal, recorded as a reject).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from stock_assets.lib.errors import TransientError

Side = Literal["buy", "sell"]
# broker order states that can still change (an open order is cancelled by the kill switch)
OPEN_STATES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "pending_cancel", "done_for_day"}
)
TERMINAL_STATES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})


class BrokerError(RuntimeError):
    """A broker request failed for a reason retrying cannot fix (auth, bad request)."""


class BrokerTransientError(TransientError):
    """429, 5xx, timeout or connection failure after the bounded retries: retry the run later."""


class OrderRejected(BrokerError):
    """The broker refused the order (4xx): terminal, recorded with the broker's message."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class OrderRequest:
    """A market day order for `quantity` shares (fractional allowed)."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: float


@dataclass(frozen=True)
class BrokerOrder:
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    quantity: float
    status: str  # the broker's order status (Alpaca's names)
    filled_qty: float = 0.0
    filled_avg_price: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    quantity: float  # signed: negative = short
    avg_entry_price: float
    market_value: float | None = None


@dataclass(frozen=True)
class BrokerAccount:
    cash: float
    equity: float
    last_equity: float  # equity at the previous session's close (daily loss reference)
    trading_blocked: bool = False


@dataclass(frozen=True)
class TradeUpdate:
    """One trade_updates event: new, partial_fill, fill, canceled, rejected, expired, ..."""

    event: str
    order: BrokerOrder
    timestamp: datetime
    execution_id: str | None = None
    price: float | None = None  # fill events: this execution's price
    qty: float | None = None  # fill events: this execution's quantity
    position_qty: float | None = None


class Broker(Protocol):
    """What the order lifecycle needs from a broker."""

    source: str

    def submit_order(self, request: OrderRequest) -> BrokerOrder: ...

    def cancel_order(self, order: BrokerOrder) -> None: ...

    def open_orders(self) -> list[BrokerOrder]: ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None: ...

    def positions(self) -> list[BrokerPosition]: ...

    def account(self) -> BrokerAccount: ...

    def trade_updates(
        self, *, max_wait_s: float, until: Callable[[list[TradeUpdate]], bool] | None = None
    ) -> list[TradeUpdate]:
        """Trade updates received within `max_wait_s` (stops early once `until(updates)`)."""
        ...
