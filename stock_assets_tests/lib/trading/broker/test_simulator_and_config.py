"""The simulator broker's fill rules, and the broker settings (env overrides, keys)."""

from __future__ import annotations

import pytest

from stock_assets.lib.settings import ConfigError
from stock_assets.lib.trading.broker.base import OrderRejected, OrderRequest
from stock_assets.lib.trading.broker.config import AlpacaKeys, BrokerConfig, BrokerEnv
from stock_assets.lib.trading.broker.simulator import SimulatorBroker


def test_simulator_cuts_an_unaffordable_buy_and_cancels_the_rest() -> None:
    sim = SimulatorBroker(1_000.0, {"AAPL": 100.0})
    order = sim.submit_order(OrderRequest("c1", "AAPL", "buy", 20))
    assert (order.status, order.filled_qty, order.filled_avg_price) == ("canceled", 10.0, 100.0)
    assert [u.event for u in sim.trade_updates(max_wait_s=0)] == ["new", "partial_fill", "canceled"]
    assert sim.submit_order(OrderRequest("c1", "AAPL", "buy", 20)) is order  # same id: same order
    assert sim.account().cash == pytest.approx(0.0)
    with pytest.raises(OrderRejected, match="no price for IBM"):
        sim.submit_order(OrderRequest("c2", "IBM", "buy", 1))


def test_simulator_state_is_rebuilt_from_its_fills_ledger() -> None:
    fills = [("AAPL", "buy", 10.0, 100.0), ("AAPL", "sell", 4.0, 110.0), ("MSFT", "buy", 2.0, 50.0)]
    sim = SimulatorBroker.from_ledger(10_000.0, fills, {"AAPL": 120.0, "MSFT": 50.0})
    assert [(p.symbol, p.quantity, p.avg_entry_price) for p in sim.positions()] == [
        ("AAPL", 6.0, 100.0),
        ("MSFT", 2.0, 50.0),
    ]
    account = sim.account()
    assert account.cash == pytest.approx(10_000 - 1_000 + 440 - 100)
    assert account.equity == pytest.approx(account.cash + 6 * 120 + 2 * 50)


def test_env_overrides_the_file_and_unset_keeps_it(monkeypatch) -> None:
    file = BrokerConfig(source="alpaca", mode="dry_run")
    for name in ("STOCK_BROKER_SOURCE", "STOCK_BROKER_MODE", "STOCK_BROKER_KILL_SWITCH"):
        monkeypatch.delenv(name, raising=False)
    assert BrokerEnv().apply(file) == file
    monkeypatch.setenv("STOCK_BROKER_MODE", "live")
    monkeypatch.setenv("STOCK_BROKER_KILL_SWITCH", "true")
    merged = BrokerEnv().apply(file)
    assert (merged.source, merged.mode, merged.kill_switch) == ("alpaca", "live", True)
    monkeypatch.setenv("STOCK_BROKER_MODE", "yolo")
    with pytest.raises(ValueError, match="dry_run"):
        BrokerEnv()


def test_alpaca_keys_come_from_alpacas_env_names_and_stay_secret(monkeypatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "PKENVKEY")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "env-secret-value")
    keys = AlpacaKeys.load()
    key_id, secret = keys.require()
    assert (
        key_id.get_secret_value() == "PKENVKEY" and secret.get_secret_value() == "env-secret-value"
    )
    assert "env-secret-value" not in repr(keys) and "env-secret-value" not in str(keys)
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(ConfigError, match="APCA_API_SECRET_KEY"):
        AlpacaKeys.load().require()
