"""The orders asset through dg.materialize: the simulator dry-run default, and a live Alpaca run
(local server) whose reconciliation check fails on a drift."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from stock_assets.defs.kernel import ORDERS
from stock_assets.defs.resources import WarehouseResource
from stock_assets.defs.trading.orders import RECONCILED, orders
from stock_assets.defs.trading.resources import TradingConfigResource
from stock_assets.lib import db
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.lib.trading.broker.alpaca_server import (
    KEY_ID,
    SECRET,
    AlpacaServer,
    running_server,
)

DAY = date(2024, 1, 4)


@pytest.fixture
def warehouse(module_db: DbSettings) -> Iterator[psycopg.Connection]:
    with db.connect(module_db) as conn:
        conn.execute(
            "TRUNCATE trading.broker_fills, trading.broker_orders, trading.broker_positions,"
            " trading.order_audit, analytics.alerts, analytics.signals, market.bars_daily"
        )
        conn.execute(
            "INSERT INTO market.bars_daily (symbol, session_date, open, high, low, close, volume,"
            " trade_count) VALUES ('AAPL', %s, 100, 100, 100, 100, 1000, 10)",
            (DAY,),
        )
        conn.execute(
            "INSERT INTO analytics.signals (symbol, session_date, strategy, side, strength, price,"
            " reason, params) VALUES ('AAPL', %s, 'sma_crossover', 'buy', 0.5, 100, 'test',"
            ' \'{"fast":20,"slow":50}\')',
            (DAY,),
        )
        conn.commit()
        yield conn


@pytest.fixture
def alpaca_server() -> Iterator[AlpacaServer]:
    yield from running_server()


def config_file(tmp_path: Path, broker: dict[str, object]) -> str:
    path = tmp_path / "trading.json"
    path.write_text(
        json.dumps({"symbols": {"AAPL": {"strategies": {"sma_crossover": {}}}}, "broker": broker})
    )
    return str(path)


def materialize(module_db: DbSettings, path: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [orders],
        resources={
            "warehouse": WarehouseResource(dbname=module_db.dbname),
            "trading_config": TradingConfigResource(path=path),
        },
        raise_on_error=False,
    )


def test_default_is_a_simulator_dry_run(module_db, warehouse, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("STOCK_BROKER_MODE", raising=False)
    result = materialize(module_db, config_file(tmp_path, {"risk": {"market_hours": False}}))
    assert result.success
    meta = result.asset_materializations_for_node("trading__orders")[0].metadata
    assert meta["source"].value == "simulator" and meta["mode"].value == "dry_run"
    rows = warehouse.execute(
        "SELECT source, status, quantity FROM trading.broker_orders"
    ).fetchall()
    assert rows == [("simulator", "dry_run", 100.0)]
    assert warehouse.execute("SELECT count(*) FROM trading.broker_fills").fetchone() == (0,)


def test_live_alpaca_run_fails_its_check_on_a_drift(
    module_db, warehouse, tmp_path, monkeypatch, alpaca_server
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("STOCK_BROKER_MODE", "live")  # the file says dry_run
    alpaca_server.set_position("IBM", 7, 80.0)
    broker = {
        "source": "alpaca",
        "mode": "dry_run",
        "base_url": alpaca_server.url,
        "stream_url": alpaca_server.stream_url,
        "stream_wait_s": 0.5,
        "risk": {"market_hours": False},
    }
    result = materialize(module_db, config_file(tmp_path, broker))
    assert result.success
    assert [b["symbol"] for b in alpaca_server.posted_orders()] == ["AAPL"]
    check = result.get_asset_check_evaluations()[0]
    assert check.asset_key == ORDERS and check.check_name == RECONCILED and not check.passed
    assert check.metadata["drift"].value == {"IBM": {"broker": 7.0, "warehouse": 0.0}}


def test_missing_keys_fail_without_retry(module_db, warehouse, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    result = materialize(module_db, config_file(tmp_path, {"source": "alpaca"}))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "APCA_API_KEY_ID" in failure.message


def test_wrong_keys_fail_once_without_retry(
    module_db, warehouse, tmp_path, monkeypatch, alpaca_server
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", "not-the-secret")
    broker = {
        "source": "alpaca",
        "base_url": alpaca_server.url,
        "stream_url": alpaca_server.stream_url,
    }
    result = materialize(module_db, config_file(tmp_path, broker))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "HTTP 401 request is not authorized" in failure.message
    assert "not-the-secret" not in failure.message
    assert len([r for r in alpaca_server.requests if r.path == "/v2/account"]) <= 1  # no retries
