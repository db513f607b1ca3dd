"""AlpacaBroker (alpaca-py) against the local Alpaca-compatible server."""

from __future__ import annotations

import logging
import threading

import pytest
from pydantic import SecretStr

from stock_assets.lib.trading.broker.alpaca import AlpacaBroker
from stock_assets.lib.trading.broker.base import (
    BrokerError,
    BrokerTransientError,
    OrderRejected,
    OrderRequest,
)
from stock_assets_tests.lib.trading.broker.alpaca_server import SECRET, AlpacaServer, Fault
from stock_assets_tests.lib.trading.broker.conftest import make_broker

BUY = OrderRequest("sab-test-1", "AAPL", "buy", 10)


def test_orders_positions_account_and_clock_parse_alpacas_formats(alpaca, alpaca_server) -> None:
    sent = alpaca.submit_order(BUY)
    assert (sent.client_order_id, sent.symbol, sent.side, sent.quantity) == (
        "sab-test-1", "AAPL", "buy", 10.0,
    )  # fmt: skip
    assert alpaca_server.posted_orders()[0] == {
        "symbol": "AAPL", "qty": 10.0, "side": "buy", "type": "market",
        "time_in_force": "day", "client_order_id": "sab-test-1",
    }  # fmt: skip
    got = alpaca.get_order("sab-test-1")
    assert got is not None and got.status == "filled" and got.filled_avg_price == 100.0
    assert alpaca.get_order("unknown") is None
    assert [(p.symbol, p.quantity) for p in alpaca.positions()] == [("AAPL", 10.0)]
    account = alpaca.account()
    assert account.cash == 99_000.0 and account.equity == 100_000.0
    assert alpaca.market_open() is True


def test_a_duplicate_client_order_id_returns_the_order_already_sent(alpaca, alpaca_server) -> None:
    first = alpaca.submit_order(BUY)
    again = alpaca.submit_order(BUY)  # the server answers 422 "client_order_id must be unique"
    assert again.broker_order_id == first.broker_order_id
    assert len(alpaca_server.orders) == 1 and len(alpaca_server.posted_orders()) == 2


def test_5xx_backs_off_exponentially_then_surfaces_as_transient(alpaca, alpaca_server, sleeps):
    alpaca_server.fail("GET", "/v2/account", *[Fault(500)] * 4)
    with pytest.raises(BrokerTransientError, match=r"HTTP 500 .* after 4 attempt"):
        alpaca.account()
    assert len(sleeps) == 3
    assert all(
        lo <= s <= hi for s, (lo, hi) in zip(sleeps, [(0.5, 1), (1, 2), (2, 4)], strict=True)
    )


def test_retry_after_of_a_429_is_honoured(alpaca, alpaca_server, sleeps) -> None:
    alpaca_server.fail("GET", "/v2/positions", Fault(429, "too many", headers={"Retry-After": "7"}))
    assert alpaca.positions() == []
    assert sleeps == [7.0]


def test_a_silent_server_times_out_instead_of_hanging(alpaca_server, sleeps) -> None:
    broker = make_broker(alpaca_server, sleeps, timeout_s=0.3, max_attempts=2)
    alpaca_server.fail("GET", "/v2/account", Fault(delay_s=1.0), Fault(delay_s=1.0))
    with pytest.raises(BrokerTransientError, match="ReadTimeout after 2 attempt"):
        broker.account()


def test_rejects_and_bad_keys_are_terminal_not_retried(alpaca, alpaca_server, sleeps) -> None:
    alpaca_server.reject_symbols["AAPL"] = (422, 40010000, "qty must be > 0")
    with pytest.raises(OrderRejected, match="HTTP 422 qty must be > 0") as rejected:
        alpaca.submit_order(BUY)
    assert rejected.value.status == 422 and sleeps == []
    wrong = AlpacaBroker(SecretStr("PKWRONG"), SecretStr("nope"), base_url=alpaca_server.url)
    with pytest.raises(BrokerError, match="HTTP 401 request is not authorized"):
        wrong.account()


def test_the_secret_never_reaches_a_log_or_a_message(alpaca_server, sleeps, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3, alpaca, websockets and ours, at their chattiest
    broker = make_broker(alpaca_server, sleeps, timeout_s=0.3, max_attempts=2)
    alpaca_server.fail("GET", "/v2/account", Fault(503), Fault(delay_s=1.0))
    with pytest.raises(BrokerTransientError) as failed:
        broker.account()
    broker.submit_order(BUY)
    broker.trade_updates(max_wait_s=0.5)
    assert caplog.records  # something was logged
    assert SECRET not in caplog.text and SECRET not in str(failed.value)
    assert SECRET not in repr(broker.__dict__)  # held as SecretStr


def test_trade_updates_stream_partial_fills_and_cancels(alpaca, alpaca_server) -> None:
    alpaca_server.fill_mode = "hold"
    order = alpaca.submit_order(BUY)
    assert [o.client_order_id for o in alpaca.open_orders()] == ["sab-test-1"]

    def broker_side() -> None:
        assert alpaca_server.listening.wait(20)
        alpaca_server.execute(order.broker_order_id, 4, 99.5)
        alpaca.cancel_order(order)

    worker = threading.Thread(target=broker_side)
    worker.start()
    updates = alpaca.trade_updates(max_wait_s=20, until=lambda u: len(u) >= 2)
    worker.join()
    assert [(u.event, u.qty, u.price, u.order.filled_qty, u.order.status) for u in updates] == [
        ("partial_fill", 4.0, 99.5, 4.0, "partially_filled"),
        ("canceled", None, None, 4.0, "canceled"),
    ]
    assert alpaca.open_orders() == []


def test_alpaca_py_alone_would_retry_only_429_and_504(alpaca_server: AlpacaServer) -> None:
    """What we found in alpaca/common/rest.py, checked against the installed SDK."""
    from alpaca.common.constants import (
        DEFAULT_RETRY_ATTEMPTS,
        DEFAULT_RETRY_EXCEPTION_CODES,
        DEFAULT_RETRY_WAIT_SECONDS,
    )
    from alpaca.trading.client import TradingClient

    assert (DEFAULT_RETRY_EXCEPTION_CODES, DEFAULT_RETRY_WAIT_SECONDS) == ([429, 504], 3)
    assert DEFAULT_RETRY_ATTEMPTS == 3
    import inspect

    # TradingClient does not pass retry settings on to RESTClient at all
    assert "retry_attempts" not in inspect.signature(TradingClient).parameters
    client = TradingClient("k", "s", url_override=alpaca_server.url)
    assert client._retry == 3
