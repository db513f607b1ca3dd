"""`AlpacaBroker`: the `Broker` interface on Alpaca's official SDK (alpaca-py).

REST goes through `alpaca.trading.client.TradingClient`, trade updates through
`alpaca.trading.stream.TradingStream`; both take a URL override (a local server in tests).

Retries are ours, not the SDK's. alpaca-py (alpaca/common/rest.py) retries only HTTP 429 and 504,
a fixed 3 s apart (DEFAULT_RETRY_WAIT_SECONDS, no jitter, Retry-After ignored), 3 times, and sends
every request without a timeout (`Session.request` with no `timeout=`: a silent server hangs the
run for ever). `TradingClient` does not expose RESTClient's retry settings (and RESTClient ignores
`retry_attempts=0` through an `if retry_attempts and ...` test), so the client's retry count is
set to 0 after construction and its session gets a default timeout. Here: 429, 5xx, timeouts
and connection errors back off exponentially with jitter (`RetryPolicy`, bounded attempts,
Retry-After honoured) and then raise `BrokerTransientError`; other 4xx answers raise
`OrderRejected` / `BrokerError` at once.

A submit that failed transiently may still have reached the broker: before re-sending, the order
is looked up by its client order id; a 422 "client_order_id must be unique" means it was already
accepted, and the stored order is returned. The keys are never logged nor put in a message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import SecretStr

from stock_assets.lib.trading.broker.base import (
    BrokerAccount,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    BrokerTransientError,
    OrderRejected,
    OrderRequest,
    TradeUpdate,
)

log = logging.getLogger(__name__)
SOURCE = "alpaca"
DUPLICATE_CLIENT_ID = 40010001  # Alpaca's error code for a reused client_order_id (HTTP 422)
T = TypeVar("T")


def _float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value))


def order_from_model(order: Any) -> BrokerOrder:
    """alpaca.trading.models.Order -> BrokerOrder."""
    return BrokerOrder(
        client_order_id=order.client_order_id,
        broker_order_id=str(order.id),
        symbol=order.symbol or "",
        side=_enum(order.side),  # type: ignore[arg-type]
        quantity=_float(order.qty) or 0.0,
        status=_enum(order.status),
        filled_qty=_float(order.filled_qty) or 0.0,
        filled_avg_price=_float(order.filled_avg_price),
    )


def update_from_model(update: Any) -> TradeUpdate:
    """alpaca.trading.models.TradeUpdate -> TradeUpdate."""
    return TradeUpdate(
        event=_enum(update.event),
        order=order_from_model(update.order),
        timestamp=update.timestamp,
        execution_id=str(update.execution_id) if update.execution_id else None,
        price=update.price,
        qty=update.qty,
        position_qty=update.position_qty,
    )


class AlpacaBroker:
    source = SOURCE

    def __init__(
        self,
        key_id: SecretStr,
        secret_key: SecretStr,
        *,
        paper: bool = True,
        base_url: str | None = None,
        stream_url: str | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        base_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        from alpaca.trading.client import TradingClient

        from stock_assets.lib.providers.ratelimit import RetryPolicy

        self._key_id, self._secret = key_id, secret_key
        self._paper, self._stream_url = paper, stream_url
        self.client = TradingClient(
            key_id.get_secret_value(),
            secret_key.get_secret_value(),
            paper=paper,
            url_override=base_url,
        )
        self.client._retry = 0  # see the module docstring: our backoff, not the SDK's fixed 3 s
        session = self.client._session
        session.request = functools.partial(session.request, timeout=timeout_s)  # type: ignore[method-assign]
        self.policy = RetryPolicy(
            max_attempts=max_attempts, base_delay_s=base_delay_s, max_delay_s=max_delay_s
        )
        self.sleep, self.rng = sleep, rng or random.Random()
        self.retries = 0  # backoffs taken (metadata for the run)

    # --- the retry/translation path every REST call takes ---------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from alpaca.common.exceptions import APIError
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import Timeout

        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                return fn()
            except APIError as exc:
                status = exc.status_code or 0
                message, code = _error_text(exc)
                if status != 429 and status < 500:
                    if status in (401, 403) and code != 40310000:
                        raise BrokerError(f"alpaca {what}: HTTP {status} {message}") from None
                    raise OrderRejected(
                        f"alpaca {what}: HTTP {status} {message}", status=status, code=code
                    ) from None
                retry_after = _retry_after(exc)
                problem = f"HTTP {status} {message}"
            except (Timeout, RequestsConnectionError) as exc:
                problem = type(exc).__name__
            delay = self.policy.delay(attempt, retry_after, self.rng)
            if delay is None:
                raise BrokerTransientError(
                    f"alpaca {what}: {problem} after {attempt + 1} attempt(s)"
                ) from None
            log.warning("alpaca %s: %s; retrying in %.1fs", what, problem, delay)
            self.retries += 1
            self.sleep(delay)
            attempt += 1

    # --- Broker ---------------------------------------------------------------------------

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Send a market day order; idempotent on its client order id."""
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        body = MarketOrderRequest(
            symbol=request.symbol,
            qty=round(request.quantity, 9),
            side=OrderSide(request.side),
            time_in_force=TimeInForce.DAY,
            client_order_id=request.client_order_id,
        )
        first = True

        def send() -> BrokerOrder:
            nonlocal first
            if not first:  # the previous attempt may have reached the broker
                found = self.get_order(request.client_order_id)
                if found is not None:
                    return found
            first = False
            return order_from_model(self.client.submit_order(body))

        try:
            return self._call(f"submit {request.client_order_id}", send)
        except OrderRejected as exc:
            if exc.code == DUPLICATE_CLIENT_ID:
                found = self.get_order(request.client_order_id)
                if found is not None:
                    return found
            raise

    def cancel_order(self, order: BrokerOrder) -> None:
        try:
            self._call(
                f"cancel {order.client_order_id}",
                lambda: self.client.cancel_order_by_id(order.broker_order_id),
            )
        except OrderRejected as exc:
            if exc.status != 422:  # 422 = no longer cancelable (filled meanwhile): not an error
                raise

    def open_orders(self) -> list[BrokerOrder]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        orders: Any = self._call(
            "list orders",
            lambda: self.client.get_orders(
                GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)
            ),
        )
        return [order_from_model(o) for o in orders]

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        try:
            found = self._call(
                f"get {client_order_id}",
                lambda: self.client.get_order_by_client_id(client_order_id),
            )
        except OrderRejected as exc:
            if exc.status == 404:
                return None
            raise
        return order_from_model(found)

    def positions(self) -> list[BrokerPosition]:
        rows: Any = self._call("positions", self.client.get_all_positions)
        return [
            BrokerPosition(
                p.symbol,
                float(p.qty) * (-1.0 if _enum(p.side) == "short" and float(p.qty) > 0 else 1.0),
                float(p.avg_entry_price),
                _float(p.market_value),
            )
            for p in rows
        ]

    def account(self) -> BrokerAccount:
        a: Any = self._call("account", self.client.get_account)
        equity = _float(a.equity) or 0.0
        return BrokerAccount(
            cash=_float(a.cash) or 0.0,
            equity=equity,
            last_equity=_float(a.last_equity) or equity,
            trading_blocked=bool(a.trading_blocked),
        )

    def market_open(self) -> bool:
        clock: Any = self._call("clock", self.client.get_clock)
        return bool(clock.is_open)

    def trade_updates(
        self, *, max_wait_s: float, until: Callable[[list[TradeUpdate]], bool] | None = None
    ) -> list[TradeUpdate]:
        """Listen on the trade_updates stream for at most `max_wait_s` seconds."""
        if max_wait_s <= 0:
            return []
        from alpaca.trading.stream import TradingStream

        stream = TradingStream(
            self._key_id.get_secret_value(),
            self._secret.get_secret_value(),
            paper=self._paper,
            url_override=self._stream_url,  # type: ignore[arg-type]  # None = Alpaca's own
        )
        updates: list[TradeUpdate] = []
        done = threading.Event()

        async def handler(update: Any) -> None:
            updates.append(update_from_model(update))
            if until is not None and until(updates):
                done.set()

        stream.subscribe_trade_updates(handler)
        thread = threading.Thread(target=stream.run, name="alpaca-trade-updates", daemon=True)
        thread.start()
        done.wait(max_wait_s)
        deadline = time.monotonic() + 5.0
        while stream._loop is None and time.monotonic() < deadline:  # the loop starts in run()
            time.sleep(0.01)
        if stream._loop is not None and stream._loop.is_running():
            asyncio.run_coroutine_threadsafe(stream.stop_ws(), stream._loop).result(timeout=10)
        thread.join(timeout=15)
        return list(updates)


def _error_text(exc: Any) -> tuple[str, int | None]:
    """The broker's message and code from an APIError (its body is JSON or text)."""
    try:
        return str(exc.message), int(exc.code)
    except Exception:
        return str(exc)[:200], None


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None
