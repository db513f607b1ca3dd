"""Order runs on the real warehouse (private database) against the local Alpaca server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime

import psycopg
import pytest

from stock_assets.lib.trading.backtest import BacktestConfig
from stock_assets.lib.trading.broker import store as bstore
from stock_assets.lib.trading.broker.base import BrokerTransientError
from stock_assets.lib.trading.broker.config import BrokerConfig, RiskLimits
from stock_assets.lib.trading.broker.runner import make_broker, run_orders
from stock_assets.lib.trading.config import BookEntry
from stock_assets.lib.trading.strategies import default_params, params_key
from stock_assets_tests.lib.trading.broker.alpaca_server import Fault
from stock_assets_tests.lib.trading.broker.conftest import make_broker as alpaca_at

NOW = datetime(2024, 1, 5, 16, 0, tzinfo=UTC)  # 11:00 New York, a session day
DAY = date(2024, 1, 4)
LIVE = BrokerConfig(source="alpaca", mode="live", stream_wait_s=0.5)
ENTRIES = [
    BookEntry(
        "AAPL",
        "sma_crossover",
        default_params("sma_crossover"),
        BacktestConfig(stop_loss=0.08, take_profit=0.25),
    ),
    BookEntry("MSFT", "macd_cross", default_params("macd_cross"), BacktestConfig()),
]
TABLES = (
    "trading.broker_fills, trading.broker_orders, trading.broker_positions, trading.order_audit,"
    " analytics.alerts, analytics.signals, market.bars_daily"
)


def always_open(now: datetime) -> bool:
    return True


@pytest.fixture
def db(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The session's private warehouse, emptied, with a buy signal and a close per symbol."""
    conn.execute("TRUNCATE " + TABLES)
    conn.execute("UPDATE trading.kill_switch SET engaged = false, reason = 'test'")
    for entry, close in zip(ENTRIES, (100.0, 50.0), strict=True):
        conn.execute(
            "INSERT INTO market.bars_daily (symbol, session_date, open, high, low, close, volume,"
            " trade_count) VALUES (%s, %s, %s, %s, %s, %s, 1000, 10)",
            (entry.symbol, DAY, close, close, close, close),
        )
        signal(conn, entry, "buy", DAY)
    conn.commit()
    yield conn
    conn.rollback()


def signal(conn: psycopg.Connection, entry: BookEntry, side: str, day: date) -> None:
    conn.execute(
        "INSERT INTO analytics.signals (symbol, session_date, strategy, side, strength, price,"
        " reason, params) VALUES (%s, %s, %s, %s, 0.5, 1, 'test', %s)",
        (entry.symbol, day, entry.strategy, side, params_key(entry.params)),
    )


def audit(conn: psycopg.Connection, decision: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT symbol, reason FROM trading.order_audit WHERE decision = %s ORDER BY audit_id",
        (decision,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def orders(conn: psycopg.Connection) -> dict[str, tuple[str, float, float]]:
    rows = conn.execute(
        "SELECT symbol, status, quantity, filled_qty FROM trading.broker_orders"
    ).fetchall()
    return {r[0]: (r[1], float(r[2]), float(r[3])) for r in rows}


def run(conn, server, sleeps, config=LIVE, **kw):
    timeout_s = kw.pop("timeout_s", 2.0)
    broker = alpaca_at(server, sleeps, timeout_s=timeout_s, max_attempts=config.max_attempts)
    return run_orders(
        conn, broker, config, ENTRIES, now=NOW, market_open=kw.pop("market_open", always_open), **kw
    )


def test_dry_run_computes_and_stores_orders_but_sends_nothing(db, alpaca_server, sleeps) -> None:
    report = run(db, alpaca_server, sleeps, BrokerConfig(source="alpaca"))
    assert alpaca_server.posted_orders() == []
    assert orders(db) == {"AAPL": ("dry_run", 100.0, 0.0), "MSFT": ("dry_run", 200.0, 0.0)}
    assert report.decisions == {"dry_run": 2}
    assert [s for s, _ in audit(db, "dry_run")] == ["AAPL", "MSFT"]


def test_live_run_sends_records_fills_and_a_rerun_sends_nothing(db, alpaca_server, sleeps) -> None:
    report = run(db, alpaca_server, sleeps)
    assert report.decisions == {"sent": 2} and report.drift == []
    assert orders(db) == {"AAPL": ("filled", 100.0, 100.0), "MSFT": ("filled", 200.0, 200.0)}
    assert bstore.ledger_positions(db, "alpaca") == {"AAPL": 100.0, "MSFT": 200.0}
    again = run(db, alpaca_server, sleeps)
    assert again.intents == 0 and len(alpaca_server.posted_orders()) == 2


def test_crash_mid_batch_then_restart_sends_each_order_once(db, alpaca_server, sleeps) -> None:
    with pytest.raises(RuntimeError, match="simulated crash after 1"):
        run(db, alpaca_server, sleeps, crash_after=1)
    assert orders(db)["MSFT"][0] == "pending_submit"  # durable before it could be sent
    run(db, alpaca_server, sleeps)
    ids = alpaca_server.accepted_client_ids()
    assert len(ids) == len(set(ids)) == 2
    assert [b["symbol"] for b in alpaca_server.posted_orders()] == ["AAPL", "MSFT"]
    assert {s for s, _ in audit(db, "reconciled") if s} == set()  # MSFT resent, not "found"
    assert orders(db)["MSFT"] == ("filled", 200.0, 200.0)


def test_answer_lost_after_the_broker_accepted_is_not_resent(db, alpaca_server, sleeps) -> None:
    # the broker takes the order, then the answer never arrives (client timeout), then 500s
    alpaca_server.fail("POST", "/v2/orders", Fault(delay_s=1.5, after_accept=True))
    alpaca_server.fail("POST", "/v2/orders", Fault(status=500, after_accept=True))
    cfg = LIVE.model_copy(update={"max_attempts": 1})
    with pytest.raises(BrokerTransientError, match="ReadTimeout"):
        run(db, alpaca_server, sleeps, cfg, timeout_s=0.5)
    assert orders(db)["AAPL"][0] == "pending_submit"
    with pytest.raises(BrokerTransientError, match="HTTP 500"):
        run(db, alpaca_server, sleeps, cfg, timeout_s=0.5)  # MSFT: accepted, then a 500
    run(db, alpaca_server, sleeps)
    ids = alpaca_server.accepted_client_ids()
    assert len(ids) == len(set(ids)) == 2
    assert len(alpaca_server.posted_orders()) == 2  # nothing was posted a second time
    assert {s for s, _ in audit(db, "reconciled") if s} == {"AAPL", "MSFT"}
    assert orders(db)["AAPL"] == ("filled", 100.0, 100.0)


def test_a_lost_answer_retried_in_the_same_run_is_looked_up_not_resent(
    db, alpaca_server, sleeps
) -> None:
    alpaca_server.fail("POST", "/v2/orders", Fault(delay_s=1.5, after_accept=True))
    alpaca_server.fail("POST", "/v2/orders", Fault(status=502, after_accept=True))
    report = run(db, alpaca_server, sleeps, timeout_s=0.5)
    assert report.decisions == {"sent": 2} and len(sleeps) == 2
    assert len(alpaca_server.posted_orders()) == 2
    assert len(set(alpaca_server.accepted_client_ids())) == 2


def test_429_and_5xx_back_off_then_the_order_goes_through(db, alpaca_server, sleeps) -> None:
    alpaca_server.fail(
        "POST", "/v2/orders", Fault(429, "rate limit exceeded"), Fault(503, "unavailable")
    )
    report = run(db, alpaca_server, sleeps)
    assert report.decisions == {"sent": 2}
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0
    assert len(alpaca_server.accepted_client_ids()) == 2


def test_a_reject_is_recorded_with_the_brokers_reason(db, alpaca_server, sleeps) -> None:
    alpaca_server.reject_symbols["AAPL"] = (403, 40310000, "insufficient buying power")
    report = run(db, alpaca_server, sleeps)
    assert report.decisions == {"rejected": 1, "sent": 1}
    assert orders(db)["AAPL"][0] == "rejected"
    reason = f"alpaca submit {audit_cid(db)}: HTTP 403 insufficient buying power"
    assert audit(db, "rejected") == [("AAPL", reason)]
    assert sleeps == []  # a reject is not retried


def audit_cid(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "SELECT client_order_id FROM trading.broker_orders WHERE symbol = 'AAPL'"
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_market_closed_blocks_every_order_with_its_reason(db, alpaca_server, sleeps) -> None:
    run(db, alpaca_server, sleeps, market_open=lambda now: False)
    assert alpaca_server.posted_orders() == []
    assert audit(db, "blocked") == [
        ("AAPL", "market_hours: market closed (XNYS calendar)"),
        ("MSFT", "market_hours: market closed (XNYS calendar)"),
    ]


def test_position_and_exposure_limits_block_in_a_run(db, alpaca_server, sleeps) -> None:
    cfg = LIVE.model_copy(
        update={"risk": RiskLimits(max_position_value=9_000, max_gross_exposure=50_000)}
    )
    run(db, alpaca_server, sleeps, cfg)
    assert [r for _, r in audit(db, "blocked")] == [
        "max_position: AAPL position would be 10,000.00 > 9,000.00",
        "max_position: MSFT position would be 10,000.00 > 9,000.00",
    ]
    assert alpaca_server.posted_orders() == []


def test_the_daily_order_cap_and_the_config_kill_switch_block(db, alpaca_server, sleeps) -> None:
    capped = LIVE.model_copy(update={"risk": RiskLimits(max_orders_per_day=1)})
    run(db, alpaca_server, sleeps, capped)
    assert [b["symbol"] for b in alpaca_server.posted_orders()] == ["AAPL"]
    assert audit(db, "blocked") == [
        ("MSFT", "max_orders_per_day: 1 orders sent today, limit 1"),
    ]
    run(db, alpaca_server, sleeps, LIVE.model_copy(update={"kill_switch": True}))
    assert len(alpaca_server.posted_orders()) == 1
    assert audit(db, "blocked")[-1] == (
        "MSFT",
        "kill_switch: kill switch engaged: broker.kill_switch set in config/env (config)",
    )


def test_kill_switch_cancels_open_orders_and_blocks_new_ones(db, alpaca_server, sleeps) -> None:
    alpaca_server.fill_mode = "hold"  # orders stay open at the broker
    run(db, alpaca_server, sleeps, LIVE.model_copy(update={"stream_wait_s": 0.2}))
    assert len(alpaca_server.posted_orders()) == 2
    bstore.set_kill_switch(db, True, "test halt", "tester")
    db.commit()
    signal(db, ENTRIES[0], "sell", date(2024, 1, 5))  # a new signal wants an order
    db.commit()
    report = run(db, alpaca_server, sleeps)
    assert report.kill_switch and report.cancelled == 2
    assert {o["status"] for o in alpaca_server.orders.values()} == {"canceled"}
    assert len(alpaca_server.posted_orders()) == 2  # nothing new
    assert orders(db) == {"AAPL": ("canceled", 100.0, 0.0), "MSFT": ("canceled", 200.0, 0.0)}
    blocked = audit(db, "blocked")
    assert blocked and all("kill switch engaged: test halt" in r for _, r in blocked)


def test_reconciliation_detects_a_drift_and_raises_an_alert(db, alpaca_server, sleeps) -> None:
    run(db, alpaca_server, sleeps)
    alpaca_server.set_position("IBM", 5, 80.0)  # bought outside the bot
    report = run(db, alpaca_server, sleeps)
    assert [(d.symbol, d.broker, d.warehouse) for d in report.drift] == [("IBM", 5.0, 0.0)]
    alert = db.execute(
        "SELECT kind, direction, value, message FROM analytics.alerts WHERE symbol = 'IBM'"
    ).fetchone()
    assert alert == (
        "position_drift",
        "up",
        5.0,
        "IBM: alpaca holds 5 shares, the warehouse ledger 0",
    )


def test_partial_fills_arrive_on_the_trade_updates_stream(db, alpaca_server, sleeps) -> None:
    alpaca_server.fill_mode = "hold"

    def fill_while_listening() -> None:
        assert alpaca_server.listening.wait(20)
        for order in list(alpaca_server.orders.values()):
            alpaca_server.execute(order["id"], float(order["qty"]) * 0.4, 99.0)
            alpaca_server.execute(order["id"], float(order["qty"]) * 0.6, 101.0)

    filler = threading.Thread(target=fill_while_listening)
    filler.start()
    run(db, alpaca_server, sleeps, LIVE.model_copy(update={"stream_wait_s": 20}))
    filler.join()
    fills = db.execute(
        "SELECT o.symbol, f.event, f.quantity, f.price, f.execution_id FROM trading.broker_fills f"
        " JOIN trading.broker_orders o USING (client_order_id) ORDER BY o.symbol, f.ts"
    ).fetchall()
    assert [(s, e, q, p) for s, e, q, p, _ in fills] == [
        ("AAPL", "partial_fill", 40.0, 99.0),
        ("AAPL", "fill", 60.0, 101.0),
        ("MSFT", "partial_fill", 80.0, 99.0),
        ("MSFT", "fill", 120.0, 101.0),
    ]
    assert not any(x.startswith("poll-") for *_, x in fills)  # from the stream, not polling
    assert orders(db)["AAPL"] == ("filled", 100.0, 100.0)


def test_stop_loss_exits_live_and_does_not_reenter_on_the_same_signal(
    db, alpaca_server, sleeps
) -> None:
    run(db, alpaca_server, sleeps)
    db.execute("UPDATE market.bars_daily SET close = 91 WHERE symbol = 'AAPL'")  # -9 % < -8 %
    db.commit()
    run(db, alpaca_server, sleeps)
    rows = db.execute(
        "SELECT side, quantity, reason, status FROM trading.broker_orders"
        " WHERE symbol = 'AAPL' ORDER BY created_at"
    ).fetchall()
    assert rows == [("buy", 100.0, "signal", "filled"), ("sell", 100.0, "stop_loss", "filled")]
    third = run(db, alpaca_server, sleeps)
    assert third.intents == 0  # flat until a newer signal


def test_simulator_is_the_default_and_rebuilds_from_its_ledger(db) -> None:
    cfg = BrokerConfig(mode="live")
    for _ in range(2):
        broker = make_broker(
            cfg, db, initial_cash=100_000, commission=0.001, symbols=["AAPL", "MSFT"]
        )
        report = run_orders(db, broker, cfg, ENTRIES, now=NOW, market_open=always_open)
    assert report.intents == 0 and report.drift == []
    positions = {p.symbol: p.quantity for p in broker.positions()}
    assert positions == {"AAPL": 100.0, "MSFT": 200.0}
    assert broker.account().cash == pytest.approx(100_000 - 20_000 * 1.001)
